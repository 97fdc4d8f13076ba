"""A crafted checkpoint cannot run code (every torch.load is weights_only), and loading a model writes nothing
under the user's home (onnxruntime's telemetry files stay off)."""
import os
import subprocess
import sys

import pytest
import torch


class Payload:
    """Unpickling this calls os.system: what a hostile checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "synth", *args], capture_output=True, text=True, timeout=300,
                          env=os.environ | env)


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"net": {}, "features": 2, "G_ema": Payload(marker), "E": Payload(marker)}, path)
    return path, marker


@pytest.mark.parametrize("command", [["export", "{ck}", "-o", "{tmp}/out.onnx"],
                                     ["presets", "encode", "{ck}", "--data", "{tmp}", "--out", "{tmp}/p"]],
                         ids=["export", "presets-encode"])
def test_a_checkpoint_with_code_in_it_is_refused_and_the_code_never_runs(evil, tmp_path, command):
    ck, marker = evil
    r = run_cli(*[a.format(ck=ck, tmp=tmp_path) for a in command])
    assert r.returncode == 1
    assert not marker.exists(), "the checkpoint's payload ran"
    assert r.stderr.count("\n") == 1 and "checkpoint not loaded: it holds more than weights" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_training_from_a_checkpoint_with_code_in_it_never_runs_the_code(evil, tiny_notes, tmp_path):
    ck, marker = evil
    r = run_cli("train", "--data", str(tiny_notes), "--out", str(tmp_path / "run"), "--init-from", str(ck),
                "--steps", "1", "--device", "cpu")
    assert r.returncode == 1 and not marker.exists()
    assert "checkpoint not loaded" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_loading_and_playing_a_model_writes_nothing_under_home(tone_model, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    code = ("from synth.runtime.model import NoteModel; import numpy as np; m = NoteModel(__import__('sys').argv[1]);"
            "print(m.render(np.zeros((1, m.info.z_dim), np.float32), [60]).shape)")
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY")}
    r = subprocess.run([sys.executable, "-c", code, str(tone_model)], capture_output=True, text=True, timeout=120,
                       env=env | {"HOME": str(home)})
    assert r.returncode == 0, r.stderr
    written = [str(p.relative_to(home)) for p in home.rglob("*")]
    assert written == [], f"loading a model wrote {written} under HOME"
