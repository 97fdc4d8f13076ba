"""The timbre map: named presets found in the generator's latent space by the instrument-family classifier.

Many random latents are rendered at a few pitches; the classifier (trained on the real note set, see evaluate)
gives each latent its mean family probabilities, and each named preset takes the latent that scores highest for
its family. The score is stored in the preset, so every preset's family is checked, not guessed by ear.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from synth.engine.latent import Preset
from synth.model.dataset import FAMILIES
from synth.model.evaluate import classify, train_classifier
from synth.runtime.model import NoteModel

TARGETS = [("Keys", "piano"), ("Mallets", "chromatic_percussion"), ("Organ", "organ"), ("Guitar", "guitar"),
           ("Bass", "bass"), ("Strings", "strings"), ("Brass", "brass"), ("Reeds", "reed"), ("Flutes", "pipe"),
           ("Synth Lead", "synth_lead"), ("Synth Pad", "synth_pad"), ("Voices", "ensemble")]
PITCHES = (48, 60, 72)


def family_probabilities(model: NoteModel, clf, z: np.ndarray, pitches: tuple[int, ...] = PITCHES,
                         batch: int = 64) -> np.ndarray:
    """Mean classifier family probabilities [len(z), families] of each latent over the given pitches."""
    total = np.zeros((len(z), len(FAMILIES)))
    for pitch in pitches:
        for i in range(0, len(z), batch):
            audio = model.render(z[i:i + batch], [pitch] * len(z[i:i + batch]))
            total[i:i + batch] += classify(clf, audio)[2]
    return total / len(pitches)


def find_presets(data_dir: str | os.PathLike, model_path: str | os.PathLike, candidates: int = 1024,
                 seed: int = 0) -> tuple[list[tuple[Preset, float]], np.ndarray]:
    """(preset, its family probability) for every target family, and the families of all candidates."""
    clf = train_classifier(Path(data_dir))
    model = NoteModel(model_path)
    z = np.random.default_rng(seed).standard_normal((candidates, model.info.z_dim)).astype(np.float32)
    probs = family_probabilities(model, clf, z)
    out, taken = [], set()
    for name, family in TARGETS:
        j = FAMILIES.index(family)
        order = np.argsort(-probs[:, j])
        i = int(next(k for k in order if k not in taken))
        taken.add(i)
        p = float(probs[i, j])
        out.append((Preset(name, z[i], family, f"timbre map: classifier p({family}) = {p:.2f}, mean over MIDI "
                                               f"{'/'.join(map(str, PITCHES))}; candidate {i} of {candidates}, seed {seed}"),
                    p))
    return out, probs
