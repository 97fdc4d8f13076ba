"""Long held notes, ours beside FluidSynth's (`gansynth-live held`): does a note held past the model's own length
show the bank's loop?

Each preset plays middle C at velocity 100 for `seconds` through the offline engine (bank, loop, voices: what a
player hears), and FluidSynth plays the preset's GM program (the one it was encoded from, else its family's
first) the same way, dry. Both get the same analysis: the largest autocorrelation of the 100 ms level envelope at
a lag of 0.3-2 s where it peaks (a loop's repeating level pattern; the bar: none above 0.3 that the soundfont's note
lacks) and how many dB the level falls over the hold.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.core.notes import FAMILIES
from synth.core.timbre import Preset
from synth.engine.drums import FluidPlayer, render_drums
from synth.engine.offline import MidiEvent, render_midi
from synth.runtime.model import NoteModel

KEY, VELOCITY = 60, 100
LOOP_BAR = 0.3


@dataclass
class HeldNote:
    preset: str
    program: int
    ours_period: float  # loop_periodicity of our held note
    fluid_period: float  # the same of FluidSynth's
    ours_fall_db: float  # level of the hold's first second after the attack minus its last second
    fluid_fall_db: float

    @property
    def loops(self) -> bool:
        """Ours repeats a level pattern the soundfont's note does not."""
        return self.ours_period > LOOP_BAR >= self.fluid_period


def gm_program(preset: Preset) -> int:
    """The GM program a preset is compared with: the one it was encoded from, else its family's first."""
    program = preset.extra.get("gm_program")
    if isinstance(program, int) and 0 <= program < 128:
        return program
    return 8 * FAMILIES.index(preset.family) if preset.family in FAMILIES else 0


def fall_db(audio: np.ndarray, rate: int, seconds: float) -> float:
    """dB the RMS of the hold's last second lies under that of its first second after the attack (0.5-1.5 s)."""
    def rms(a: float, b: float) -> float:
        x = audio[int(a * rate):int(b * rate)]
        return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20))
    return rms(0.5, 1.5) - rms(seconds - 1.0, seconds)


def _one_note_file(directory: Path, seconds: float, program: int) -> Path:
    """A MIDI file of middle C held `seconds` after a program change."""
    import mido

    song = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: 960 ticks a second
    song.tracks.append(mido.MidiTrack([mido.Message("program_change", program=program),
                                       mido.Message("note_on", note=KEY, velocity=VELOCITY),
                                       mido.Message("note_off", note=KEY, time=round(seconds * 960))]))
    path = directory / "held.mid"
    song.save(str(path))
    return path


def fluidsynth_note(soundfont: str | os.PathLike, program: int, seconds: float, rate: int) -> np.ndarray:
    """FluidSynth's mono note (dry, default gain), held `seconds`."""
    events = [MidiEvent(0.0, 0xC0, program, 0), MidiEvent(0.0, 0x90, KEY, VELOCITY),
              MidiEvent(seconds, 0x80, KEY, 0)]
    frames = int(seconds * rate)
    return render_drums(events, soundfont, rate, frames, effects=False)[0][:frames].mean(axis=1)


def held_notes(model: NoteModel, presets: list[Preset], soundfont: str | os.PathLike, seconds: float = 8.0,
               rate: int = 48000) -> list[HeldNote]:
    """Each preset's held middle C, ours beside FluidSynth's."""
    from synth.model.sound_metrics import loop_periodicity  # here: importing synth.bench never loads synth.model

    FluidPlayer(soundfont, rate).close()  # a SoundFont that cannot be played is said once, before any work
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        midi = _one_note_file(Path(tmp), seconds, 0)
        for preset in presets:
            ours = render_midi(midi, model, [preset], rate=rate).audio.mean(axis=1)[:int(seconds * rate)]
            program = gm_program(preset)
            theirs = fluidsynth_note(soundfont, program, seconds, rate)
            out.append(HeldNote(preset.name, program, loop_periodicity(ours, rate, end=seconds),
                                loop_periodicity(theirs, rate, end=seconds), fall_db(ours, rate, seconds),
                                fall_db(theirs, rate, seconds)))
    return out


def format_held(rows: list[HeldNote], seconds: float) -> str:
    """The table `gansynth-live held` prints: a line per preset and the count of presets that loop."""
    lines = [f"middle C held {seconds:g} s at velocity {VELOCITY}: loop = largest autocorrelation of the 100 ms level "
             f"at a lag of 0.3-2 s where it peaks (bar: none above {LOOP_BAR} the soundfont lacks); fall = dB lost "
             f"over the hold",
             f"{'preset':<22}{'prog':>5}  {'loop ours':>9}  {'FluidSynth':>10}  {'fall ours':>9}  {'FluidSynth':>10}"]
    for r in rows:
        lines.append(f"{r.preset:<22}{r.program:>5}  {r.ours_period:>9.2f}  {r.fluid_period:>10.2f}  "
                     f"{r.ours_fall_db:>9.1f}  {r.fluid_fall_db:>10.1f}" + ("  loops" if r.loops else ""))
    looping = sum(r.loops for r in rows)
    lines.append(f"presets whose held note shows a loop the soundfont's lacks: {looping}/{len(rows)}")
    return "\n".join(lines)
