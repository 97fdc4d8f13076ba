"""The note spec: what one note of the note set and of a model is (rate, pitch range, lengths), and the GM
families its instruments are labelled with. Training writes notes by it; the live side reads presets by it."""
from __future__ import annotations

SAMPLE_RATE = 48000  # the note set's and the shipped voice's rate (a model's own rate is in its metadata)
NOTE_SECONDS = 4.0  # a rendered note: HOLD_SECONDS held, then its release
HOLD_SECONDS = 3.0
PITCH_MIN, PITCH_MAX = 24, 84  # MIDI pitches of the note set and the voice (NSynth's and GANSynth's range)
N_PITCHES = PITCH_MAX - PITCH_MIN + 1

FAMILIES = (
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble",
    "brass", "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic",
)


def family_of(program: int) -> int:
    """GM family index (0-13) of a melodic program (0-111)."""
    return program // 8
