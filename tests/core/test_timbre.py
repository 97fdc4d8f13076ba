"""Slerp, the four-corner morph and preset files."""
import json

import numpy as np
import pytest

from synth.core.timbre import Preset, PresetError, load_preset, load_presets, morph, save_preset, slerp


def angle(a, b):
    return np.arccos(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))


def test_slerp_ends_and_constant_angular_speed(rng):
    a, b = rng.standard_normal(64), rng.standard_normal(64)
    b = b / np.linalg.norm(b) * np.linalg.norm(a)
    assert np.allclose(slerp(a, b, 0), a, atol=1e-6) and np.allclose(slerp(a, b, 1), b, atol=1e-6)
    total = angle(a, b)
    for t in (0.25, 0.5, 0.75):
        assert angle(a, slerp(a, b, t)) == pytest.approx(t * total, rel=1e-4)
    # Unlike a linear blend, the midpoint keeps the norm of its (equal-norm) ends: no quiet "average" timbre.
    assert np.linalg.norm(slerp(a, b, 0.5)) == pytest.approx(np.linalg.norm(a), rel=1e-5)
    assert np.linalg.norm((a + b) / 2) < 0.9 * np.linalg.norm(a)


def test_morph_corners_and_edges(rng):
    c = [rng.standard_normal(16).astype(np.float32) for _ in range(4)]
    for (x, y), corner in zip(((0, 0), (1, 0), (0, 1), (1, 1)), c):
        assert np.allclose(morph(c, x, y), corner, atol=1e-6)
    assert np.allclose(morph(c, 0.3, 0), slerp(c[0], c[1], 0.3), atol=1e-6)
    assert np.allclose(morph(c, 0, 0.6), slerp(c[0], c[2], 0.6), atol=1e-6)
    assert np.allclose(morph(c, 5, -1), c[1], atol=1e-6)  # positions clamp to the pad


def test_preset_round_trip_and_no_silent_overwrite(tmp_path, rng):
    p = Preset("Warm Pad", rng.standard_normal(8).astype(np.float32), "synth_pad", "soft")
    path = save_preset(p, tmp_path)
    assert path.name == "warm-pad.json" and not list(tmp_path.glob(".*part"))
    back = load_preset(path, 8)
    assert back.name == "Warm Pad" and back.family == "synth_pad" and np.allclose(back.z, p.z, atol=1e-6)
    with pytest.raises(PresetError, match="already exists"):
        save_preset(p, tmp_path)
    save_preset(Preset("Warm Pad", np.zeros(8, np.float32)), tmp_path, overwrite=True)
    assert np.all(load_preset(path, 8).z == 0)
    assert [q.name for q in load_presets(8, tmp_path)] == ["Warm Pad"]


@pytest.mark.parametrize("z, message", [([0.0] * 7, "has 7 numbers but the model needs 8"),
                                        ([0.0] * 7 + [float("nan")], "NaN or infinite"),
                                        ("abc", "list of numbers"), ([[0.0] * 8], "flat list")])
def test_bad_latents_are_refused_with_a_reason(tmp_path, z, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "bad", "z": z}).replace("NaN", "NaN"))
    with pytest.raises(PresetError, match=message):
        load_preset(path, 8)


def test_unreadable_preset_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(PresetError, match="not readable JSON"):
        load_preset(path, 8)
