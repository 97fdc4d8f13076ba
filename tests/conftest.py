"""Shared fixtures: a tiny note set rendered by FluidSynth from TimGM6mb, a tiny exported model, a tone model with
known answers and a private JACK server. Torch is imported only by the fixtures that build models with it."""
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # Qt tests draw offscreen; the screenshot uses Xvfb

# A suite started as a background job of a script inherits SIGINT ignored, and so would every player it starts,
# which the tests stop with SIGINT as Ctrl-C does; a handled signal is reset to the default in each child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Under CI the property tests draw the same examples every run (a submission's result never depends on the draw);
# elsewhere each run draws new ones, so a developer's runs keep looking for the next bad input.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _torch():
    """torch with one thread: tests share the cores with JACK servers and subprocesses, and an OpenMP team whose
    second thread is descheduled spins (a tiny training step took seconds instead of a tenth of one)."""
    import torch

    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def tiny_notes(tmp_path_factory) -> Path:
    """Two programs (piano, violin) x 9 pitches x 2 velocities from TimGM6mb."""
    from synth.model import dataset

    out = tmp_path_factory.mktemp("notes")
    dataset.build(out, soundfonts=["timgm6mb"], programs=[0, 40], velocities=[70, 110],
                  pitches=list(range(24, 85, 7)), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_synth():
    from synth.model.voice import Voice
    from tests.torch_voices import TINY_NET

    _torch().manual_seed(0)
    return Voice(TINY_NET).eval()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_synth) -> Path:
    """The tiny voice exported, with an (untrained) encoder beside it as `export` writes one."""
    from synth.model.one_shot import save_encoder
    from synth.model.voice import Encoder
    from synth.model.voice_export import export_voice, voice_from_model_file

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_voice(tiny_synth, path, {"training_data": "untrained test model", "metrics": {}})
    _torch().manual_seed(1)
    save_encoder(Encoder(16).eval(), voice_from_model_file(path), path)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tone_model(tmp_path_factory) -> Path:
    from synth.model.voice_export import write_onnx
    from tests.torch_voices import ToneSynth

    torch = _torch()
    path = tmp_path_factory.mktemp("tone") / "tone.onnx"
    meta = {"sample_rate": 16000, "z_dim": 8, "pitch_min": 24, "pitch_max": 84, "note_seconds": 4.0,
            "release_seconds": 1.0, "training_data": "analytic test tones", "metrics": {}}
    write_onnx(ToneSynth(), path, (torch.zeros(2, 8), torch.tensor([24, 84])), ["z", "pitch"], meta)
    return path


def _start_test_jack(name: str):
    import shutil

    from synth.bench.jack_server import start_jack

    if shutil.which("jackd") is None:
        pytest.fail("jackd is not installed (Debian package jackd2); run the README's setup")
    # --sync: the server waits each cycle for every client before the next, so a client the OS runs late (a loaded
    # CI machine: this server and its clients are not real-time) delays the dummy clock instead of being skipped or
    # run twice while another client reads its ports. Takes stay frame-exact; timing is measured in frames anyway.
    proc = start_jack(name, 48000, 128, modes=("--no-realtime",), options=("--sync",))
    if proc is None:
        pytest.fail("jackd did not start on the dummy backend")
    return proc  # start_jack made it this process's default server


def _stop_test_jack(proc) -> None:
    import subprocess

    # A synchronous server drops each client of a killed player (test_record) only after 10 client timeouts, 5 s,
    # so stopping may take over 10 s. A killed jackd keeps its slot in JACK's registry of servers
    # (/dev/shm/jack-shm-registry, 8 slots), and once all are taken no jackd starts: kill only a hung server.
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _answers(name: str) -> bool:
    """Whether the JACK server takes a new client within 10 s (jack_lsp opens one)."""
    import subprocess

    try:
        return subprocess.run(["jack_lsp"], env=os.environ | {"JACK_DEFAULT_SERVER": name}, capture_output=True,
                              timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="session")
def _jack():
    old = os.environ.get("JACK_DEFAULT_SERVER")
    server = {"name": f"gsltest{os.getpid()}", "restarts": 0}
    server["proc"] = _start_test_jack(server["name"])
    yield server
    _stop_test_jack(server["proc"])
    from synth.engine.audio import skip_portaudio_teardown_if_jack_is_gone

    skip_portaudio_teardown_if_jack_is_gone()  # a test that listed devices left PortAudio holding this server
    if old is None:
        os.environ.pop("JACK_DEFAULT_SERVER", None)
    else:
        os.environ["JACK_DEFAULT_SERVER"] = old


@pytest.fixture
def jack_server(_jack) -> str:
    """A private JACK server on the dummy backend (48 kHz, 128 frames, synchronous): real audio and MIDI for
    PortAudio and rtmidi without a sound card. Missing jackd fails the test (the README's setup installs it),
    never skips. One server serves the whole run; a server that stops taking clients (seen twice in full local
    runs: every later JACK test then timed out) is replaced by a fresh one, under a new name, before the test."""
    if not _answers(_jack["name"]):
        _jack["proc"].kill()
        _jack["proc"].wait(timeout=10)
        _jack["restarts"] += 1
        _jack["name"] = f"gsltest{os.getpid()}r{_jack['restarts']}"
        _jack["proc"] = _start_test_jack(_jack["name"])
    os.environ["JACK_DEFAULT_SERVER"] = _jack["name"]
    return _jack["name"]
