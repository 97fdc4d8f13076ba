"""Evaluation metrics on known inputs, and the eval command end to end on the tiny note set."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from synth.model import evaluate as E


def tones(pitches, cents=0.0):
    t = np.arange(192000) / 48000
    f = 440.0 * 2 ** ((np.asarray(pitches) - 69 + cents / 100) / 12)
    return np.stack([sum(np.sin(2 * np.pi * fi * k * t) / k for k in range(1, 6)) for fi in f]).astype(np.float32)


def test_yin_measures_cents_across_the_keyboard():
    pitches = np.array([24, 36, 48, 60, 72, 84])
    assert (E.cents_error(tones(pitches), pitches) < 10).all()
    off = E.cents_error(tones(pitches, cents=30), pitches)
    assert np.allclose(off, 30, atol=10)
    assert np.isinf(E.cents_error(np.zeros((1, 192000), np.float32), np.array([60]))).all()


def test_yin_takes_notes_in_batches_and_measures_each_as_alone(monkeypatch):
    """More notes than a batch (a silent one among them): each note's f0 is the one it gets measured alone."""
    monkeypatch.setattr(E, "YIN_BATCH", 4)
    pitches = np.array([30, 41, 52, 63, 74, 85, 45, 57, 69])
    notes = tones(pitches)
    notes[5] = 0.0
    together = E.yin_f0(notes)
    alone = np.array([E.yin_f0(n[None])[0] for n in notes])
    np.testing.assert_array_equal(np.isnan(together), np.isnan(alone))
    np.testing.assert_allclose(together[~np.isnan(alone)], alone[~np.isnan(alone)])
    assert np.isnan(together[5]) and np.isfinite(together).sum() == 8


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
    # Only real notes have a known family: the classifier's family accuracy is the trust in its family checks.
    assert 0.0 <= real["family_accuracy"] <= 1.0 and "family_accuracy" not in gen and "family acc" in proc.stdout
    for row in (real, gen):
        assert 0.0 <= row["pitch_accuracy"] <= 1.0 and 0.0 <= row["within_50_cents"] <= 1.0
    # The voice's f0 is exact from the pitch: even untrained, its notes are in tune, as the real ones are.
    assert real["within_50_cents"] >= 0.9 and gen["within_50_cents"] >= 0.9


def test_eval_rebuilds_the_held_out_notes_through_a_checkpoint(tiny_notes, tmp_path):
    """With a training checkpoint, the real held-out notes are rebuilt through it and get their own row, scored
    as the real ones are (same notes, same pitches, their family known), before the sound table of the same."""
    from synth.model.voice_train import VoiceTrainConfig, train
    from tests.torch_voices import TINY_NET

    run = tmp_path / "run"
    train(VoiceTrainConfig(data_dir=str(tiny_notes), out_dir=str(run), net=TINY_NET, batch=2, max_steps=2),
          progress=False)
    out = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "-m", "synth", "eval", "--data", str(tiny_notes), "--checkpoint",
                           str(run / "checkpoint.pt"), "--per-family", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    real, rebuilt, sound = json.loads(out.read_text())
    assert rebuilt["set"] == "rebuilt (checkpoint.pt)" and "rebuilt (checkpoint.pt)" in proc.stdout
    assert rebuilt["notes"] == real["notes"] and 0.0 <= rebuilt["family_accuracy"] <= 1.0
    assert rebuilt["fid"] != real["fid"] and sound["set"].startswith("sound: reconstructions")
    # Brightness against velocity: each family's held-out instruments and pitches at both of the set's velocities.
    for family in sound["families"]:
        assert set(sound["brightness_by_velocity"][family]) == {"70", "110"}
        assert all(real > 0 and ours > 0 for real, ours in sound["brightness_by_velocity"][family].values())
        assert len(sound["brightness_rise_cents"][family]) == 2
    assert "same instruments and pitches at each velocity" in proc.stdout


def test_eval_without_data_is_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "synth", "eval", "--data", str(tmp_path / "none")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("gansynth-live: no note set in")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_presets_find_writes_one_checked_preset_per_family(tiny_notes, tiny_model, tmp_path):
    out = tmp_path / "presets"
    proc = subprocess.run([sys.executable, "-m", "synth", "presets", "find", "--data", str(tiny_notes), "--model",
                           str(tiny_model), "--candidates", "24", "--refine", "1", "--out", str(out),
                           "--min-probability", "0"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    from synth.core.timbre import load_presets
    from synth.model.timbre_map import TARGETS
    presets = load_presets(16, out)
    assert sorted(p.name for p in presets) == sorted(name for name, _ in TARGETS)
    assert len({tuple(p.z) for p in presets}) == len(TARGETS)  # twelve different latents
    for p in presets:
        assert f"p({p.family}) = " in p.description and "second classifier" in p.description
        assert "refined over 1 generations" in p.description
    again = subprocess.run([sys.executable, "-m", "synth", "presets", "find", "--data", str(tiny_notes), "--model",
                            str(tiny_model), "--candidates", "24", "--out", str(out), "--min-probability", "0"],
                           capture_output=True, text=True)
    assert again.returncode != 0 and "already exists" in again.stderr  # no silent overwrite
    typo = subprocess.run([sys.executable, "-m", "synth", "presets", "find", "--data", str(tiny_notes), "--model",
                           str(tiny_model), "--only", "Brass", "--only", "Tuba", "--out", str(out)],
                          capture_output=True, text=True)
    assert typo.returncode != 0 and typo.stderr.strip().startswith("gansynth-live: no preset target named Tuba")
    assert len(typo.stderr.strip().splitlines()) == 1


def test_every_preset_name_means_programs_of_its_own_family():
    from synth.core.notes import FAMILIES
    from synth.model.timbre_map import ARCHETYPES, TARGETS

    assert sorted(ARCHETYPES) == sorted(name for name, _ in TARGETS)
    for name, family in TARGETS:
        assert ARCHETYPES[name] and {p // 8 for p in ARCHETYPES[name]} == {FAMILIES.index(family)}, name


def test_presets_encode_takes_latents_of_real_notes_and_keeps_the_stronger_preset(tiny_notes, tmp_path):
    from synth.cli import main
    from synth.core.timbre import Preset, load_presets, save_preset
    from synth.model.timbre_map import recheck
    from synth.model.voice_train import VoiceTrainConfig, train
    from tests.torch_voices import TINY_NET

    run = tmp_path / "run"
    train(VoiceTrainConfig(data_dir=str(tiny_notes), out_dir=str(run), net=TINY_NET, batch=2, max_steps=3),
          progress=False)
    main(["export", str(run / "checkpoint.pt"), "-o", str(tmp_path / "m.onnx")])
    out = tmp_path / "presets"
    save_preset(Preset("Keys", np.zeros(16, np.float32), description="by ear"), out)  # no family to measure: replaced
    args = ["presets", "encode", str(run / "checkpoint.pt"), "--data", str(tiny_notes), "--model",
            str(tmp_path / "m.onnx"), "--out", str(out), "--min-probability", "0", "--replace-weaker"]
    main(args)
    presets = {p.name: p for p in load_presets(16, out)}
    assert sorted(presets) == ["Keys", "Strings"]  # the tiny note set has piano and violin only
    for p in presets.values():
        assert re.search(r"encoded: (mean latent of program \d+'s notes at MIDI \d+-\d+|latent of program \d+'s "
                         r"MIDI \d+ note at velocity \d+)$", p.description), p.description
        assert 0.0 <= min(p.extra["classifier_p"], p.extra["second_classifier_p"]) <= 1.0
        assert np.isfinite(p.z).all() and p.z.shape == (16,)
    # stored scores belong to the model they were measured on: the old preset is measured again, and kept (with
    # its scores brought up to date) if it is at least as strong on this model, however low its stored scores
    save_preset(Preset("Keys", presets["Keys"].z, "piano", "as good", {"classifier_p": 0.0,
                                                                      "second_classifier_p": 0.0}), out, overwrite=True)
    main(args)
    keys = load_presets(16, out)[0]
    assert keys.description.endswith("; as good")
    assert keys.extra == recheck(tiny_notes, tmp_path / "m.onnx", keys)[0].extra
    # where the search finds nothing firm enough, the old preset stays and is measured again all the same
    stale = {"classifier_p": 0.1234, "second_classifier_p": 0.1234}
    save_preset(Preset("Keys", keys.z, "piano", "as good", stale), out, overwrite=True)
    main(args[:-2] + ["1.01", "--replace-weaker"])
    assert load_presets(16, out)[0].extra == keys.extra != stale


def test_presets_encode_refuses_what_is_not_a_voice_checkpoint(tiny_notes, tmp_path):
    import torch

    torch.save({"version": 1, "G": {}}, tmp_path / "old.pt")
    proc = subprocess.run([sys.executable, "-m", "synth", "presets", "encode", str(tmp_path / "old.pt"), "--data",
                           str(tiny_notes)], capture_output=True, text=True)
    assert proc.returncode != 0 and "is not a voice checkpoint" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_refine_walks_a_latent_towards_a_family_on_its_sphere(tiny_notes, tone_model):
    from synth.model.dataset import FAMILIES
    from synth.model.evaluate import train_classifier
    from synth.model.timbre_map import family_probabilities, refine
    from synth.runtime.model import NoteModel

    clf, model = train_classifier(tiny_notes, progress=False), NoteModel(tone_model)
    z0 = np.random.default_rng(3).standard_normal(8).astype(np.float32)
    start = family_probabilities(model, clf, z0[None])[0]
    j = min((FAMILIES.index("piano"), FAMILIES.index("strings")), key=lambda k: start[k])  # the one it is not
    z, p = refine(model, clf, z0, j, generations=6)
    assert p > start[j]
    assert p == pytest.approx(family_probabilities(model, clf, z[None])[0, j], abs=1e-6)  # the score is the latent's
    assert np.linalg.norm(z) == pytest.approx(np.linalg.norm(z0), rel=1e-5)


def test_firmness_measures_a_latent_with_its_neighbours_on_its_sphere(tiny_notes, tone_model):
    from synth.model.dataset import FAMILIES
    from synth.model.evaluate import train_classifier
    from synth.model.timbre_map import around, family_probabilities, firmness, neighbourhood
    from synth.runtime.model import NoteModel

    z = np.random.default_rng(3).standard_normal((1, 8)).astype(np.float32)
    near = around(z, np.random.default_rng(4).standard_normal((3, 8)))[0]
    cos = near @ z[0] / (np.linalg.norm(near, axis=1) * np.linalg.norm(z))
    assert np.allclose(np.degrees(np.arccos(np.clip(cos, -1, 1))), 4.0, atol=1e-3)
    assert np.allclose(np.linalg.norm(near, axis=1), np.linalg.norm(z), rtol=1e-5)

    model, j = NoteModel(tone_model), FAMILIES.index("strings")
    clfs = tuple(train_classifier(tiny_notes, seed=s, progress=False) for s in (0, 1))
    probs = neighbourhood(model, clfs, z[0], j)  # one render of each note serves both classifiers
    zs = np.concatenate([z, around(z, np.random.default_rng([1, j]).standard_normal((8, 8)))[0]])
    apart = np.stack([family_probabilities(model, c, zs)[:, j] for c in clfs])
    assert probs.shape == (2, 9) and np.allclose(probs, apart, atol=1e-6)
    assert firmness(neighbourhood(model, clfs, z[0], j, neighbours=0)) == pytest.approx(apart[:, 0].min(), abs=1e-6)
    assert firmness(probs) == pytest.approx(apart.mean(axis=1).min(), abs=1e-6) and 0.0 <= firmness(probs) <= 1.0


def test_a_second_classifier_is_cached_beside_the_first(tiny_notes):
    from synth.model.evaluate import classifier_file, train_classifier

    train_classifier(tiny_notes, progress=False)
    second = train_classifier(tiny_notes, seed=1, progress=False)
    assert (tiny_notes / classifier_file(0)).exists() and (tiny_notes / classifier_file(1)).exists()
    assert classifier_file(0) != classifier_file(1)
    first = train_classifier(tiny_notes, progress=False)
    assert not all(torch_equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_sound_checks_catch_dc_clipping_missing_attack_and_ringing():
    t = np.arange(64000) / 16000
    env = np.clip(t / 0.01, 0, 1) * np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) * 30))
    good = 0.5 * np.sin(2 * np.pi * 220 * t) * env
    late = 0.5 * np.sin(2 * np.pi * 220 * t) * np.clip((t - 0.5) / 0.5, 0, 1) * (t < 3.5)
    ringing = 0.5 * np.sin(2 * np.pi * 220 * t) * np.clip(t / 0.01, 0, 1)
    audio = np.stack([good, good + 0.1, np.clip(good * 4, -1, 1), late, ringing]).astype(np.float32)
    checks = {k: v * 5 for k, v in E.sound_checks(audio, 16000).items()}  # number of the five notes that pass
    assert checks == {"no_dc": 4, "no_clipping": 4, "attack": 4, "decays": 3}


def test_eval_rows_per_preset_and_families_of_random_latents(tiny_notes, tiny_model, tmp_path):
    from synth.core.timbre import Preset, save_preset

    presets = tmp_path / "presets"
    save_preset(Preset("Zero", np.zeros(16, np.float32), "strings"), presets)
    out = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "-m", "synth", "eval", "--data", str(tiny_notes), "--model",
                           str(tiny_model), "--per-pitch", "1", "--presets", str(presets), "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    real, gen, zero = json.loads(out.read_text())
    assert zero["set"] == "preset Zero" and zero["notes"] == 61
    assert 0.0 <= zero["own_family"] <= 1.0 and "own_family" not in gen and "own family" in proc.stdout
    assert 0.0 <= zero["own_family_check"] <= 1.0 and "2nd clf" in proc.stdout  # the never-searched classifier
    assert 1 <= gen["families_of_256_z"] <= 16
    assert f"{gen['families_of_256_z']} distinct classifier families among 256 random latents" in proc.stdout


def test_slerp_curve_and_spectrogram_pictures(tiny_notes, tone_model, tmp_path):
    from PIL import Image

    from synth.core.timbre import Preset
    from synth.model.timbre_map import format_curve, format_pairs, pair_curves, slerp_curve, spectrogram_picture

    a, b = Preset("A", np.full(8, -3.0, np.float32)), Preset("B", np.full(8, 3.0, np.float32))
    curve = slerp_curve(tiny_notes, tone_model, a, b, steps=5)
    probs = np.asarray(curve["probabilities"])
    assert probs.shape == (5, len(curve["families"])) and np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    assert curve["max_step"] == pytest.approx(np.abs(np.diff(probs, axis=0)).max(), abs=1e-3)
    assert curve["pitches"] == list(range(24, 85)) and "mean over MIDI 24-84" in format_curve(curve)
    assert len(curve["sound_steps"]) == 4 and min(curve["sound_steps"]) > 0  # z shades the tone's partials
    c = Preset("C", np.linspace(-3, 3, 8).astype(np.float32))
    pairs = pair_curves(tiny_notes, tone_model, [a, b, c], steps=3)
    assert [(p["from"], p["to"]) for p in pairs] == [("A", "B"), ("A", "C"), ("B", "C")]
    assert "3 pairs" in format_pairs(pairs) and "mean over MIDI 48/60/72" in format_pairs(pairs)
    assert "crossfades of the same pairs" in format_pairs(pairs)
    # The crossfade reference is the classifier along (1 - t) a + t b of the end notes, measured here on its own.
    from synth.model.evaluate import classify, train_classifier
    from synth.runtime.model import NoteModel

    model, clf, t = NoteModel(tone_model), train_classifier(tiny_notes, progress=False), np.linspace(0, 1, 3)
    mixed = sum(classify(clf, ((1 - t)[:, None] * ends[0] + t[:, None] * ends[1]).astype(np.float32))[2]
                for ends in (E.render_at_set_rate(model, np.stack([a.z, b.z]), np.array([p, p])) for p in (48, 60, 72))) / 3
    assert pairs[0]["crossfade_max_step"] == pytest.approx(np.abs(np.diff(mixed, axis=0)).max(), abs=1e-4)
    real = {48: np.sin(2 * np.pi * 2000.0 * np.arange(4 * 48000) / 48000).astype(np.float32)}  # a stand-in note
    spectrogram_picture(tone_model, a, tmp_path / "a.png", pitches=(48, 72), real=real, real_name="real")
    img = np.asarray(Image.open(tmp_path / "a.png").convert("L"), dtype=float)
    half = (img.shape[1] - 4) // 2
    assert img.shape[0] == 2 * 256 + 4  # ours above, the real notes below
    row = lambda hz, r=0: r * 260 + 255 - int(hz / 24000 * 256)  # noqa: E731 - rows count down from 24 kHz
    band = lambda hz, cols, r=0: img[row(hz, r) - 1:row(hz, r) + 2, cols].max(axis=0).mean()  # noqa: E731
    left, right = slice(20, half - 20), slice(half + 24, -20)
    assert band(130.8, left) > 180 and band(2000.0, left) < 100  # MIDI 48: its fundamental, nothing at 2 kHz
    assert band(523.3, right) > 180  # MIDI 72 two octaves up
    assert band(2000.0, left, 1) > 180 and band(130.8, left, 1) < 100  # the real row shows the real note
    assert img[260 + 20:, half + 4:].max() == 0  # no real note at MIDI 72: that panel stays blank (but its label)


def test_eval_sound_measures_each_family_beside_the_real_notes(tiny_notes, tiny_model, tmp_path):
    from synth.core.timbre import Preset, save_preset
    from synth.model import dataset

    presets = tmp_path / "presets"
    save_preset(Preset("Keys", np.zeros(16, np.float32), "piano"), presets)
    save_preset(Preset("Strings", np.ones(16, np.float32), "strings"), presets)
    out = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "-m", "synth", "eval", "--data", str(tiny_notes), "--model",
                           str(tiny_model), "--presets", str(presets), "--sound", "--sound-only", "--per-family", "2",
                           "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(out.read_text())
    test_families = {r for r in dataset.load(tiny_notes, "test").family.tolist()}
    assert set(row["families"]) == {dataset.FAMILIES[f] for f in test_families}
    for measures in row["families"].values():
        real, ours = measures["hnr_db"]
        assert np.isfinite(real) and np.isfinite(ours) and real != ours
        assert set(measures) >= {"ripple_db", "sideband_db", "attack_ms", "decay_db", "above8k_db", "level_db"}
    assert "sound by family, real / ours (presets of tiny.onnx" in proc.stdout


def test_a_latent_that_plays_another_pitch_is_not_in_tune(tmp_path):
    """`presets find` and `encode` take only latents whose notes sound the asked pitch: the classifiers heard a
    guitar's harmonics (an octave and more up) as a guitar, and a Guitar preset shipped two octaves off."""
    import torch

    from synth.model.timbre_map import in_tune
    from synth.model.voice_export import write_onnx
    from synth.runtime.model import NoteModel

    class Octaves(torch.nn.Module):  # z[0] > 0 plays an octave up
        def forward(self, z: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
            t = torch.arange(48000 * 2) / 48000
            f = 440.0 * torch.pow(2.0, (pitch.float()[:, None] - 69.0) / 12.0) * (1.0 + (z[:, :1] > 0).float())
            return 0.3 * torch.sin(2 * np.pi * f * t[None, :])

    path = tmp_path / "octaves.onnx"
    meta = {"sample_rate": 48000, "z_dim": 4, "pitch_min": 24, "pitch_max": 84, "note_seconds": 2.0,
            "release_seconds": 0.5, "training_data": "test tones", "metrics": {}}
    write_onnx(Octaves(), path, (torch.zeros(2, 4), torch.tensor([24, 84])), ["z", "pitch"], meta)
    model = NoteModel(path)
    assert in_tune(model, np.array([-1, 0, 0, 0], np.float32))
    assert not in_tune(model, np.array([1, 0, 0, 0], np.float32))


def test_presets_find_and_encode_refuse_a_taken_name_before_the_search(tiny_notes, tmp_path):
    """A family preset already in --out is said in one line before minutes of work (no note set is even read);
    what is given (the checkpoint) is checked first."""
    from synth.core.timbre import Preset, save_preset
    from synth.model.voice_train import VoiceTrainConfig, train
    from tests.torch_voices import TINY_NET

    train(VoiceTrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "run"), net=TINY_NET, batch=2,
                           max_steps=1), progress=False)
    out = tmp_path / "presets"
    save_preset(Preset("Keys", np.zeros(16, np.float32), description="mine"), out)
    for args in (["find", "--data", str(tmp_path / "no-such-set")],
                 ["encode", str(tmp_path / "run" / "checkpoint.pt"), "--data", str(tmp_path / "no-such-set")]):
        proc = subprocess.run([sys.executable, "-m", "synth", "presets", *args, "--out", str(out)],
                              capture_output=True, text=True, timeout=120)
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode != 0 and "keys.json already exists; give --overwrite or --replace-weaker" in last
    bad = subprocess.run([sys.executable, "-m", "synth", "presets", "encode", str(tmp_path / "no.pt"), "--data",
                          str(tmp_path / "no-such-set"), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "already exists" not in bad.stderr and "no.pt" in bad.stderr
    proc = subprocess.run([sys.executable, "-m", "synth", "presets", "find", "--data", str(tmp_path / "no-such-set"),
                           "--out", str(out), "--only", "Organ"], capture_output=True, text=True, timeout=120)
    assert "already exists" not in proc.stderr and "no note set in" in proc.stderr  # the missing family: goes on


def test_the_card_shows_brightness_against_velocity_only_as_measured_on_like_notes():
    """The card prints the same-instrument, same-pitch table with each family's rise; an old file's table, which
    grouped unlike notes by velocity, is left out rather than shown under that heading."""
    from synth.model.voice_export import _metric_lines

    row = {"set": "sound: x", "notes": 2, "families": {"bass": {"attack_ms": [7.0, 11.0]}},
           "brightness_by_velocity": {"bass": {"40": [217.0, 201.0], "120": [217.0, 210.0]}},
           "brightness_rise_cents": {"bass": [0.0, 6.4]}}
    text = "\n".join(_metric_lines([row]))
    assert "same instruments and pitches at each velocity" in text and "v40: 217 / 201" in text
    assert "rise: +0 / +6 cents" in text
    old = {"set": "sound: x", "notes": 2, "families": row["families"], "velocity_centroid": {"bass": {"40": [689, 694]}}}
    assert "689" not in "\n".join(_metric_lines([old]))
