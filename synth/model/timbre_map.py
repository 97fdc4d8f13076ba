"""The timbre map: named presets found in the generator's latent space by the instrument-family classifier.

Many random latents are rendered at a few pitches; the classifier (trained on the real note set, see evaluate)
gives each latent its mean family probabilities, and each named preset starts at the latent that scores highest
for its family (a latent whose notes do not decay to silence by the end of the release counts half). An evolution
strategy then walks it on the sphere of its norm towards a higher score (a family that no random draw reaches may
lie near one). A second classifier, trained with another seed and never searched against, checks the result. Both
scores are stored in the preset, so every preset's family is checked, not guessed.

The voice's encoder also gives latents of real notes: `encode_presets` takes, for each family, the mean latent of
one real program's notes, checked by the same two classifiers.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from synth.core.files import replacing
from synth.core.notes import FAMILIES, SAMPLE_RATE
from synth.core.timbre import Preset
from synth.model.evaluate import (classify, classify_spectrograms, decays, render_at_set_rate, spectrograms,
                                  train_classifier)
from synth.runtime.model import NoteModel

TARGETS = [("Keys", "piano"), ("Mallets", "chromatic_percussion"), ("Organ", "organ"), ("Guitar", "guitar"),
           ("Bass", "bass"), ("Strings", "strings"), ("Brass", "brass"), ("Reeds", "reed"), ("Flutes", "pipe"),
           ("Synth Lead", "synth_lead"), ("Synth Pad", "synth_pad"), ("Voices", "ensemble")]
PITCHES = (48, 60, 72)
# The GM programs a musician means by each preset's name (Keys: a piano, not a harpsichord; Strings: bowed, not
# pizzicato or timpani; Guitar: plucked, not guitar harmonics); `presets encode` takes the others of the family
# only when the note set has none of these.
ARCHETYPES = {"Keys": range(0, 4), "Mallets": range(8, 14), "Organ": range(16, 21), "Guitar": range(24, 28),
              "Bass": range(32, 36), "Strings": range(40, 45), "Brass": range(56, 62), "Reeds": range(64, 72),
              "Flutes": range(72, 77), "Synth Lead": range(80, 88), "Synth Pad": range(88, 96),
              "Voices": range(52, 55)}


def family_scores(model: NoteModel, classifiers: tuple, z: np.ndarray, pitches: tuple[int, ...] = PITCHES,
                  batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(each classifier's mean family probabilities [classifiers, len(z), families] of each latent over the given
    pitches, the share of those pitches at which its release decays to silence [len(z)]). Each note is rendered
    once for all the classifiers."""
    total, decayed = np.zeros((len(classifiers), len(z), len(FAMILIES))), np.zeros(len(z))
    for pitch in pitches:
        for i in range(0, len(z), batch):
            audio = render_at_set_rate(model, z[i:i + batch], np.full(len(z[i:i + batch]), pitch))
            for k, clf in enumerate(classifiers):
                total[k, i:i + batch] += classify(clf, audio)[2]
            decayed[i:i + batch] += decays(audio)
    return total / len(pitches), decayed / len(pitches)


def family_probabilities(model: NoteModel, clf, z: np.ndarray, pitches: tuple[int, ...] = PITCHES) -> np.ndarray:
    """Mean classifier family probabilities [len(z), families] of each latent over the given pitches."""
    return family_scores(model, (clf,), z, pitches)[0][0]


def objective(p: np.ndarray, decay_share: np.ndarray) -> np.ndarray:
    """What the search maximises: the family probability, halved for a latent whose notes all ring past the end of
    the release (an instrument's note should end in silence), so ringing latents still rank by family."""
    return p * (0.5 + 0.5 * decay_share)


NEIGHBOURHOOD_DEGREES = 4.0  # about one step of a 21-step morph between two presets, which lie some 90° apart


def around(z: np.ndarray, directions: np.ndarray, degrees: float = NEIGHBOURHOOD_DEGREES) -> np.ndarray:
    """[len(z), len(directions), dim]: each latent turned by `degrees` towards each direction (its part tangent to
    the latent), on the latent's sphere."""
    z = np.asarray(z, np.float64)
    radius = np.linalg.norm(z, axis=-1, keepdims=True)[:, None]
    unit = z[:, None] / np.maximum(radius, 1e-12)  # the zero latent has no sphere: its neighbours are itself
    d = directions[None] - np.sum(directions[None] * unit, axis=-1, keepdims=True) * unit
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    a = math.radians(degrees)
    return (radius * (math.cos(a) * unit + math.sin(a) * d)).astype(np.float32)


def neighbourhood(model: NoteModel, classifiers: tuple, z: np.ndarray, family: int, neighbours: int = 8,
                  pitches: tuple[int, ...] = PITCHES) -> np.ndarray:
    """[classifiers, 1 + neighbours]: each classifier's probability of the family, mean over the pitches, at the
    latent (column 0) and at `neighbours` latents 4° around it, in directions fixed by the family so two presets of
    a family are measured alike. Each note is rendered once for all the classifiers."""
    directions = np.random.default_rng([1, family]).standard_normal((neighbours, len(z)))
    zs = np.concatenate([np.asarray(z, np.float32)[None], around(np.asarray(z)[None], directions)[0]])
    return family_scores(model, classifiers, zs, pitches)[0][:, :, family]


def firmness(probs: np.ndarray) -> float:
    """The lower, over the classifiers, of the family's probability averaged over a `neighbourhood`: how firmly a
    preset holds its family where a morph leaves it. Presets are compared by it."""
    return float(probs.mean(axis=1).min())


def refine(model: NoteModel, clf, z0: np.ndarray, family: int, generations: int = 30, population: int = 32,
           sigma: float = 0.4, seed: int = 0) -> tuple[np.ndarray, float]:
    """(latent, its probability): a (mu, lambda) evolution strategy from z0 towards a higher mean probability of
    one family. Candidates stay on the sphere of z0's norm, where the prior's draws live; the classifier is only
    queried, never differentiated; the best latent seen by `objective` (which also asks that notes decay) is kept,
    so the result never scores below z0."""
    rng = np.random.default_rng(seed)
    radius = float(np.linalg.norm(z0))
    on_sphere = lambda z: (z * (radius / np.linalg.norm(z, axis=-1, keepdims=True))).astype(np.float32)  # noqa: E731
    best = np.asarray(z0, np.float32)
    (probs,), decay_share = family_scores(model, (clf,), best[None])
    best_p, best_score = float(probs[0, family]), float(objective(probs[0, family], decay_share[0]))
    mean = best
    for g in range(generations):
        step = sigma * 0.93 ** g  # shrinks to a tenth over 30 generations: wide look first, then local
        cand = on_sphere(mean + step * rng.standard_normal((population, len(best))))
        (probs,), decay_share = family_scores(model, (clf,), cand)
        score = objective(probs[:, family], decay_share)
        top = np.argsort(-score)[:max(1, population // 4)]
        if score[top[0]] > best_score:
            best, best_p, best_score = cand[top[0]], float(probs[top[0], family]), float(score[top[0]])
        mean = on_sphere(cand[top].mean(axis=0))
    return best, best_p


def find_presets(data_dir: str | os.PathLike, model_path: str | os.PathLike, candidates: int = 1024,
                 seed: int = 0, generations: int = 0,
                 names: list[str] | None = None) -> tuple[list[tuple[Preset, float]], np.ndarray]:
    """(preset, its `firmness` by the two classifiers) for every target family (or only the named presets), and
    the evaluation classifier's family probabilities of all random candidates. With generations > 0 each preset
    is refined by `refine` from its best candidate."""
    unknown = sorted(set(names or []) - {name for name, _ in TARGETS})
    if unknown:
        raise ValueError(f"no preset target named {', '.join(unknown)}: the targets are "
                         + ", ".join(name for name, _ in TARGETS))
    clf, check = train_classifier(Path(data_dir)), train_classifier(Path(data_dir), seed=1)
    model = NoteModel(model_path)
    z = np.random.default_rng(seed).standard_normal((candidates, model.info.z_dim)).astype(np.float32)
    (probs,), decay_share = family_scores(model, (clf,), z)
    out, taken = [], set()
    for name, family in TARGETS:
        if names and name not in names:
            continue
        j = FAMILIES.index(family)
        order = np.argsort(-objective(probs[:, j], decay_share))
        found = _first_in_tune(model, z, np.array([k for k in order if k not in taken]))
        if found is None:  # no firm candidate plays its pitch: nothing is written for it
            continue
        i = found
        taken.add(i)
        latent, p = z[i], float(probs[i, j])
        how = f"candidate {i} of {candidates}, seed {seed}"
        if generations > 0:
            latent, p = refine(model, clf, latent, j, generations, seed=seed + j)
            how += f", refined over {generations} generations"
        probs_near = neighbourhood(model, (clf, check), latent, j)
        out.append((_checked(name, latent, family, p, float(probs_near[1, 0]), how), firmness(probs_near)))
    return out, probs


def in_tune(model: NoteModel, z: np.ndarray, pitches: tuple[int, ...] = PITCHES, cents: float = 50.0) -> bool:
    """Whether the latent's notes sound the pitch they are asked for (YIN over 0.1-1 s within `cents` at each of
    `pitches`, velocity 100): the classifiers take a guitar's harmonics for a guitar, a player does not."""
    from synth.model.evaluate import yin_f0

    audio = render_at_set_rate(model, np.repeat(z[None], len(pitches), 0), np.array(pitches),
                               np.full(len(pitches), 100 / 127, np.float32) if model.takes_velocity else None)
    f0 = yin_f0(audio, fmax=2000.0)
    asked = 440.0 * 2 ** ((np.array(pitches) - 69) / 12)
    return bool(np.all(np.abs(1200 * np.log2(f0 / asked)) <= cents))


def _first_in_tune(model: NoteModel, z: np.ndarray, order: np.ndarray, tries: int = 16) -> int | None:
    """The first of `order`'s first `tries` latents that is in tune, or None."""
    return next((int(k) for k in order[:tries] if in_tune(model, z[k])), None)


def _checked(name: str, z: np.ndarray, family: str, p: float, q: float, how: str) -> Preset:
    """A preset that carries both classifiers' scores, in words and as numbers."""
    words = (f"timbre map: classifier p({family}) = {p:.2f}, second classifier {q:.2f}, mean over MIDI "
             f"{'/'.join(map(str, PITCHES))}; {how}")
    return Preset(name, np.asarray(z, np.float32), family, words, {"classifier_p": round(p, 4),
                                                                    "second_classifier_p": round(q, 4)})


def recheck(data_dir: str | os.PathLike, model_path: str | os.PathLike, preset: Preset) -> tuple[Preset, float]:
    """(the preset with both classifiers' scores measured again on this model, its `firmness`; -1 for a family the
    classifiers do not know): stored scores belong to the model and decoder they were measured on."""
    if preset.family not in FAMILIES:
        return preset, -1.0
    model, j = NoteModel(model_path), FAMILIES.index(preset.family)
    classifiers = tuple(train_classifier(Path(data_dir), seed=s) for s in (0, 1))
    probs = neighbourhood(model, classifiers, preset.z, j)
    how = preset.description.split("; ", 1)[-1]
    return _checked(preset.name, preset.z, preset.family, float(probs[0, 0]), float(probs[1, 0]), how), firmness(probs)


def encode_presets(data_dir: str | os.PathLike, checkpoint: str | os.PathLike, model_path: str | os.PathLike,
                   pitches: range = range(36, 85), limit: int = 8000,
                   min_probability: float = 0.3) -> list[tuple[Preset, float]]:
    """(preset, its `firmness` by the two classifiers) per target family. Candidates, for every program of the
    family: the mean encoder latent of its real training notes over `pitches` (a reproducible subset of `limit`
    notes), and the latents of its single notes nearest MIDI 48, 60 and 72 (a mean over the keyboard can fall
    between what the encoder does with low and high notes). The programs the preset's name means (ARCHETYPES)
    come first; the family's others only when none of those reaches `min_probability` firmness. The evaluation
    classifier picks the candidate, the second classifier checks it. `model_path` must be the export of
    `checkpoint` (the latents are rendered through it). Families the note set lacks are left out."""
    from synth.model import dataset
    from synth.model.voice import MelFeatures
    from synth.model.voice_export import voice_from_model_file
    from synth.model.voice_train import load_voice

    _, encoder, _ = load_voice(checkpoint)
    played = voice_from_model_file(model_path)  # its prior map turns encoded latents into played ones
    mel = MelFeatures()
    classifiers = (train_classifier(Path(data_dir)), train_classifier(Path(data_dir), seed=1))
    model = NoteModel(model_path)
    notes = dataset.load(Path(data_dir), "train", limit=limit, seed=4)

    def best(programs: list[int], family: int) -> tuple[np.ndarray, float, np.ndarray, int, str] | None:
        """(latent, its probability, its neighbourhood's probabilities, program, how) of the most probable candidate
        that is in tune, or None."""
        latents, sources = [], []
        for program in programs:
            idx = np.flatnonzero((notes.program == program) & np.isin(notes.pitch, list(pitches)))
            for z, how in _program_latents(encoder, mel, notes, idx, program):
                latents.append(played.to_input(z[None])[0].numpy())
                sources.append((program, how))
        stacked = np.stack(latents).astype(np.float32)
        probs = family_probabilities(model, classifiers[0], stacked)[:, family]
        k = _first_in_tune(model, stacked, np.argsort(-probs))
        if k is None:
            return None
        return stacked[k], float(probs[k]), neighbourhood(model, classifiers, stacked[k], family), *sources[k]

    out = []
    for name, family in TARGETS:
        j = FAMILIES.index(family)
        programs = sorted({int(p) for p in notes.program[(notes.family == j) & np.isin(notes.pitch, list(pitches))]})
        if not programs:  # the note set has no such instrument
            continue
        meant = [p for p in programs if p in ARCHETYPES[name]]
        others = [p for p in programs if p not in meant]
        choice = best(meant, j) if meant else None
        if others and (choice is None or firmness(choice[2]) < min_probability):
            other = best(others, j)
            if other is not None and (choice is None or firmness(other[2]) > firmness(choice[2])):
                choice = other
        if choice is None:  # no candidate plays its pitch
            continue
        z, p, near, program, how = choice
        preset = _checked(name, z, family, p, float(near[1, 0]), f"encoded: {how}")
        preset.extra["gm_program"] = program  # the instrument it was encoded from: its real notes for pictures
        out.append((preset, firmness(near)))
    return out


def _program_latents(encoder: Any, mel: Any, notes: Any, idx: np.ndarray, program: int) -> list[tuple[Any, str]]:
    """(generator latent, how it was made) candidates of one program's notes `idx`: their mean latent, and the
    latents of the notes nearest MIDI 48, 60 and 72."""
    import torch

    with torch.no_grad():
        means = torch.cat([encoder(mel(torch.from_numpy(notes.to_float(notes.audio[idx[i:i + 32]]))),
                                   torch.from_numpy(notes.pitch[idx[i:i + 32]]),
                                   torch.from_numpy(notes.velocity[idx[i:i + 32]].astype(np.float32) / 127))[0]
                           for i in range(0, len(idx), 32)])
    lo, hi = int(notes.pitch[idx].min()), int(notes.pitch[idx].max())
    out = [(means.mean(dim=0), f"mean latent of program {program}'s notes at MIDI {lo}-{hi}")]
    for key in (48, 60, 72):
        i = int(np.argmin(np.abs(notes.pitch[idx] - key)))
        out.append((means[i], f"latent of program {program}'s MIDI {notes.pitch[idx[i]]} note at velocity "
                              f"{notes.velocity[idx[i]]}"))
    return out


def slerp_curve(data_dir: str | os.PathLike, model_path: str | os.PathLike, a: Preset, b: Preset,
                steps: int = 11) -> dict:
    """Classifier family probabilities along slerp(a, b, t), t = 0..1, mean over all the model's pitches: how
    smoothly the timbre moves between two presets. `max_step` is the largest change of any family's probability
    between neighbouring t."""
    model = NoteModel(model_path)
    keys = tuple(range(model.info.pitch_min, model.info.pitch_max + 1))
    return _curve(model, train_classifier(Path(data_dir)), a, b, steps, keys)


def pair_curves(data_dir: str | os.PathLike, model_path: str | os.PathLike, presets: list[Preset],
                steps: int = 11) -> list[dict]:
    """`slerp_curve` for every pair of presets, so smoothness is reported across the whole map, not one pair; at the
    search's three pitches, which keeps 66 pairs to minutes on a CPU."""
    model, clf = NoteModel(model_path), train_classifier(Path(data_dir))
    return [_curve(model, clf, a, b, steps, PITCHES) for i, a in enumerate(presets) for b in presets[i + 1:]]


def _curve(model: NoteModel, clf, a: Preset, b: Preset, steps: int, pitches: tuple[int, ...]) -> dict:
    """The curve, plus `sound_steps`: the RMS change in dB of the notes' log-mel spectrograms between neighbouring
    t (mean over the pitches), which says whether a jump in probabilities is a jump in the sound itself; and the
    reference `crossfade_max_step`: the same measure along a plain crossfade (1 - t) a + t b of the two end notes,
    which is how sharply the classifier itself turns between the two sounds when nothing is learned in between."""
    from synth.core.timbre import slerp

    t = np.linspace(0.0, 1.0, steps)
    z = np.stack([slerp(a.z, b.z, float(x)) for x in t]).astype(np.float32)
    probs, mixed, sound = np.zeros((steps, len(FAMILIES))), np.zeros((steps, len(FAMILIES))), np.zeros(steps - 1)
    for pitch in pitches:
        audio = render_at_set_rate(model, z, np.full(steps, pitch))
        specs = spectrograms(clf, audio)
        probs += classify_spectrograms(clf, specs)[2] / len(pitches)
        fade = ((1.0 - t)[:, None] * audio[0] + t[:, None] * audio[-1]).astype(np.float32)
        mixed += classify_spectrograms(clf, spectrograms(clf, fade))[2] / len(pitches)
        db = specs.numpy()[:, 0] * (5 * 20 / math.log(10))
        db = np.maximum(db, db.max() - 80.0)
        sound += np.sqrt(np.mean(np.square(np.diff(db, axis=0)), axis=(1, 2))) / len(pitches)
    return {"from": a.name, "to": b.name, "t": t.tolist(), "pitches": list(pitches), "families": list(FAMILIES),
            "probabilities": probs.round(4).tolist(), "max_step": float(np.abs(np.diff(probs, axis=0)).max()),
            "sound_steps": sound.round(3).tolist(),
            "crossfade_max_step": float(np.abs(np.diff(mixed, axis=0)).max())}


def format_curve(curve: dict, show: int = 4) -> str:
    """The curve as a table of the families that matter most along it."""
    probs = np.asarray(curve["probabilities"])
    top = np.argsort(-probs.max(axis=0))[:show]
    names = [curve["families"][j] for j in top]
    lines = [f"slerp {curve['from']} → {curve['to']}: classifier family probabilities (mean over MIDI "
             f"{_keys(curve.get('pitches', PITCHES))}); dB: spectrogram change from the step before",
             "t     " + "  ".join(f"{n:>20s}" for n in names) + "      dB"]
    sound = [None] + list(curve.get("sound_steps", [None] * (len(probs) - 1)))
    for t, row, db in zip(curve["t"], probs, sound):
        lines.append(f"{t:4.2f}  " + "  ".join(f"{row[j]:20.3f}" for j in top)
                     + (f"  {db:6.2f}" if db is not None else ""))
    lines.append(f"largest change between neighbouring steps: {curve['max_step']:.3f}"
                 + (f" (a crossfade of the two end notes: {curve['crossfade_max_step']:.3f})"
                    if "crossfade_max_step" in curve else ""))
    return "\n".join(lines)


def format_pairs(curves: list[dict]) -> str:
    """One line per preset pair, roughest first: the largest family-probability step, where it falls, the same
    along a crossfade of the pair's end notes (the classifier's own sharpness between the two sounds), and the
    largest spectrogram step against the median one (near 1: the sound moves evenly)."""
    lines = [f"slerp between every pair of presets, mean over MIDI {_keys(curves[0].get('pitches', PITCHES))}",
             f"{'pair':34s}  max step    at t   crossfade   dB max / median"]
    for c in sorted(curves, key=lambda c: -c["max_step"]):
        probs, sound = np.asarray(c["probabilities"]), np.asarray(c["sound_steps"])
        k = int(np.abs(np.diff(probs, axis=0)).max(axis=1).argmax())
        fade = f"{c['crossfade_max_step']:9.3f}" if "crossfade_max_step" in c else f"{'–':>9s}"
        lines.append(f"{c['from'] + ' → ' + c['to']:34s}  {c['max_step']:8.3f}  {c['t'][k + 1]:6.2f}   {fade}   "
                     f"{sound.max():5.2f} / {np.median(sound):5.2f}")
    steps = np.array([c["max_step"] for c in curves])
    lines.append(f"{len(curves)} pairs: largest step median {np.median(steps):.3f}, "
                 f"{int((steps <= 0.3).sum())} of {len(curves)} at most 0.3, worst {steps.max():.3f}")
    jumps = np.array([max(c["sound_steps"]) / max(np.median(c["sound_steps"]), 1e-9) for c in curves])
    lines.append(f"sound: largest spectrogram step / median step, median over pairs {np.median(jumps):.2f}, "
                 f"worst {jumps.max():.2f} (1: the sound moves evenly)")
    fades = np.array([c.get("crossfade_max_step", np.nan) for c in curves])
    if np.isfinite(fades).all():
        lines.append(f"crossfades of the same pairs: largest step median {np.median(fades):.3f}; slerp is the "
                     f"smoother of the two in {int((steps < fades).sum())} of {len(curves)} pairs")
    return "\n".join(lines)


def _keys(pitches: list[int] | tuple[int, ...]) -> str:
    """MIDI notes in words: a few listed, a full run as its range."""
    run = len(pitches) > 4 and list(pitches) == list(range(pitches[0], pitches[-1] + 1))
    return f"{pitches[0]}-{pitches[-1]}" if run else "/".join(map(str, pitches))


PICTURE_PITCHES = (36, 48, 60, 72, 84)


def spectrogram_panel(note: np.ndarray, rate: int) -> np.ndarray:
    """uint8 [256, frames]: log magnitude over 80 dB (loudest white), linear frequency 0 to Nyquist."""
    n_fft, hop = 2048, rate // 50
    frames = np.lib.stride_tricks.sliding_window_view(note, n_fft)[::hop] * np.hanning(n_fft)
    mag = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) + 1e-9)
    mag = np.clip((mag - mag.max() + 80) / 80, 0, 1)[:, :1024].reshape(len(mag), 256, 4).mean(axis=2)
    return (mag.T[::-1] * 255).astype(np.uint8)


def spectrogram_picture(model_path: str | os.PathLike, preset: Preset, path: str | os.PathLike,
                        pitches: tuple[int, ...] = PICTURE_PITCHES,
                        real: dict[int, np.ndarray] | None = None, real_name: str = "") -> None:
    """A PNG of the preset's spectrograms (log magnitude over 80 dB, 0-24 kHz, 4 s each) across the keyboard, and
    under them, same analysis, the real notes at the same pitches (`real`, 48 kHz) when given; written atomically."""
    from PIL import Image, ImageDraw

    model = NoteModel(model_path)
    audio = render_at_set_rate(model, np.repeat(preset.z[None].astype(np.float32), len(pitches), axis=0),
                               np.asarray(list(pitches)))
    rows = [[spectrogram_panel(note, SAMPLE_RATE) for note in audio]]
    if real:
        blank = np.zeros_like(rows[0][0])
        rows.append([spectrogram_panel(real[p], SAMPLE_RATE)[:, :blank.shape[1]] if p in real else blank
                     for p in pitches])
    h, w = rows[0][0].shape
    img = Image.new("L", (len(pitches) * (w + 4) - 4, len(rows) * (h + 4) - 4))
    draw = ImageDraw.Draw(img)
    for r, (row, who) in enumerate(zip(rows, [preset.name, real_name or "real"])):
        for k, (panel, pitch) in enumerate(zip(row, pitches)):
            img.paste(Image.fromarray(panel), (k * (w + 4), r * (h + 4)))
            draw.text((k * (w + 4) + 4, r * (h + 4) + 4), f"{who} MIDI {pitch}", fill=255)
    with replacing(path) as tmp:
        img.save(tmp, format="PNG")
