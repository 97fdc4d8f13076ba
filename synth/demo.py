"""A short demo phrase rendered offline with the note model: proof that the shipped model plays music."""
from __future__ import annotations

import os

import numpy as np

from synth.audio_io import write_wav
from synth.runtime.model import DEFAULT_MODEL, NoteModel

# (start beat, MIDI pitch, length in beats) at 100 bpm: a C major - A minor - F - G progression under a melody.
PHRASE = [(0, 48, 2), (0, 55, 2), (0, 64, 1), (1, 67, 1), (2, 45, 2), (2, 52, 2), (2, 72, 1), (3, 69, 1),
          (4, 41, 2), (4, 48, 2), (4, 65, 1), (5, 69, 1), (6, 43, 2), (6, 50, 2), (6, 67, 1), (7, 71, 1),
          (8, 48, 4), (8, 55, 4), (8, 60, 4), (8, 64, 4), (8, 72, 4)]
BEAT_SECONDS = 0.6
ATTACK_S, RELEASE_S = 0.01, 0.3


def render_demo(path: str | os.PathLike, model_path: str | os.PathLike | None = None, seed: int = 7) -> float:
    """Render PHRASE with one random timbre; notes are cut at their length with a short linear release.

    Returns the length in seconds. (The live engine's voices replace this simple mixer in a later issue.)
    """
    model = NoteModel(model_path or DEFAULT_MODEL)
    sr, n = model.info.sample_rate, model.note_samples
    z = np.random.default_rng(seed).standard_normal(model.info.z_dim).astype(np.float32)
    notes = model.render(np.repeat(z[None], len(PHRASE), axis=0), [p for _, p, _ in PHRASE])
    end = max(s + length for s, _, length in PHRASE) * BEAT_SECONDS + RELEASE_S + 0.5
    out = np.zeros(int(end * sr), dtype=np.float32)
    attack, release = int(ATTACK_S * sr), int(RELEASE_S * sr)
    for (start, _, length), note in zip(PHRASE, notes):
        hold = min(int(length * BEAT_SECONDS * sr), n - release)
        env = np.ones(hold + release, dtype=np.float32)
        env[:attack] = np.linspace(0, 1, attack, endpoint=False)
        env[hold:] = np.linspace(1, 0, release)
        i = int(start * BEAT_SECONDS * sr)
        out[i:i + len(env)] += note[:len(env)] * env
    peak = float(np.abs(out).max())
    if peak > 0:
        out *= 0.9 / peak
    write_wav(path, out, sr)
    return len(out) / sr
