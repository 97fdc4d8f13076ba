"""Evaluation metrics on known inputs, and the eval command end to end on the tiny note set."""
import json
import subprocess
import sys

import numpy as np

from synth.model import evaluate as E


def tones(pitches, cents=0.0):
    t = np.arange(64000) / 16000
    f = 440.0 * 2 ** ((np.asarray(pitches) - 69 + cents / 100) / 12)
    return np.stack([sum(np.sin(2 * np.pi * fi * k * t) / k for k in range(1, 6)) for fi in f]).astype(np.float32)


def test_yin_measures_cents_across_the_keyboard():
    pitches = np.array([24, 36, 48, 60, 72, 84])
    assert (E.cents_error(tones(pitches), pitches) < 10).all()
    off = E.cents_error(tones(pitches, cents=30), pitches)
    assert np.allclose(off, 30, atol=10)
    assert np.isinf(E.cents_error(np.zeros((1, 64000), np.float32), np.array([60]))).all()


def test_fid_and_ndb_separate_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((600, 8)), rng.standard_normal((600, 8))
    shifted = b + 2.0
    assert E.fid(a, b) < 0.5 < 10 < E.fid(a, shifted)
    centres = E.kmeans(a, 10)
    assert E.ndb(a, b, centres) <= 0.2
    assert E.ndb(a, shifted, centres) >= 0.5


def test_eval_command_prints_reference_and_generated_rows(tiny_notes, tiny_model, tmp_path):
    out = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "-m", "synth", "eval", "--data", str(tiny_notes), "--model",
                           str(tiny_model), "--per-pitch", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "real held-out" in proc.stdout and "generated (tiny.onnx)" in proc.stdout
    real, gen = json.loads(out.read_text())
    assert real["notes"] >= 1 and gen["notes"] == 61
    for row in (real, gen):
        assert 0.0 <= row["pitch_accuracy"] <= 1.0 and 0.0 <= row["within_50_cents"] <= 1.0
    # Real soundfont notes are in tune; an untrained generator is not.
    assert real["within_50_cents"] > gen["within_50_cents"]


def test_eval_without_data_is_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "synth", "eval", "--data", str(tmp_path / "none")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("gansynth-live: no note set in")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_presets_find_writes_one_checked_preset_per_family(tiny_notes, tiny_model, tmp_path):
    out = tmp_path / "presets"
    proc = subprocess.run([sys.executable, "-m", "synth", "presets", "find", "--data", str(tiny_notes), "--model",
                           str(tiny_model), "--candidates", "24", "--out", str(out), "--min-probability", "0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    from synth.engine.latent import load_presets
    from synth.model.timbre_map import TARGETS
    presets = load_presets(16, out)
    assert sorted(p.name for p in presets) == sorted(name for name, _ in TARGETS)
    assert len({tuple(p.z) for p in presets}) == len(TARGETS)  # twelve different latents
    for p in presets:
        assert f"p({p.family}) = " in p.description
    again = subprocess.run([sys.executable, "-m", "synth", "presets", "find", "--data", str(tiny_notes), "--model",
                            str(tiny_model), "--candidates", "24", "--out", str(out), "--min-probability", "0"],
                           capture_output=True, text=True)
    assert again.returncode != 0 and "already exists" in again.stderr  # no silent overwrite
