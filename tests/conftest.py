"""Shared fixtures: a tiny note set rendered by FluidSynth from TimGM6mb, and a tiny exported model."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from synth.model import dataset
from synth.model.voice import Voice, VoiceConfig
from synth.model.voice_export import export_voice, write_onnx

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # Qt tests draw offscreen; the screenshot uses Xvfb
# One torch thread: tests share the cores with JACK servers and subprocesses, and an OpenMP team whose second
# thread is descheduled spins (a tiny training step took seconds instead of a tenth of one).
torch.set_num_threads(1)
TINY_NET = VoiceConfig(z_dim=16, cond=32, channels=[16, 16, 8, 8, 8])


@pytest.fixture(scope="session")
def tiny_notes(tmp_path_factory) -> Path:
    """Two programs (piano, violin) x 9 pitches x 2 velocities from TimGM6mb."""
    out = tmp_path_factory.mktemp("notes")
    dataset.build(out, soundfonts=["timgm6mb"], programs=[0, 40], velocities=[70, 110],
                  pitches=list(range(24, 85, 7)), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_synth() -> Voice:
    torch.manual_seed(0)
    return Voice(TINY_NET).eval()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_synth) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_voice(tiny_synth, path, {"training_data": "untrained test model", "metrics": {}})
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


class ToneSynth(torch.nn.Module):
    """A model with a known answer: G(z, pitch) is a harmonic tone at exactly the pitch's frequency (fundamental
    dominant, z shading the weak upper partials), 5 ms attack, steady for 3 s, then a 1 s decay. It goes through
    the same ONNX loader as a trained model, so engine tests can check onsets and pitches; it keeps the first
    contract (no velocity input, 16 kHz), which the runtime still plays."""

    def __init__(self, z_dim: int = 8, rate: int = 16000, samples: int = 64000) -> None:
        super().__init__()
        t = torch.arange(samples) / rate
        env = torch.clamp(t / 0.005, max=1.0) * torch.where(t < 3.0, torch.ones_like(t), torch.exp(-(t - 3.0) * 8))
        self.register_buffer("t", t)
        self.register_buffer("env", env)
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        f = 440.0 * torch.pow(2.0, (pitch.float() - 69.0) / 12.0)
        weights = 0.1 * torch.sigmoid(z[:, :3])  # 2nd-4th partials at most -20 dB under the fundamental
        phase = 2 * np.pi * f[:, None] * self.t[None, :]
        audio = torch.sin(phase)
        for k in range(3):
            audio = audio + weights[:, k:k + 1] * torch.sin((k + 2) * phase)
        return 0.3 * audio * self.env[None, :]


@pytest.fixture(scope="session")
def tone_model(tmp_path_factory) -> Path:
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
