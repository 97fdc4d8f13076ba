"""The main job: a demo phrase rendered with a model through the ONNX runtime into a WAV file."""
import subprocess
import sys

import numpy as np

from synth.audio_io import read_wav
from synth.demo import PHRASE


def test_demo_command_writes_the_phrase(tiny_model, tmp_path):
    out = tmp_path / "demo.wav"
    proc = subprocess.run([sys.executable, "-m", "synth", "demo", "--model", str(tiny_model), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    audio, sr = read_wav(out)
    assert sr == 16000 and audio.shape[1] == 1
    assert 0.5 < np.abs(audio).max() <= 0.91
    assert len(audio) / sr > max(s + n for s, _, n in PHRASE) * 0.6
    assert not list(tmp_path.glob(".*part"))


def test_demo_with_a_bad_model_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    proc = subprocess.run([sys.executable, "-m", "synth", "demo", "--model", str(bad), "-o", str(tmp_path / "x.wav")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("gansynth-live: model file") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.wav").exists()
