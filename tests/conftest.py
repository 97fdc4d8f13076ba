"""Shared fixtures: a tiny note set rendered by FluidSynth from TimGM6mb, a tiny exported model, a tone model with
known answers and a private JACK server. Torch is imported only by the fixtures that build models with it."""
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # Qt tests draw offscreen; the screenshot uses Xvfb


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
    from synth.model.voice_export import export_voice

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_voice(tiny_synth, path, {"training_data": "untrained test model", "metrics": {}})
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


@pytest.fixture(scope="session")
def jack_server():
    """A private JACK server on the dummy backend (48 kHz, 128 frames, synchronous): real audio and MIDI for
    PortAudio and rtmidi without a sound card. Missing jackd fails the test (the README's setup installs it),
    never skips."""
    import os
    import shutil
    import subprocess

    from synth.bench.jack_server import start_jack

    if shutil.which("jackd") is None:
        pytest.fail("jackd is not installed (Debian package jackd2); run the README's setup")
    name = f"gsltest{os.getpid()}"
    old = os.environ.get("JACK_DEFAULT_SERVER")
    # --sync: the server waits each cycle for every client before the next, so a client the OS runs late (a loaded
    # CI machine: this server and its clients are not real-time) delays the dummy clock instead of being skipped or
    # run twice while another client reads its ports. Takes stay frame-exact; timing is measured in frames anyway.
    proc = start_jack(name, 48000, 128, modes=("--no-realtime",), options=("--sync",))
    if proc is None:
        pytest.fail("jackd did not start on the dummy backend")
    yield name
    # A synchronous server drops each client of a killed player (test_record) only after 10 client timeouts, 5 s,
    # so stopping may take over 10 s. A killed jackd keeps its slot in JACK's registry of servers
    # (/dev/shm/jack-shm-registry, 8 slots), and once all are taken no jackd starts: kill only a hung server.
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    from synth.engine.audio import skip_portaudio_teardown_if_jack_is_gone

    skip_portaudio_teardown_if_jack_is_gone()  # a test that listed devices left PortAudio holding this server
    if old is None:
        os.environ.pop("JACK_DEFAULT_SERVER", None)
    else:
        os.environ["JACK_DEFAULT_SERVER"] = old
