"""How the voice sounds beside the real notes: per GM family, each sound measure (sound_metrics) of the note set's
held-out notes and of ours at the same pitches and velocities, with the same analysis on both.

Ours are either reconstructions (a training checkpoint's encoder gives each real note's latent) or a model file's
notes at a latent per family (its presets). Both numbers are reported side by side, as a listener compares.
"""
from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Protocol

import numpy as np

from synth.model import dataset
from synth.model.sound_metrics import centroid, note_metrics


class Renderer(Protocol):
    """Our notes for real ones: (real audio, pitch, velocity, family) → audio, played at velocities `at` (default
    the real notes' own)."""

    def __call__(self, audio: np.ndarray, pitch: np.ndarray, velocity: np.ndarray, family: np.ndarray,
                 at: np.ndarray | None = None) -> np.ndarray: ...


METRICS = ("ripple_db", "sideband_db", "hnr_db", "attack_ms", "decay_db", "above8k_db", "centroid_hz", "level_db",
           "vibrato_cents")


def held_out(data_dir: Path, per_family: int = 24, seed: int = 3, families: set[int] | None = None) -> dataset.NoteSet:
    """Up to `per_family` held-out notes of each family (of `families`, default all; a reproducible choice)."""
    notes = dataset.load(data_dir, "test")
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(notes.family == f))[:per_family]
                           for f in range(len(dataset.FAMILIES)) if families is None or f in families])
    keep.sort()
    return notes.subset(keep)


def checkpoint_renderer(path: str | os.PathLike) -> Renderer:
    """Reconstructions by a training checkpoint: the encoder's mean latent of each real note, decoded."""
    import torch

    from synth.model.voice import MelFeatures
    from synth.model.voice_train import load_voice

    voice, encoder, _ = load_voice(path)
    mel = MelFeatures()

    @torch.no_grad()
    def render(audio: np.ndarray, pitch: np.ndarray, velocity: np.ndarray, family: np.ndarray,
               at: np.ndarray | None = None) -> np.ndarray:
        played = velocity if at is None else at
        out = []
        for i in range(0, len(audio), 16):
            x = torch.from_numpy(dataset.NoteSet.to_float(audio[i:i + 16]))
            p = torch.from_numpy(pitch[i:i + 16])
            v = torch.from_numpy(velocity[i:i + 16].astype(np.float32) / 127)
            z, _ = encoder(mel(x), p, v)
            out.append(voice.decode(z, p, torch.from_numpy(played[i:i + 16].astype(np.float32) / 127)).numpy())
        return np.concatenate(out)
    return render


def model_renderer(path: str | os.PathLike, latents: dict[int, np.ndarray]) -> Renderer:
    """A model file's notes at one latent per family (family index → z), at the note set's rate."""
    from synth.model.evaluate import render_at_set_rate
    from synth.runtime.model import NoteModel

    model = NoteModel(path)

    def render(audio: np.ndarray, pitch: np.ndarray, velocity: np.ndarray, family: np.ndarray,
               at: np.ndarray | None = None) -> np.ndarray:
        z = np.stack([latents[int(f)] for f in family]).astype(np.float32)
        p = np.clip(pitch, model.info.pitch_min, model.info.pitch_max)
        return render_at_set_rate(model, z, p, (velocity if at is None else at) / 127.0, batch=16)
    return render


def family_table(notes: dataset.NoteSet, ours: np.ndarray, frame_rate: float) -> dict[str, dict[str, list[float]]]:
    """family → metric → [real median, ours median]."""
    per: dict[str, dict[str, list[list[float]]]] = defaultdict(lambda: defaultdict(lambda: [[], []]))
    for real, mine, pitch, fam in zip(notes.audio, ours, notes.pitch, notes.family):
        name = dataset.FAMILIES[int(fam)]
        for side, audio in enumerate((dataset.NoteSet.to_float(real), mine)):
            for k, v in note_metrics(audio, dataset.SAMPLE_RATE, int(pitch), frame_rate).items():
                per[name][k][side].append(v)
    return {fam: {k: [float(np.nanmedian(v[0])), float(np.nanmedian(v[1]))] for k, v in m.items()}
            for fam, m in per.items()}


VELOCITY_HEADING = "Spectral centroid (Hz) of the same instruments and pitches at each velocity, real / ours"


def format_velocity_table(centroids: dict[str, dict[int, list[float]]], rise: dict[str, list[float]]) -> str:
    """One line per family: the median spectral centroid at each velocity, real / ours, and the median note's rise
    in cents from the softest velocity to the hardest."""
    return "\n".join(f"{fam:22s}" + "  ".join(f"v{v}: {c[0]:.0f} / {c[1]:.0f}" for v, c in by_vel.items())
                     + (f"  rise: {rise[fam][0]:+.0f} / {rise[fam][1]:+.0f} cents" if fam in rise else "")
                     for fam, by_vel in sorted(centroids.items()))


def velocity_brightness(data_dir: Path, notes: dataset.NoteSet, ours: np.ndarray,
                        render: Renderer) -> tuple[dict[str, dict[int, list[float]]], dict[str, list[float]]]:
    """How much brighter a harder note is, real beside ours: the held-out notes' instruments and pitches played at
    each velocity of the note set, the real notes of the same soundfont, program and pitch, and ours from each
    held-out note's latent (a note whose pitch the set lacks at some velocity is left out). Returns family →
    velocity → [real, ours] median spectral centroid (Hz), and family → [real, ours] median rise in cents of a
    note's centroid from the softest velocity to the hardest. (Grouping the held-out notes by their own velocity
    compared different pitches and programs: it said a bass at velocity 40 was six times as bright as one at 80.)"""
    layers = dataset.layers_of(data_dir, [(str(s), int(p), int(k)) for s, p, k in
                                          zip(notes.soundfont, notes.program, notes.pitch)])
    velocities = sorted({v for by_vel in layers for v in by_vel})
    full = [i for i, by_vel in enumerate(layers) if len(by_vel) == len(velocities)]
    hz = np.zeros((len(notes), len(velocities), 2))  # note, velocity, real / ours
    for j, v in enumerate(velocities):
        other = np.asarray([i for i in full if notes.velocity[i] != v], np.int64)
        played = dict(zip(other.tolist(), render(notes.audio[other], notes.pitch[other], notes.velocity[other],
                                                 notes.family[other], at=np.full(len(other), v, np.int64))
                          if len(other) else []))
        for i in full:
            hz[i, j] = centroid(layers[i][v], dataset.SAMPLE_RATE), centroid(played.get(i, ours[i]), dataset.SAMPLE_RATE)
    by_family: dict[str, list[int]] = defaultdict(list)
    for i in full:
        by_family[dataset.FAMILIES[int(notes.family[i])]].append(i)
    centroids = {f: {v: np.median(hz[rows, j], axis=0).tolist() for j, v in enumerate(velocities)}
                 for f, rows in by_family.items()}
    rise = {f: np.median(1200 * np.log2((hz[rows, -1] + 1e-9) / (hz[rows, 0] + 1e-9)), axis=0).tolist()
            for f, rows in by_family.items()} if len(velocities) > 1 else {}
    return centroids, rise


def format_family_table(table: dict[str, dict[str, list[float]]]) -> str:
    """One line per family: each metric as real / ours."""
    head = ["family"] + [m.replace("_", " ") for m in METRICS]
    rows = [head]
    for fam in sorted(table):
        cells = [fam]
        for m in METRICS:
            r, o = table[fam].get(m, [math.nan, math.nan])
            cells.append(f"{r:.1f} / {o:.1f}" if m != "centroid_hz" else f"{r:.0f} / {o:.0f}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def evaluate_sound(data_dir: Path, render: Renderer, frame_rate: float, per_family: int = 24,
                   families: set[int] | None = None) -> dict:
    """Per-family measures (real, ours) and centroid against velocity for held-out notes and ours at the same
    pitches and velocities."""
    notes = held_out(data_dir, per_family, families=families)
    ours = render(notes.audio, notes.pitch, notes.velocity, notes.family)
    bad = ~np.isfinite(ours).all(axis=1)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} generated notes are not finite")
    centroids, rise = velocity_brightness(data_dir, notes, ours, render)
    return {"families": family_table(notes, ours, frame_rate),
            "brightness_by_velocity": centroids, "brightness_rise_cents": rise, "notes": int(len(notes))}
