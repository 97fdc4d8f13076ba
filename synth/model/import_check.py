"""How well one-shot import keeps a sound: real notes the model never trained on (a note set's held-out split, or a
whole note set of another soundfont) imported one by one; per note, the log-spectral distance of the model's note
to the original at the original's pitch, and the family the evaluation classifier gives the preset across the
keyboard beside the one it gives the original."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from synth.core.notes import FAMILIES, SAMPLE_RATE
from synth.model import dataset
from synth.model.one_shot import LAYER_VELOCITY, OneShotError, from_onset, import_sound, load_model

PITCHES = (36, 48, 60, 72, 84)  # where the preset's family is asked for
AGREE = 0.8  # a preset keeps the family when the classifier gives it at this share of PITCHES or more


def _chosen(notes: dataset.NoteSet, per_family: int, seed: int) -> list[int]:
    """Up to `per_family` notes of each family at MIDI 36-72, one per program first where the set has several."""
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for family in range(len(FAMILIES)):
        idx = rng.permutation(np.flatnonzero((notes.family == family) & (notes.pitch >= 36) & (notes.pitch <= 72)))
        first = np.unique(notes.program[idx], return_index=True)[1]
        order = np.concatenate([rng.permutation(first), np.setdiff1d(np.arange(len(idx)), first)]).astype(int)
        out += [int(idx[k]) for k in order[:per_family]]
    return out


def unseen_notes(note_set: Path, trained_on: list[str], limit: int, seed: int,
                 held_out: bool = False) -> tuple[dataset.NoteSet, str]:
    """The notes of a set the model never trained on: its held-out split if the model trained on its soundfonts
    (or `held_out`: to compare models before and after training on it), else all of it (a random `limit` of
    them); and which."""
    listed = dataset.build_summary(note_set).get("soundfonts")
    fonts = {f for f in listed if isinstance(f, str)} if isinstance(listed, list) else set()
    split = "test" if held_out or not fonts or fonts & set(trained_on) else None
    return dataset.load(note_set, split, limit=limit, seed=seed), "held-out split" if split else "all notes"


def check_imports(note_set: str | os.PathLike, model_path: str | os.PathLike, classifier_data: str | os.PathLike,
                  per_family: int = 4, steps: int = 40, seed: int = 0, held_out: bool = False,
                  programs: list[int] | None = None) -> list[dict]:
    """A row per imported note: set, program, family, pitch, log-spectral distances (encoded, refined), the share of
    PITCHES at which the classifier gives the preset the original's family, and whether it gets the original
    right."""
    from synth.model.evaluate import classify, render_at_set_rate, train_classifier
    from synth.runtime.model import NoteModel

    import json

    path = Path(note_set)
    model = NoteModel(model_path)
    try:
        trained_on = json.loads(model.info.training_data).get("soundfonts") or []
    except (ValueError, AttributeError):
        trained_on = []
    notes, which = unseen_notes(path, trained_on, 40 * per_family * len(FAMILIES), seed, held_out)
    if programs:
        keep = np.isin(notes.program, programs)
        notes = notes.subset(keep)
    clf = train_classifier(Path(classifier_data), progress=False)
    voice, encoder = load_model(model_path)
    rows = []
    for i in _chosen(notes, per_family, seed):
        family = int(notes.family[i])
        try:
            sound = from_onset(dataset.NoteSet.to_float(notes.audio[i]), SAMPLE_RATE)
            result = import_sound(voice, encoder, sound, float(notes.pitch[i]), steps=steps)
        except OneShotError as e:
            rows.append({"set": path.name, "program": int(notes.program[i]), "family": FAMILIES[family],
                         "pitch": int(notes.pitch[i]), "refused": str(e)})
            continue
        ours = render_at_set_rate(model, np.repeat(result.z[None], len(PITCHES), 0), np.array(PITCHES),
                                  np.full(len(PITCHES), LAYER_VELOCITY / 127, np.float32))
        said = classify(clf, ours)[2].argmax(1)
        real = classify(clf, dataset.NoteSet.to_float(notes.audio[i:i + 1]))[2].argmax(1)[0]
        # The instrument itself at those pitches (those the set has): how often the classifier hears its family.
        same = dataset.real_notes(path, int(notes.program[i]), list(PITCHES), int(notes.velocity[i]))
        own = classify(clf, np.stack(list(same.values())))[2].argmax(1) if same else np.zeros(0, int)
        rows.append({"set": path.name, "notes": which, "program": int(notes.program[i]), "family": FAMILIES[family],
                     "pitch": int(notes.pitch[i]), "velocity": int(notes.velocity[i]),
                     "lsd_encoded": round(result.encoded_lsd, 2), "lsd": round(result.lsd, 2),
                     "family_share": float((said == family).mean()), "original_classified": bool(real == family),
                     "instrument_share": float((own == family).mean()) if len(own) else None})
    return rows


def _mean(values: list) -> str:
    known = [v for v in values if v is not None]
    return f"{np.mean(known):.2f}" if known else "-"


def format_check(rows: list[dict]) -> str:
    """Per set and family: notes, median log-spectral distance (encoded → refined), the mean share of pitches
    the preset keeps the original's family at beside the share for the real instrument at the same pitches, and
    how many originals the classifier itself gets right; then a line per set."""
    lines = [f"{'set':16s} {'family':22s} {'notes':>5s} {'LSD encoded':>11s} {'LSD refined':>11s} "
             f"{'family kept':>11s} {'instrument':>10s} {'originals right':>15s}"]
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name and "lsd" in r]
        for family in FAMILIES:
            fam = [r for r in mine if r["family"] == family]
            if fam:
                lines.append(f"{name:16s} {family:22s} {len(fam):5d} "
                             f"{np.median([r['lsd_encoded'] for r in fam]):11.1f} "
                             f"{np.median([r['lsd'] for r in fam]):11.1f} "
                             f"{np.mean([r['family_share'] for r in fam]):11.2f} "
                             f"{_mean([r.get('instrument_share') for r in fam]):>10s} "
                             f"{sum(r['original_classified'] for r in fam):>9d} of {len(fam)}")
        if mine:
            kept = sum(r["family_share"] >= AGREE for r in mine)
            real_kept = sum((r.get("instrument_share") or 0) >= AGREE for r in mine)
            lines.append(f"{name} ({mine[0]['notes']}): {len(mine)} notes imported, median LSD {np.median([r['lsd'] for r in mine]):.1f} dB "
                         f"(encoder alone {np.median([r['lsd_encoded'] for r in mine]):.1f}); family kept at "
                         f">= {AGREE:.0%} of MIDI {', '.join(map(str, PITCHES))} for {kept} of {len(mine)} (the real "
                         f"instruments at the pitches the set has: {real_kept} of {len(mine)}); "
                         f"the classifier gets {sum(r['original_classified'] for r in mine)} of the originals right")
        refused = [r for r in rows if r["set"] == name and "refused" in r]
        lines += [f"{name}: refused {r['family']} program {r['program']} MIDI {r['pitch']}: {r['refused']}"
                  for r in refused]
    return "\n".join(lines)
