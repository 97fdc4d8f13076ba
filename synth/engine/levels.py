"""Per-channel levels of a General MIDI file, ours beside FluidSynth's (`gansynth-live levels FILE.mid …`).

Each melodic channel is rendered solo by our engine (`render --channels N`, so with its volume, expression and
pan automation) and by FluidSynth from a GM SoundFont playing the same events at the same samples, reverb and
chorus off so both are dry; the level is the RMS over both sides and the MIDI file's length, in dBFS. A GM
file's mix balance survives when every channel's difference is close to the file's typical difference (the
master levels of two synthesizers differ by a constant that a fader fixes): the table shows both."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from synth.engine.drums import FluidPlayer, render_drums
from synth.core.timbre import Preset
from synth.engine.offline import DRUM_CHANNEL, read_midi_file, render_midi
from synth.runtime.model import NoteModel


@dataclass
class ChannelLevel:
    channel: int  # 1-16
    program: int
    notes: int
    ours_db: float
    fluidsynth_db: float


def rms_db(audio: np.ndarray, frames: int) -> float:
    """RMS of the first `frames` frames over every side, in dBFS (-inf for silence)."""
    x = audio[:frames].astype(np.float64)
    ms = float(np.mean(x * x)) if x.size else 0.0
    return 10 * np.log10(ms) if ms > 0 else float("-inf")


def channel_levels(path: str | os.PathLike, model: NoteModel, presets: list[Preset], soundfont: str | os.PathLike,
                   rate: int = 48000) -> list[ChannelLevel]:
    """Ours and FluidSynth's RMS level of each melodic channel of a GM file, each rendered solo."""
    FluidPlayer(soundfont, rate).close()  # a SoundFont that cannot be played is said once, before any work
    events, seconds = read_midi_file(path)
    frames = max(1, int(round(seconds * rate)))
    out = []
    for ch in range(16):
        if ch == DRUM_CHANNEL:
            continue
        mine = [e for e in events if e.status & 0x0F == ch]
        notes = sum(1 for e in mine if e.status & 0xF0 == 0x90 and e.d2 > 0)
        if not notes:
            continue
        program = next((e.d1 for e in mine if e.status & 0xF0 == 0xC0), 0)
        ours = render_midi(path, model, presets, rate=rate, channels={ch}).audio
        theirs, _ = render_drums(mine, soundfont, rate, frames, effects=False)
        out.append(ChannelLevel(ch + 1, program, notes, rms_db(ours, frames), rms_db(theirs, frames)))
    return out


def format_levels(name: str, rows: list[ChannelLevel]) -> str:
    """One line per channel: ours, FluidSynth's, the difference, and the difference less the file's median."""
    if not rows:
        return f"{name}: no melodic notes"
    diffs = [r.ours_db - r.fluidsynth_db for r in rows if np.isfinite(r.ours_db - r.fluidsynth_db)]
    median = float(np.median(diffs)) if diffs else 0.0
    lines = [f"{name}: per-channel RMS dBFS over the file's length (FluidSynth dry); median difference "
             f"{median:+.1f} dB", " ch  prog  notes    ours  FluidSynth   diff  diff-median"]
    for r in rows:
        d = r.ours_db - r.fluidsynth_db
        lines.append(f"{r.channel:3d}  {r.program:4d}  {r.notes:5d}  {r.ours_db:6.1f}  {r.fluidsynth_db:10.1f}  "
                     f"{d:+5.1f}  {d - median:+11.1f}")
    spread = [abs(d - median) for d in diffs]
    lines.append(f"channels within 6 dB of the median difference: {sum(s <= 6 for s in spread)}/{len(spread)}; "
                 f"largest {max(spread):.1f} dB")
    return "\n".join(lines)
