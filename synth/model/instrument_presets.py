"""`presets instruments SET`: a preset for each instrument of a note set (your recordings' folders, your
soundfont's programs), for playing a fine-tuned model with the instruments it was tuned on.

Each instrument's notes nearest MIDI 48, 60 and 72 are imported as one-shots (synth.model.one_shot: the model's
encoder, then refining against the note's spectrum); the candidate whose notes come closest to all the
instrument's own notes at their pitches (median log-spectral distance) becomes its preset.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synth.core.notes import GM_PROGRAMS, HOLD_SECONDS, SAMPLE_RATE
from synth.model import dataset
from synth.model.one_shot import LAYER_VELOCITY, import_sound, log_spectral_distance
from synth.model.voice import Encoder, Voice

KEYS = (48, 60, 72)  # the notes tried as the instrument's timbre
MAX_COMPARED = 8  # notes of the instrument (spread over its range) each candidate is compared with


@dataclass
class InstrumentPreset:
    name: str
    soundfont: str
    program: int
    z: np.ndarray
    source_pitch: int    # the note whose import became the preset
    lsd: float           # median log-spectral distance (dB) to the instrument's compared notes
    compared: int


def instruments(data_dir: str | Path) -> dict[tuple[str, int], str]:
    """(soundfont, program) → a name for each instrument of a note set: a recordings folder's instrument names
    (build.json), else "SOUNDFONT GM-program-name"."""
    rows = dataset._rows(Path(data_dir))
    named: dict[int, str] = {}
    try:
        named = {int(v["program"]): k for k, v in dataset.build_summary(data_dir).get("instruments", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    found = sorted({(r["soundfont"], int(r["program"])) for r in rows})
    return {(sf, p): named.get(p) or f"{sf} {GM_PROGRAMS[p]}" for sf, p in found}


def find_instrument_presets(data_dir: str | Path, voice: Voice, encoder: Encoder, steps: int = 40,
                            only: set[str] | None = None):
    """Yields an InstrumentPreset per instrument of the set (or of those named in `only`)."""
    for (soundfont, program), name in instruments(data_dir).items():
        if only is not None and name not in only:
            continue
        notes = dataset.real_notes(Path(data_dir), program, list(range(0, 128)), soundfont=soundfont)
        pitches = sorted(notes)
        compared = [pitches[i] for i in np.unique(np.linspace(0, len(pitches) - 1, MAX_COMPARED).round().astype(int))]
        hold = int(HOLD_SECONDS * SAMPLE_RATE)
        best: InstrumentPreset | None = None
        for key in sorted({min(pitches, key=lambda p: abs(p - k)) for k in KEYS}):
            imported = import_sound(voice, encoder, notes[key][_onset(notes[key]):], pitch=key, steps=steps,
                                    where=f"{name}'s MIDI {key} note")
            z = torch.from_numpy(imported.z)[None]
            with torch.no_grad():
                ours = [voice(z, torch.tensor([p]), torch.tensor([LAYER_VELOCITY / 127.0]))[0, :hold].numpy()
                        for p in compared]
            lsd = float(np.median([log_spectral_distance(notes[p][_onset(notes[p]):][:hold], o)
                                   for p, o in zip(compared, ours)]))
            if best is None or lsd < best.lsd:
                best = InstrumentPreset(name, soundfont, program, imported.z, key, lsd, len(compared))
        assert best is not None
        yield best


def _onset(note: np.ndarray) -> int:
    """Where a stored note's sound starts (its level first within 40 dB of its peak)."""
    return int(np.argmax(np.abs(note) >= np.abs(note).max() * 0.01))
