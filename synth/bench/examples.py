"""Listening examples (`gansynth-live examples`): each preset playing a short phrase, and the demo piece, each
beside FluidSynth playing the same MIDI with the preset's GM program (dry, default gain), as FLAC files small
enough for the repository, with the loudness of both."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.audio_io import write_audio
from synth.bench.held_notes import gm_program
from synth.core.timbre import Preset, preset_filename
from synth.engine.drums import FluidPlayer, render_drums
from synth.engine.loudness import integrated_lufs
from synth.engine.offline import read_midi_file, render_midi
from synth.runtime.model import NoteModel

# An arpeggio up from C3 and a held chord: attack, pitch across two octaves, a decay or a sustain, a release.
PHRASE = [(0.0, 48), (0.3, 52), (0.6, 55), (0.9, 60)]
CHORD_AT, CHORD_SECONDS, CHORD = 1.2, 1.2, (48, 55, 60, 64)
SECONDS = 3.0  # each preset's example
DEMO_SECONDS = 12.0  # the demo piece's opening
VELOCITY = 100


@dataclass
class Example:
    name: str
    program: int
    ours: Path
    theirs: Path
    ours_lufs: float
    theirs_lufs: float


def phrase_file(path: Path, program: int) -> Path:
    """The phrase as a one-track MIDI file after a program change (120 bpm, 960 ticks a second)."""
    import mido

    events = [(t, "note_on", p) for t, p in PHRASE] + [(t + 0.28, "note_off", p) for t, p in PHRASE]
    events += [(CHORD_AT, "note_on", p) for p in CHORD] + [(CHORD_AT + CHORD_SECONDS, "note_off", p) for p in CHORD]
    track, now = mido.MidiTrack([mido.Message("program_change", program=program)]), 0
    for t, kind, pitch in sorted(events, key=lambda e: (e[0], e[1] == "note_on")):
        tick = round(t * 960)
        track.append(mido.Message(kind, note=pitch, velocity=VELOCITY if kind == "note_on" else 0, time=tick - now))
        now = tick
    song = mido.MidiFile(ticks_per_beat=480)
    song.tracks.append(track)
    song.save(str(path))
    return path


def _pair(midi: Path, model: NoteModel, presets: list[Preset], soundfont: str | os.PathLike, rate: int,
          seconds: float, out: Path, stem: str, mono: bool) -> tuple[Path, Path, float, float]:
    """Ours and FluidSynth's render of one MIDI file, cut to `seconds` with a 50 ms fade, written as FLAC."""
    events, _ = read_midi_file(midi)
    frames = int(seconds * rate)
    ours = render_midi(midi, model, presets, rate=rate).audio[:frames]
    theirs = render_drums(events, soundfont, rate, frames, effects=False)[0][:frames]
    fade = np.linspace(1.0, 0.0, int(0.05 * rate))[:, None]
    paths = []
    for audio, suffix in ((ours, ""), (theirs, ".fluidsynth")):
        audio = np.pad(audio, ((0, frames - len(audio)), (0, 0)))
        audio[-len(fade):] *= fade
        path = out / f"{stem}{suffix}.flac"
        written = audio.mean(axis=1) if mono else audio
        write_audio(path, written, rate)
        paths.append((path, integrated_lufs(written, rate)))
    return paths[0][0], paths[1][0], paths[0][1], paths[1][1]


def write_examples(model: NoteModel, presets: list[Preset], soundfont: str | os.PathLike, out: Path,
                   demo: Path | None = None, rate: int = 48000):
    """Yields an Example per preset (mono phrase) and, given `demo`, one for the demo piece's opening (stereo,
    all presets as the render command plays it)."""
    FluidPlayer(soundfont, rate).close()  # a SoundFont that cannot be played is said once, before any work
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for preset in presets:
            program = gm_program(preset)
            midi = phrase_file(Path(tmp) / "phrase.mid", program)
            stem = Path(preset_filename(preset.name)).stem
            yield Example(preset.name, program, *_pair(midi, model, [preset], soundfont, rate, SECONDS, out, stem,
                                                        mono=True))
    if demo is not None:
        yield Example("demo", -1, *_pair(demo, model, presets, soundfont, rate, DEMO_SECONDS, out, "demo",
                                         mono=False))
