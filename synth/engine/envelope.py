"""What a rendered note's own level says about how to play it, measured once per note at bank time.

A note whose level falls well below its peak by note-off is *percussive* (piano, guitar, mallets, plucked bass):
the voice plays it through and, held past its stored end, keeps decaying at the note's own final rate instead of
looping a steady stretch. Every note with a release segment (the model's part after note-off) gets that release
as a gain curve, so a released voice follows the model's damping rather than one fixed fade. A sustained note's
loop is held at one level (steady_loop), so a note held past its stored end does not repeat a swell.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEP_SECONDS = 0.010  # resolution of levels and of the release curve
# Level at note-off re the note's peak (dB) under which a note counts as percussive. Chosen on the 48 kHz FluidR3
# note set (3 s hold, every 6th pitch, 3 velocities, 2,000 notes): medians per program are -10 to -60 dB for piano,
# mallets, plucked guitars and basses, pizzicato, harp, timpani, and -0.2 to -6.4 dB for organs, bowed strings,
# ensembles, brass. At -10 dB 7.6 % of the decaying programs' notes (mostly low electric-piano notes) are looped
# and 3.9 % of the sustained programs' notes are not (-8 dB: 3.7 % and 11 %; -12 dB: 12 % and 2.3 %).
PERCUSSIVE_DB = -10.0
MIN_TAIL_DB_PER_SECOND = 3.0  # a percussive note held past its stored end fades at least this fast
SILENT = 1e-4  # a release curve ends (exactly 0) where it stays under this gain (-80 dB)
LOOP_LEVEL_SECONDS = 0.3  # a sustained note's loop keeps the level over this window steady (steady_loop)


@dataclass(frozen=True)
class NoteEnvelope:
    decay_db: float  # level just before note-off re the note's peak
    percussive: bool
    release: np.ndarray | None  # gain per STEP_SECONDS after note-off: 1 at note-off, ends at 0; None: no release


def energy(x: np.ndarray) -> np.ndarray:
    """Cumulative energy of x (one more element than x), from which `levels` reads any window."""
    return np.concatenate([[0.0], np.cumsum(np.square(x, dtype=np.float64))])


def levels(cs: np.ndarray, centres: np.ndarray, window: int) -> np.ndarray:
    """RMS over `window` samples around each centre (windows clipped at the ends), from energy(x)."""
    n = len(cs) - 1
    lo = np.clip(centres - window // 2, 0, n)
    hi = np.clip(lo + window, 0, n)
    return np.sqrt(np.maximum(cs[hi] - cs[lo], 0.0) / np.maximum(hi - lo, 1))


def level_window(rate: int, pitch_hz: float) -> int:
    """10 ms, or two periods of a low note, so a level does not ripple with the waveform."""
    return max(int(STEP_SECONDS * rate), int(2 * rate / pitch_hz))


def analyse(note: np.ndarray, rate: int, hold: int, pitch_hz: float) -> NoteEnvelope:
    """Measure a note (at `rate`, note-off at sample `hold`): its decay by note-off and its release curve (None
        when the note has no release segment)."""
    win, step = level_window(rate, pitch_hz), int(STEP_SECONDS * rate)
    cs = energy(note)
    held = levels(cs, np.arange(win // 2, max(hold - win // 2, win // 2 + 1), step), win)
    peak = float(held.max())
    at_off = float(levels(cs, np.array([hold - win // 2]), win)[0])
    decay_db = 20 * np.log10(max(at_off, 1e-12) / max(peak, 1e-12))
    release = None
    if len(note) - hold >= 2 * step:
        after = levels(cs, hold + step * np.arange(1, (len(note) - hold) // step), win) / max(at_off, 1e-12)
        curve = np.concatenate([[1.0], np.clip(after, 0.0, 1.0), [0.0]])
        # A release only fades: never 6 dB over its quietest point so far (as the IF-Mel decoder's rule), which also
        # drops what FFT resampling wraps from a note's attack into its last milliseconds.
        curve = np.minimum(curve, 2.0 * np.minimum.accumulate(curve))
        loud = np.flatnonzero(curve >= SILENT)
        curve = curve[:loud[-1] + 2]  # up to the first point of the silence it ends in
        curve[-1] = 0.0
        release = curve.astype(np.float32)
    return NoteEnvelope(decay_db, decay_db < PERCUSSIVE_DB, release)


def steady_loop(note: np.ndarray, rate: int, start: int, end: int) -> None:
    """Scale note[start:] in place so its level over LOOP_LEVEL_SECONDS stays at its level at `start` (gain within
    ±6 dB): a sustained note's loop then repeats no slow swell (a held Synth Lead rose and fell 0.6 dB every
    second), only what is quicker (a bow's grain, tremolo). Levels from `start` to `end`; past `end` the last gain."""
    step, win = int(STEP_SECONDS * rate), int(LOOP_LEVEL_SECONDS * rate)
    centres = np.arange(start, max(end, start + 1), step)
    lo = max(start - win // 2, 0)
    level = levels(energy(note[lo:]), centres - lo, win)
    if level[0] <= 0.0:
        return
    gain = np.clip(level[0] / np.maximum(level, 1e-12), 0.5, 2.0)
    note[start:] *= np.interp(np.arange(start, len(note)), centres, gain).astype(note.dtype)


def tail_decay(note: np.ndarray, rate: int, start: int, end: int, pitch_hz: float) -> float:
    """The rate at which note[start:end] fades, as a natural-log gain per sample (at least MIN_TAIL_DB_PER_SECOND):
    a least-squares line through its levels in dB."""
    win, step = level_window(rate, pitch_hz), int(STEP_SECONDS * rate)
    lo = max(start - win, 0)
    centres = np.arange(start, end, step)
    db = 20 * np.log10(levels(energy(note[lo:end]), centres - lo, win) + 1e-9)
    slope_db_per_sample = np.polyfit(centres.astype(np.float64), db, 1)[0] if len(centres) > 2 else 0.0
    db_per_second = max(-slope_db_per_sample * rate, MIN_TAIL_DB_PER_SECOND)
    return float(db_per_second * np.log(10) / 20 / rate)
