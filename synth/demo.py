"""The bundled demo piece (synth/assets/demo.mid) and the main job: render it with the default model and presets.

The piece is written here so it can be rebuilt: eight bars at 100 bpm slowing to 84 in the last two, a pad
chord progression held with the sustain pedal (channel 1, warm pad), a flute melody (channel 2) and a
fingered bass (channel 3).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from synth.core.files import write_atomic

DEMO_MIDI = Path(__file__).resolve().parent / "assets" / "demo.mid"
TICKS = 480
CHORDS = [(48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50)] * 2
BASS = [36, 33, 29, 31] * 2
# (beat within the bar, pitch, beats) for each bar of the melody.
MELODY: list[list[tuple[float, int, float]]] = [
    [(0, 76, 1), (1, 79, 1), (2, 77, 1), (3, 76, 1)],
    [(0, 72, 2), (2, 74, 1), (3, 76, 1)],
    [(0, 77, 1.5), (1.5, 76, 0.5), (2, 74, 2)],
    [(0, 71, 1), (1, 74, 1), (2, 79, 2)],
    [(0, 79, 1), (1, 76, 1), (2, 72, 1), (3, 76, 1)],
    [(0, 81, 2), (2, 79, 1), (3, 76, 1)],
    [(0, 77, 1), (1, 74, 1), (2, 72, 1), (3, 71, 1)],
    [(0, 72, 4)],
]
PROGRAMS = {0: 89, 1: 73, 2: 33}  # GM: warm pad, flute, fingered bass


def demo_events() -> list[tuple[float, bytes]]:
    """(beat, raw MIDI message) of the whole piece, in no particular order."""
    ev: list[tuple[float, bytes]] = [(0.0, bytes([0xC0 | ch, prog])) for ch, prog in PROGRAMS.items()]
    for bar, (chord, bass, melody) in enumerate(zip(CHORDS, BASS, MELODY)):
        t = bar * 4.0
        ev.append((t, bytes([0xB0, 64, 127])))
        for p in chord:
            ev += [(t, bytes([0x90, p, 70])), (t + 1.0, bytes([0x80, p, 0]))]
        ev.append((t + 3.9, bytes([0xB0, 64, 0])))
        for start, length in ((0.0, 1.5), (2.0, 1.5)):
            ev += [(t + start, bytes([0x92, bass, 96])), (t + start + length, bytes([0x82, bass, 0]))]
        for beat, p, length in melody:
            ev += [(t + beat, bytes([0x91, p, 100])), (t + beat + length * 0.9, bytes([0x81, p, 0]))]
    return ev


def write_demo_midi(path: str | os.PathLike = DEMO_MIDI) -> None:
    """Write the piece as a type-1 MIDI file: a tempo track and one track per channel."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0),
                            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(84), time=24 * TICKS)])
    mid.tracks.append(tempo)
    for ch in PROGRAMS:
        mine = sorted(((b, m) for b, m in demo_events() if m[0] & 0x0F == ch),
                      key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))  # note-offs before note-ons at a tie
        track, last = mido.MidiTrack(), 0
        for beat, raw in mine:
            tick = int(round(beat * TICKS))
            track.append(mido.Message.from_bytes(list(raw), time=tick - last))
            last = tick
        mid.tracks.append(track)
    buffer = io.BytesIO()
    mid.save(file=buffer)
    write_atomic(path, buffer.getvalue())


if __name__ == "__main__":
    write_demo_midi()
