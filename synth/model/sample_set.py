"""`dataset build --samples DIR`: a note set from a folder of one-shot recordings, in the soundfont set's format.

Each subfolder of DIR is one instrument (files directly in DIR are one instrument named after DIR). A file is one
note: its pitch comes from its name when the name holds a note name (C4, F#2, Db5) or a MIDI number, else it is
detected; its velocity from a `v100`/`vel100` token or a dynamic (pp … ff), else 100. Notes are tuned to their
exact pitch, cut to the note set's 4 s (3 s held, then a 1 s fade standing in for a release), and each instrument
is brought to one peak with its files' levels kept relative to each other. An instrument's GM family comes from
its folder's name (cello, brass, pad, …) or `--family`; its program is the family's first one no other instrument
of the folder took. One unit per (instrument, velocity) is written as in `synth.model.dataset`, the JSON last,
with the files it came from, so a build resumes and redoes only the instruments whose files changed.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from synth.core.files import replacing, write_atomic
from synth.core.notes import FAMILIES, HOLD_SECONDS, NOTE_SECONDS, PITCH_MAX, PITCH_MIN, SAMPLE_RATE
from synth.model.dataset import DatasetError, Unit, _unit_paths, build_summary, write_metadata

PEAK = 0.5  # each instrument's loudest note peaks at -6 dBFS, as the soundfont renders roughly do
DYNAMICS = {"ppp": 16, "pp": 33, "p": 49, "mp": 64, "mf": 80, "f": 96, "ff": 112, "fff": 127}
SEMITONES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
NOTE_TOKEN = re.compile(r"([A-Ga-g])(#|s|sharp|b|flat)?([0-9])")
VELOCITY_TOKEN = re.compile(r"(?:v|vel|velocity)([0-9]{1,3})", re.IGNORECASE)
# Words in an instrument's folder name that say its GM family.
FAMILY_WORDS = {
    "piano": "piano grand upright rhodes epiano harpsichord clavinet clavichord keys",
    "chromatic_percussion": "chromatic_percussion celesta glockenspiel musicbox vibraphone vibes marimba xylophone "
                            "bells tubular dulcimer mallet mallets",
    "organ": "organ accordion harmonica bandoneon",
    "guitar": "guitar",
    "bass": "bass",
    "strings": "strings string violin viola cello contrabass harp pizzicato tremolo timpani",
    "ensemble": "ensemble choir voice voices vocal vox orchestra",
    "brass": "brass trumpet trombone tuba horn cornet flugelhorn",
    "reed": "reed reeds sax saxophone oboe bassoon clarinet",
    "pipe": "pipe flute flutes piccolo recorder whistle ocarina panflute",
    "synth_lead": "synth_lead lead",
    "synth_pad": "synth_pad pad",
    "synth_effects": "synth_effects fx",
    "ethnic": "ethnic sitar banjo shamisen koto kalimba bagpipe fiddle shanai",
}
WORD_FAMILY = {w: fam for fam, words in FAMILY_WORDS.items() for w in words.split()}


@dataclass(frozen=True)
class Note:
    """One usable file: where it came from and what it is."""
    path: Path
    pitch: int
    velocity: int
    audio: np.ndarray  # 48 kHz mono float32, NOTE_SECONDS long, at the file's own level
    detected: bool     # the pitch was detected, not read from the name


def pitch_from_name(stem: str) -> int | None:
    """The MIDI pitch a file name states (C4 = 60), or None: a note-name token, else the one number token in
    21-108 (take numbers like 01 or 3 are not pitches)."""
    tokens = [t for t in re.split(r"[\s_\-.,()\[\]+]+", stem) if t]
    for t in tokens:
        m = NOTE_TOKEN.fullmatch(t)
        if m:
            accidental = {None: 0, "#": 1, "s": 1, "sharp": 1, "b": -1, "flat": -1}[m.group(2)]
            midi = 12 * (int(m.group(3)) + 1) + SEMITONES[m.group(1).lower()] + accidental
            return midi if midi <= 127 else None
    numbers = [int(t) for t in tokens if re.fullmatch("[0-9]{1,3}", t) and 21 <= int(t) <= 108]
    return numbers[0] if len(numbers) == 1 else None


def velocity_from_name(stem: str) -> int | None:
    """The velocity a file name states: `v100`, `vel100`, or a dynamic (pp, mf, ff, ...); None if it states none."""
    for t in re.split(r"[\s_\-.,()\[\]+]+", stem):
        m = VELOCITY_TOKEN.fullmatch(t)
        if m and 1 <= int(m.group(1)) <= 127:
            return int(m.group(1))
        if t.lower() in DYNAMICS:
            return DYNAMICS[t.lower()]
    return None


def family_from_name(name: str) -> str | None:
    """The GM family an instrument's name says (a family's name or an instrument's: "Cello", "alto sax"), or None."""
    words = re.split(r"[^a-z_]+", name.lower().replace(" ", "_")) + re.split(r"[^a-z]+", name.lower())
    found = [WORD_FAMILY[w] for w in words if w in WORD_FAMILY]
    return found[-1] if found else None  # the last word says what it is ("string bass" is a bass)


def audio_files(folder: Path) -> list[Path]:
    """The files under `folder` (any depth) whose extension libsndfile reads, sorted."""
    extensions = {f".{e.lower()}" for e in soundfile.available_formats()} | {".aif", ".oga", ".opus"}
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def read_note(path: Path) -> Note:
    """One file as a note of the set, or OneShotError/DatasetError saying why it cannot be one."""
    from synth.core.resample import resample
    from synth.model.one_shot import OneShotError, detect_pitch, read_sound

    sound = read_sound(path)
    named = pitch_from_name(path.stem)
    try:
        exact = float(named) if named is not None else detect_pitch(sound, path.name)
    except OneShotError as e:  # the import's advice (--pitch) does not apply to a folder
        raise OneShotError(str(e).split(";")[0] + "; put its note in the file's name (e.g. _C4)") from None
    pitch = int(round(exact))
    if not PITCH_MIN <= pitch <= PITCH_MAX:
        raise DatasetError(f"{path.name} is MIDI {pitch}, outside the model's {PITCH_MIN}-{PITCH_MAX}")
    if named is None and abs(exact - pitch) > 0.01:  # tuned to the pitch it is labelled with
        sound = resample(sound, int(round(len(sound) * 2 ** ((exact - pitch) / 12))))
    n, hold = int(NOTE_SECONDS * SAMPLE_RATE), int(HOLD_SECONDS * SAMPLE_RATE)
    note = np.zeros(n, np.float32)
    note[:min(n, len(sound))] = sound[:n]
    if len(sound) > hold:  # a 1 s fade where the soundfont notes are released
        note[hold:] *= np.cos(np.linspace(0, np.pi / 2, n - hold)) ** 2
    velocity = velocity_from_name(path.stem) or 100
    return Note(path, pitch, velocity, note, named is None)


def _sources(notes: list[Note]) -> list[list]:
    """What a unit was made from, compared on resuming: each file's path, size and modification time."""
    return [[str(n.path), n.path.stat().st_size, n.path.stat().st_mtime_ns] for n in notes]


def build_from_samples(folder: str | Path, out_dir: Path, family: str | None = None) -> dict:
    """Build (or resume) a note set in out_dir from the recordings under `folder`; returns the summary (also
    out_dir/build.json), with every skipped file and why. Refused in one line, with nothing written, when no
    file is a usable note or an instrument's family cannot be told. One instrument is read at a time."""
    from synth.model.one_shot import OneShotError

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder of recordings")
    if family is not None and family not in FAMILIES:
        raise DatasetError(f"unknown family {family!r}; one of: {', '.join(FAMILIES)}")
    if folder.resolve().is_relative_to(out_dir.resolve()):
        raise DatasetError(f"the note set cannot go in {out_dir}, which holds the recordings: give --out a folder "
                           "of its own")
    source = re.sub(r"[^a-z0-9]+", "", folder.resolve().name.lower()) or "samples"
    _refuse_other_set(out_dir, source)
    groups: dict[str, list[Path]] = {}
    for path in audio_files(folder):
        inside = path.relative_to(folder).parts
        if any((folder.joinpath(*inside[:i]) / "metadata.csv").exists() for i in range(len(inside))) or \
                path.resolve().is_relative_to(out_dir.resolve()):  # a note set built in the folder is no recording
            continue
        groups.setdefault(inside[0] if len(inside) > 1 else folder.resolve().name, []).append(path)
    families = {name: family_from_name(name) or family for name in groups}
    unknown = sorted(name for name, fam in families.items() if fam is None)
    if unknown:
        raise DatasetError(f"cannot tell the GM family of '{unknown[0]}': name its folder after one (e.g. "
                           f"'{unknown[0]} strings') or give --family ({', '.join(FAMILIES)})")
    programs = _programs({name: str(fam) for name, fam in families.items()})
    units: list[Unit] = []
    instruments: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for name, paths in sorted(groups.items()):  # one instrument in memory at a time
        notes = []
        for path in paths:
            try:
                notes.append(read_note(path))
            except (OneShotError, DatasetError) as e:
                skipped[str(path.relative_to(folder))] = str(e)
        if not notes:
            continue
        peak = max(float(np.abs(n.audio).max()) for n in notes)
        for velocity, layer in sorted(_by_velocity(notes).items()):
            unit = Unit(source, programs[name], velocity)
            units.append(unit)
            _write_unit(out_dir, unit, layer, PEAK / peak, name)
        instruments[name] = {"family": families[name], "program": programs[name], "notes": len(notes),
                             "pitches detected": sum(n.detected for n in notes)}
    if not units:
        why = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:2])
        raise DatasetError(f"no usable notes in {folder}" + (f" ({why})" if why else ": it holds no audio files"))
    return write_metadata(out_dir, units, {"instruments": instruments, "skipped": skipped})


def _refuse_other_set(out_dir: Path, source: str) -> None:
    """A note set of other sources in out_dir is not overwritten: its metadata would lose their notes."""
    fonts = build_summary(out_dir).get("soundfonts")
    others = sorted({str(f) for f in fonts} - {source}) if isinstance(fonts, list) else []
    if others:
        raise DatasetError(f"{out_dir} holds the note set of {', '.join(others)}: give --out a new folder for "
                           "these recordings")


def _programs(families: dict[str, str]) -> dict[str, int]:
    """A GM program per instrument: the first of its family's eight that no other instrument here took."""
    taken: Counter[str] = Counter()
    programs = {}
    for name, fam in sorted(families.items()):
        if taken[fam] == 8:
            raise DatasetError(f"more than 8 {fam} instruments in one folder; build them as two note sets")
        programs[name] = FAMILIES.index(fam) * 8 + taken[fam]
        taken[fam] += 1
    return programs


def _by_velocity(notes: list[Note]) -> dict[int, list[Note]]:
    layers: dict[int, list[Note]] = {}
    for n in notes:
        layers.setdefault(n.velocity, []).append(n)
    return layers


def _write_unit(out_dir: Path, unit: Unit, notes: list[Note], gain: float, instrument: str) -> None:
    """units/NAME.flac and NAME.json (last) for one instrument's notes at one velocity, unless a unit from the
    same files is already there."""
    flac, record = _unit_paths(out_dir, unit)
    flac.parent.mkdir(parents=True, exist_ok=True)
    sources = _sources(notes)
    if record.exists():
        try:
            made = json.loads(record.read_text())
            if made.get("sources") == sources and made.get("gain") == gain and flac.exists():
                return
        except (OSError, ValueError):
            pass
    audio = np.concatenate([np.clip(n.audio * gain, -1, 32767 / 32768) for n in notes])
    with replacing(flac) as tmp:
        soundfile.write(str(tmp), (audio * 32768).astype(np.int16), SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    write_atomic(record, json.dumps({"pitches": [n.pitch for n in notes], "silent": 0, "clipped": 0,
                                     "note_samples": int(NOTE_SECONDS * SAMPLE_RATE), "instrument": instrument,
                                     "sources": sources, "gain": gain}))

