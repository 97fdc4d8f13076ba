"""Offline rendering of a MIDI file with the live engine's voices and note bank (no audio device).

Tempo changes come from mido's merged, seconds-timed iteration; events land at their exact sample. Each MIDI
channel plays the preset of its GM program's family (or the nearest family that has a preset), at the level a GM
sound set gives that program at each key (synth.engine.gm_levels); channel 10 is
General MIDI percussion, which the model does not have: its notes are skipped and counted, or, given a SoundFont,
played by FluidSynth and mixed in (synth.engine.drums). The render is stereo and lasts at least to the file's
end of track (so it lines up with the MIDI in a DAW), longer while releases ring.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.engine.bank import BankRenderer
from synth.engine.gm_levels import load as load_gm_levels
from synth.core.notes import FAMILIES
from synth.core.timbre import Preset, default_timbre
from synth.engine.voices import Voices
from synth.runtime.model import NoteModel

DRUM_CHANNEL = 9
TAIL_SECONDS = 10.0
MAX_RENDER_SECONDS = 3 * 3600.0  # a render is one float32 array in memory (~2 GB at 48 kHz for 3 hours, twice)


class MidiFileError(ValueError):
    """A MIDI file that cannot be read, worded for the user."""


@dataclass
class MidiEvent:
    seconds: float
    status: int
    d1: int
    d2: int


CHANNEL_TYPES = ("note_on", "note_off", "control_change", "pitchwheel", "program_change", "aftertouch",
                 "polytouch")


def read_midi_file(path: str | os.PathLike) -> tuple[list[MidiEvent], float]:
    """Channel messages of a MIDI file with absolute times in seconds (tempo map applied), and the file's length:
    the time of its last event of any kind, end of track included."""
    import mido

    path = Path(path)
    if not path.is_file():
        raise MidiFileError(f"MIDI file {path} not found")
    _check_header(path)
    try:
        mid = mido.MidiFile(str(path))
        events, now = [], 0.0
        for msg in mid:
            now += msg.time
            if msg.type in CHANNEL_TYPES:
                raw = msg.bytes()
                events.append(MidiEvent(now, raw[0], raw[1], raw[2] if len(raw) > 2 else 0))
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as e:
        reason = str(e) or ("it ends too early" if isinstance(e, EOFError) else type(e).__name__)
        raise MidiFileError(f"{path} is not a readable MIDI file ({reason})") from None
    if now > MAX_RENDER_SECONDS:
        raise MidiFileError(f"{path} lasts {_duration(now)}; a render holds the whole piece in memory, "
                            f"so pieces are limited to {_duration(MAX_RENDER_SECONDS)}")
    return events, now


def _duration(seconds: float) -> str:
    hours, minutes = divmod(int(seconds) // 60, 60)
    return f"{hours:,} h {minutes} min" if hours else f"{seconds:.0f} s"


def _check_header(path: Path) -> None:
    """Refuse, in one line, what mido would misread or crash on: a time division of 0, SMPTE time code, or a
    header that declares more tracks than the file holds."""
    with open(path, "rb") as f:
        head = f.read(14)
        if len(head) < 14 or head[:4] != b"MThd":
            return  # not a standard MIDI file: mido's own message says so
        length = int.from_bytes(head[4:8], "big")
        tracks, division = int.from_bytes(head[10:12], "big"), int.from_bytes(head[12:14], "big")
        if division & 0x8000:
            raise MidiFileError(f"{path} counts time in SMPTE frames, which is not supported: save it with "
                                "ticks per beat (PPQ)")
        if division == 0:
            raise MidiFileError(f"{path} is not a readable MIDI file (its time division is 0 ticks per beat)")
        f.seek(8 + length)
        found = 0
        while found < tracks:
            chunk = f.read(8)
            if len(chunk) < 8:
                break
            found += chunk[:4] == b"MTrk"
            f.seek(int.from_bytes(chunk[4:8], "big"), os.SEEK_CUR)
    if found < tracks:
        raise MidiFileError(f"{path} is not a readable MIDI file (it declares {tracks:,} tracks but holds {found})")


# GM programs of families no preset stands for (ethnic, percussive, sound effects), played by the family a player
# would reach for: plucked ones by a guitar, struck ones by mallets, blown ones by reeds or a flute, the fiddle by
# strings. The rest (synth effects, reverse cymbal, seashore, helicopter, applause) take the nearest family.
STAND_IN = {**dict.fromkeys((104, 105, 106, 107, 120), "guitar"), 109: "reed", 110: "strings", 111: "reed",
            **dict.fromkeys((108, 112, 113, 114, 115, 116, 117, 118, 124, 127), "chromatic_percussion"),
            121: "pipe", 123: "pipe"}


def preset_for_program(program: int, presets: list[Preset]) -> int:
    """Index of the preset whose family matches the GM program's family, else the one of the program's stand-in
    family (STAND_IN), else the nearest family that has one."""
    if not presets:
        return 0
    family = program // 8
    families = [p.family for p in presets]
    if family >= len(FAMILIES) or FAMILIES[family] not in families:
        if STAND_IN.get(program) in families:
            return families.index(STAND_IN[program])
    best, best_d = 0, None
    for i, p in enumerate(presets):
        if p.family not in FAMILIES:
            continue
        d = abs(FAMILIES.index(p.family) - family)
        if best_d is None or d < best_d:
            best, best_d = i, d
    return best


MORPH_TARGETS = ("synth_pad", "strings")  # CC1's default: bloom into a pad (a pad into strings)


def morph_target(index: int, presets: list[Preset], name: str | None = None) -> int | None:
    """The preset CC1 morphs preset `index` towards: the one named `name`, else the first preset of the families
    in MORPH_TARGETS that is not `index` itself (the wheel swells any sound into a slow, wide pad, as a keyboard
    player layers one in); None without presets."""
    if not presets:
        return None
    if name:
        for i, p in enumerate(presets):
            if p.name.lower() == name.lower():
                return i
        raise ValueError(f"no preset named '{name}' to morph to (have: {', '.join(p.name for p in presets)})")
    for family in MORPH_TARGETS:
        for i, p in enumerate(presets):
            if p.family == family and i != index:
                return i
    return next((i for i in range(len(presets)) if i != index), None)


def touches_morph(status: int, d1: int, d2: int) -> bool:
    """Whether a channel message moves a morph controller above 0 (CC1, channel pressure, polyphonic aftertouch)."""
    kind = status & 0xF0
    return (kind == 0xB0 and d1 == 1 and d2 > 0) or (kind == 0xD0 and d1 > 0) or (kind == 0xA0 and d2 > 0)


def morphing_channels(events: list[MidiEvent]) -> set[int]:
    """Channels that send a morph controller above 0."""
    return {e.status & 0x0F for e in events if touches_morph(e.status, e.d1, e.d2)}


def notes_by_program(events: list[MidiEvent]) -> dict[tuple[int, int], set[tuple[int, int]]]:
    """(channel, program) → the (pitch, velocity) notes it plays. A channel with no program change plays program 0;
    drums are left out."""
    out: dict[tuple[int, int], set[tuple[int, int]]] = {}
    program = [0] * 16
    for e in events:
        ch = e.status & 0x0F
        if e.status & 0xF0 == 0xC0:
            program[ch] = e.d1
        elif e.status & 0xF0 == 0x90 and e.d2 > 0 and ch != DRUM_CHANNEL:
            out.setdefault((ch, program[ch]), set()).add((e.d1, e.d2))
    return out


def channel_presets(played: dict[tuple[int, int], set[tuple[int, int]]],
                    presets: list[Preset]) -> dict[tuple[int, int], int]:
    """(channel, program) pairs a file uses (from notes_by_program) → preset index."""
    return {pair: preset_for_program(pair[1], presets) for pair in sorted(played)}


@dataclass
class RenderResult:
    audio: np.ndarray  # [frames, 2] float32
    rate: int
    notes: int
    skipped_drums: int
    presets: list[str]
    drum_notes: int = 0  # drum notes FluidSynth played
    midi_seconds: float = 0.0  # the MIDI file's length (end of track)


@dataclass
class _Lanes:
    """Which bank lane plays each preset in a render, and which preset each one's morph goes towards."""
    mapping: dict[tuple[int, int], int]  # (channel, program) → preset index
    used: list[int]  # preset indices the file plays
    morphing: set[int]  # channels whose wheel or pressure morphs
    target_of: dict[int, int | None]  # preset → its morph target preset
    lane_of_preset: dict[int, int]
    names: list[str]


def _banks_for(events: list[MidiEvent], model: NoteModel, presets: list[Preset], rate: int,
               mod_target: str | None) -> tuple[BankRenderer, _Lanes]:
    """A lane per preset the file plays (and per morph target it reaches), each holding only the notes the file
    plays with it."""
    played = notes_by_program(events)
    mapping = channel_presets(played, presets)
    used = sorted(set(mapping.values())) or [0]
    morphing = morphing_channels(events) - {DRUM_CHANNEL}
    target_of = {p: morph_target(p, presets, mod_target) for p in used}
    lanes = sorted(set(used) | {t for pair, p in mapping.items() if pair[0] in morphing
                                for t in [target_of[p]] if t is not None})
    lane_of_preset = {p: i for i, p in enumerate(lanes)}
    renderer = BankRenderer(model, rate, lanes=len(lanes))
    names = []
    for index, lane in lane_of_preset.items():
        if presets:
            z, name = presets[index].z, presets[index].name
        else:
            z, name = default_timbre(model.info.z_dim), "default timbre"
        renderer.set_timbre(z, lane)
        names.append(name if index in used else f"{name} (morph target)")
        wanted = {note for pair, ps in played.items()
                  if mapping[pair] == index or (pair[0] in morphing and target_of[mapping[pair]] == index)
                  for note in ps}
        renderer.render_notes(lane, sorted(wanted))  # only what the file plays with this preset
    return renderer, _Lanes(mapping, used, morphing, target_of, lane_of_preset, names)


def _with_drums(audio: np.ndarray, drum_events: list[MidiEvent], drums: str | os.PathLike,
                rate: int) -> tuple[np.ndarray, int]:
    """The render with FluidSynth's kit playing channel 10 mixed in (longer if the kit rings on), and its notes."""
    from synth.engine.drums import render_drums

    kit, drum_notes = render_drums(drum_events, drums, rate, len(audio))
    if len(kit) > len(audio):
        audio = np.concatenate([audio, np.zeros((len(kit) - len(audio), 2), np.float32)])
    audio[:len(kit)] += kit
    return audio, drum_notes


def render_midi(path: str | os.PathLike, model: NoteModel, presets: list[Preset], rate: int = 48000,
                block: int = 512, progress: bool = False, channels: set[int] | None = None,
                release: float | None = None, spread: float = 0.0, mod_target: str | None = None,
                drums: str | os.PathLike | None = None, gm_levels: bool = True) -> RenderResult:
    """Render a MIDI file to stereo float32 audio [frames, 2] at `rate` with the engine's voices; `channels`
    (0-15) renders only those (a stem). Each note's velocity layers are rendered as the live bank would play
    them; `release` None: the notes' own releases, seconds: one fixed fade. Channel controllers (volume,
    expression, pan, modulation morph towards `mod_target` or morph_target's default, pressure) act as live;
    `spread` pans notes by key. `drums`: a SoundFont whose kit FluidSynth plays channel 10 with, mixed in.
    `gm_levels`: each channel's notes at its GM program's level at their key, fading in as slowly as the program
    rises (synth.engine.gm_levels), so the file keeps the balance of a GM sound set; False: every program equally
    loud and speaking at once, as the presets play live."""
    events, midi_seconds = read_midi_file(path)
    levels = load_gm_levels() if gm_levels else None
    if channels is not None:
        events = [e for e in events if e.status & 0x0F in channels]
    renderer, lanes = _banks_for(events, model, presets, rate, mod_target)
    voices = Voices(renderer, max_block=block, polyphony=64, release=release, spread=spread)

    def choose(ch: int, program: int) -> None:
        preset = lanes.mapping.get((ch, program), lanes.used[0])
        if levels is not None:
            voices.key_gain[ch] = levels.gain[program]
            voices.key_rise[ch] = levels.rise[program]
        voices.lane_of[ch] = lanes.lane_of_preset[preset]
        target = lanes.target_of.get(preset)
        voices.morph_lane_of[ch] = (lanes.lane_of_preset[target] if ch in lanes.morphing
                                    and target in lanes.lane_of_preset else -1)

    for ch in range(16):
        choose(ch, 0)
    end = int(round((events[-1].seconds if events else 0.0) * rate))
    out = np.zeros((end + int(TAIL_SECONDS * rate), 2), dtype=np.float32)
    cursor, notes, drums_skipped = 0, 0, 0
    drum_events = []

    def advance(until: int) -> None:
        nonlocal cursor
        while cursor < until:
            n = min(block, until - cursor)
            out[cursor:cursor + n] = voices.process(n)
            cursor += n

    iterator = events
    if progress:
        from tqdm import tqdm
        iterator = tqdm(events, desc="rendering", unit="event", leave=False)
    for e in iterator:
        advance(int(round(e.seconds * rate)))
        ch, kind = e.status & 0x0F, e.status & 0xF0
        if ch == DRUM_CHANNEL:
            if drums is not None:
                drum_events.append(e)
            else:
                drums_skipped += kind == 0x90 and e.d2 > 0
            continue
        if kind == 0xC0:
            choose(ch, e.d1)
            continue
        notes += kind == 0x90 and e.d2 > 0
        voices.handle(e.status, e.d1, e.d2)
    limit = len(out)
    while voices.n and cursor < limit:  # let releases (and notes never let go) ring out
        if cursor >= end + int(2 * rate):
            for ch in range(16):
                voices.handle(0xB0 | ch, 64, 0)
                voices.handle(0xB0 | ch, 123, 0)
        advance(min(cursor + block, limit))
    length = max(cursor, int(round(midi_seconds * rate)))
    audio = out[:length].copy() if length <= limit else np.concatenate([out, np.zeros((length - limit, 2),
                                                                                      np.float32)])
    drum_notes = 0
    if drums is not None:
        audio, drum_notes = _with_drums(audio, drum_events, drums, rate)
    return RenderResult(audio, rate, notes, drums_skipped, lanes.names, drum_notes, midi_seconds)
