"""NSynth-like note set rendered by FluidSynth from Debian's General MIDI soundfonts.

One render unit is (soundfont, program, velocity): all pitches spaced 6 s apart, rendered at 48 kHz (one FluidSynth
call per soundfont and program covers all its velocities, since loading a compressed font dominates) and sliced into 4 s notes (3 s hold + 1 s release), stored as one FLAC file of the kept notes plus a small
JSON record. The JSON is written last, so an interrupted build resumes where it stopped; the metadata table is
rebuilt from the units at the end.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import mido
import numpy as np
import soundfile
from tqdm import tqdm

from synth.core.files import replacing, write_atomic
from synth.core.notes import FAMILIES, HOLD_SECONDS, NOTE_SECONDS, PITCH_MAX, PITCH_MIN, SAMPLE_RATE, family_of

SPACING_SECONDS = 6.0
MELODIC_PROGRAMS = range(0, 112)  # 112-127 are percussive and sound effects
DEFAULT_VELOCITIES = (40, 80, 120)
SILENT_PEAK = 10 ** (-50 / 20)
CLIP_PEAK = 32767

SOUNDFONTS = {
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "musescore": "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
    "musescore-hq": "/usr/share/sounds/sf3/MuseScore_General.sf3",
}

class DatasetError(ValueError):
    """A problem building or reading the note set, worded for the user."""


def split_of(soundfont: str, program: int, velocity: int, pitch: int) -> str:
    """Stable ~10 % held-out split by note identity."""
    return "test" if zlib.crc32(f"{soundfont}/{program}/{velocity}/{pitch}".encode()) % 10 == 0 else "train"


@dataclass(frozen=True)
class Unit:
    soundfont: str
    program: int
    velocity: int

    @property
    def name(self) -> str:
        return f"{self.soundfont}-{self.program:03d}-{self.velocity:03d}"


def available_soundfonts(names: list[str] | None = None) -> dict[str, str]:
    """Soundfonts to use: the named ones or soundfont files given by path (a file is named after its stem), error
    if missing; or every known one installed."""
    if names:
        fonts = {}
        for n in names:
            if n in SOUNDFONTS:
                if not os.path.exists(SOUNDFONTS[n]):
                    raise DatasetError(f"soundfont {n!r} is not installed ({SOUNDFONTS[n]})")
                fonts[n] = SOUNDFONTS[n]
            elif n.lower().endswith((".sf2", ".sf3")) or os.path.sep in n:
                path = _checked_soundfont(n)
                known = [k for k, v in SOUNDFONTS.items() if os.path.exists(v) and os.path.samefile(v, path)]
                fonts[known[0] if known else _soundfont_name(n, fonts)] = path
            else:
                raise DatasetError(f"unknown soundfont {n!r}; known: {', '.join(SOUNDFONTS)}, or the path of an "
                                   ".sf2 or .sf3 file")
        return fonts
    found = {n: p for n, p in SOUNDFONTS.items() if os.path.exists(p)}
    # The HQ MuseScore font is a link to the same file when only the small one is installed.
    if "musescore-hq" in found and os.path.realpath(found["musescore-hq"]) == os.path.realpath(found.get("musescore", "")):
        del found["musescore-hq"]
    if not found:
        raise DatasetError("no General MIDI soundfont found: apt-get install fluid-soundfont-gm timgm6mb-soundfont")
    return found


def _soundfont_name(path: str, taken: dict[str, str]) -> str:
    """A soundfont file's name in the note set: its stem in lower case, letters and digits (unit names and the
    held-out split are keyed by it), told apart from the known names and the others given."""
    base = re.sub(r"[^a-z0-9]+", "", Path(path).stem.lower()) or "soundfont"
    name, n = base, 1
    while name in SOUNDFONTS or name in taken:
        n += 1
        name = f"{base}{n}"
    return name


def _checked_soundfont(path: str) -> str:
    """The path of a readable SoundFont file, or one line saying why not."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"soundfont {path} not found")
    try:
        with open(p, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise DatasetError(f"soundfont {path} cannot be read ({e.strerror})") from None
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise DatasetError(f"{path} is not a SoundFont (.sf2 or .sf3)")
    return str(p.resolve())


def _write_midi(path: Path, program: int, notes: list[tuple[int, int]]) -> None:
    ticks_per_beat, tempo = 480, 500_000  # 120 bpm: one beat is 0.5 s
    beat = lambda seconds: int(round(seconds / 0.5 * ticks_per_beat))  # noqa: E731
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo), mido.Message("program_change", program=program)])
    for velocity, pitch in notes:
        track.append(mido.Message("note_on", note=pitch, velocity=velocity, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=beat(HOLD_SECONDS)))
        track.append(mido.Message("control_change", control=123, value=0, time=beat(SPACING_SECONDS - HOLD_SECONDS)))
    mid = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    mid.tracks.append(track)
    mid.save(path)


def _read_wav_mono(path: Path) -> np.ndarray:
    data, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    if rate != SAMPLE_RATE:
        raise DatasetError(f"fluidsynth wrote {rate} Hz instead of {SAMPLE_RATE} Hz to {path}")
    return data.astype(np.int32).sum(axis=1) // data.shape[1]


def _unit_paths(out_dir: Path, unit: "Unit") -> tuple[Path, Path]:
    return out_dir / "units" / f"{unit.name}.flac", out_dir / "units" / f"{unit.name}.json"


def render_units(units: list[Unit], sf_path: str, pitches: list[int], out_dir: Path, gain: float) -> list[dict]:
    """Render units of one soundfont and program in one FluidSynth call; each goes to units/NAME.flac + NAME.json
    (the JSON last). Returns each unit's kept and dropped counts."""
    if shutil.which("fluidsynth") is None:
        raise DatasetError("fluidsynth is not installed: apt-get install fluidsynth")
    note_len = int(NOTE_SECONDS * SAMPLE_RATE)
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "u.mid", Path(tmp) / "u.wav"
        _write_midi(mid, units[0].program, [(u.velocity, p) for u in units for p in pitches])
        cmd = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", str(gain), "-r", str(SAMPLE_RATE),
               "-o", "synth.cpu-cores=1", "-F", str(wav), sf_path, str(mid)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wav.exists():
            raise DatasetError(f"fluidsynth failed on {units[0].name}: {proc.stderr.strip()[:200]}")
        audio = _read_wav_mono(wav)
    step = int(SPACING_SECONDS * SAMPLE_RATE)
    summaries = []
    for j, unit in enumerate(units):
        notes, kept, silent, clipped = [], [], 0, 0
        for i, pitch in enumerate(pitches):
            at = (j * len(pitches) + i) * step
            note = audio[at:at + note_len]
            note = np.pad(note, (0, note_len - len(note)))
            peak = int(np.abs(note).max())
            if peak < SILENT_PEAK * 32768:
                silent += 1
            elif peak >= CLIP_PEAK:
                clipped += 1
            else:
                notes.append(note.astype(np.int16))
                kept.append(pitch)
        flac, record = _unit_paths(out_dir, unit)
        if notes:
            with replacing(flac) as tmp:
                soundfile.write(str(tmp), np.concatenate(notes), SAMPLE_RATE, subtype="PCM_16", format="FLAC")
        summary = {"pitches": kept, "silent": silent, "clipped": clipped, "note_samples": note_len}
        write_atomic(record, json.dumps(summary))
        summaries.append(summary)
    return summaries


def build(out_dir: Path, soundfonts: list[str] | None = None, programs: list[int] | None = None,
          velocities: list[int] | None = None, pitches: list[int] | None = None, gain: float = 1.5,
          workers: int = 2, progress: bool = True) -> dict:
    """Build (or resume) the note set in out_dir; returns the summary also saved as out_dir/build.json."""
    fonts = available_soundfonts(soundfonts)
    programs = list(MELODIC_PROGRAMS) if programs is None else programs
    velocities = list(DEFAULT_VELOCITIES) if velocities is None else velocities
    pitches = list(range(PITCH_MIN, PITCH_MAX + 1)) if pitches is None else pitches
    bad = [p for p in programs if p not in MELODIC_PROGRAMS] or [p for p in pitches if not PITCH_MIN <= p <= PITCH_MAX]
    if bad:
        raise DatasetError(f"out of range: {bad[0]} (programs 0-111, pitches {PITCH_MIN}-{PITCH_MAX})")
    if "instruments" in build_summary(out_dir):  # its metadata would lose the recordings' notes
        raise DatasetError(f"{out_dir} holds a note set of recordings: give --out a new folder for soundfont notes")
    (out_dir / "units").mkdir(parents=True, exist_ok=True)
    units = [Unit(sf, p, v) for sf in sorted(fonts) for p in programs for v in velocities]
    todo = [u for u in units if not _unit_paths(out_dir, u)[1].exists()]
    with ThreadPoolExecutor(max_workers=workers) as pool, tqdm(total=len(units), initial=len(units) - len(todo),
                                                                desc="rendering notes", unit="unit",
                                                                disable=not progress) as bar:
        groups: dict[tuple[str, int], list[Unit]] = {}
        for u in todo:
            groups.setdefault((u.soundfont, u.program), []).append(u)
        for done in pool.map(lambda g: render_units(g, fonts[g[0].soundfont], pitches, out_dir, gain), groups.values()):
            bar.update(len(done))
    return write_metadata(out_dir, units)


def build_summary(data_dir: str | os.PathLike) -> dict:
    """A note set's build.json, or {} where there is none or it cannot be read."""
    try:
        summary = json.loads((Path(data_dir) / "build.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def write_metadata(out_dir: Path, units: list[Unit], extra: dict | None = None) -> dict:
    """Rebuild metadata.csv and build.json (the summary, with `extra`) from the unit files."""
    rows, silent, clipped = [], 0, 0
    for u in units:
        record = json.loads(_unit_paths(out_dir, u)[1].read_text())
        silent += int(record["silent"])
        clipped += int(record["clipped"])
        for i, pitch in enumerate(record["pitches"]):
            rows.append({"unit": u.name, "index": i, "soundfont": u.soundfont, "program": u.program,
                         "family": FAMILIES[family_of(u.program)], "velocity": u.velocity, "pitch": pitch,
                         "split": split_of(u.soundfont, u.program, u.velocity, pitch)})
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(rows[0]) if rows else ["unit"])
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out_dir / "metadata.csv", table.getvalue())
    summary = {"notes": len(rows), "train": sum(r["split"] == "train" for r in rows),
               "test": sum(r["split"] == "test" for r in rows), "dropped_silent": silent,
               "dropped_clipped": clipped, "units": len(units), "sample_rate": SAMPLE_RATE,
               "note_seconds": NOTE_SECONDS, "soundfonts": sorted({u.soundfont for u in units})} | (extra or {})
    write_atomic(out_dir / "build.json", json.dumps(summary, indent=2))
    return summary


@dataclass
class NoteSet:
    """Notes of one split held in memory as int16 (scale with to_float)."""
    audio: np.ndarray      # int16 [N, NOTE_SECONDS * SAMPLE_RATE]
    pitch: np.ndarray      # int64 MIDI numbers
    velocity: np.ndarray   # int64 MIDI velocities
    family: np.ndarray     # int64 family index
    program: np.ndarray    # int64
    unit: np.ndarray       # int64: the unit each note came from (one soundfont's program at one velocity)
    soundfont: np.ndarray  # str: the soundfont each note came from

    def __len__(self) -> int:
        return len(self.pitch)

    def subset(self, keep: np.ndarray) -> NoteSet:
        """These notes only (a boolean mask or indices)."""
        return NoteSet(*(getattr(self, f.name)[keep] for f in fields(self)))

    @functools.cached_property
    def _by_unit(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(order, sorted units, notes per unit): sorted once, as training asks for partners every step."""
        order = np.argsort(self.unit, kind="stable")
        return order, self.unit[order], np.bincount(self.unit)

    def same_unit(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """For each row, a random note of the same unit (the row itself when its unit has only it)."""
        order, ordered, count = self._by_unit
        unit = self.unit[rows]
        return order[np.searchsorted(ordered, unit) + rng.integers(0, count[unit])]

    @functools.cached_property
    def _by_pitch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(key, sorted keys, order, at): each note's (soundfont, program, pitch) as one number, those sorted, the
        notes in that order, and each note's place in it. Sorted once: training asks for partners every step."""
        font = np.unique(self.soundfont, return_inverse=True)[1].reshape(-1)
        key = (font * 128 + self.program) * 128 + self.pitch
        order = np.argsort(key, kind="stable")
        at = np.empty_like(order)
        at[order] = np.arange(len(order))
        return key, key[order], order, at

    def same_pitch(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """For each row, a random note of the same soundfont, program and pitch at another velocity (the row
        itself when the set holds no other)."""
        key, ordered, order, at = self._by_pitch
        first = np.searchsorted(ordered, key[rows])
        count = np.searchsorted(ordered, key[rows], side="right") - first
        shift = rng.integers(1, np.maximum(count, 2))  # never the row itself while its group has another note
        return order[first + (at[rows] - first + shift) % count]

    @staticmethod
    def to_float(audio: np.ndarray) -> np.ndarray:
        return audio.astype(np.float32) / 32768.0


def _rows(data_dir: Path) -> list[dict[str, str]]:
    """The note set's metadata table, one dict per note."""
    meta_path = Path(data_dir) / "metadata.csv"
    if not meta_path.exists():
        raise DatasetError(f"no note set in {data_dir}: run 'gansynth-live dataset build --out {data_dir}' first")
    with open(meta_path) as f:
        return list(csv.DictReader(f))


def _read_unit(data_dir: Path, unit: str, start: int = 0, frames: int = -1) -> np.ndarray:
    """int16 samples of a unit's FLAC file (all, or `frames` from `start`)."""
    flac = Path(data_dir) / "units" / f"{unit}.flac"
    try:
        return soundfile.read(str(flac), dtype="int16", start=start, frames=frames)[0]
    except (soundfile.LibsndfileError, ValueError) as e:
        raise DatasetError(f"note set file {flac} is unreadable ({e}): delete it and its .json, then build again") from None


def load(data_dir: Path, split: str | None = None, limit: int | None = None, seed: int = 0) -> NoteSet:
    """Load a split of a built note set (optionally a random, reproducible subset of `limit` notes)."""
    rows = [r for r in _rows(data_dir) if split is None or r["split"] == split]
    if not rows:
        raise DatasetError(f"the note set in {data_dir} has no {split or ''} notes")
    if limit is not None and limit < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False))
        rows = [rows[i] for i in keep]
    audio = np.empty((len(rows), int(NOTE_SECONDS * SAMPLE_RATE)), dtype=np.int16)
    cache: dict[str, np.ndarray] = {}
    for i, r in enumerate(rows):
        if r["unit"] not in cache:
            cache.clear()
            cache[r["unit"]] = _read_unit(data_dir, r["unit"]).reshape(-1, audio.shape[1])
        audio[i] = cache[r["unit"]][int(r["index"])]
    col = lambda k: np.array([int(r[k]) for r in rows], dtype=np.int64)  # noqa: E731
    units: dict[str, int] = {}
    return NoteSet(audio=audio, pitch=col("pitch"), velocity=col("velocity"), program=col("program"),
                   family=np.array([FAMILIES.index(r["family"]) for r in rows], dtype=np.int64),
                   unit=np.array([units.setdefault(r["unit"], len(units)) for r in rows], dtype=np.int64),
                   soundfont=np.array([r["soundfont"] for r in rows]))


def layers_of(data_dir: Path, notes: list[tuple[str, int, int]]) -> list[dict[int, np.ndarray]]:
    """For each (soundfont, program, pitch): the note set's notes of it at every velocity it has (float, any
    split), by velocity. Reads only those notes."""
    frames = int(NOTE_SECONDS * SAMPLE_RATE)
    rows: dict[tuple[str, int, int], dict[int, dict[str, str]]] = {}
    wanted = set(notes)
    for r in _rows(data_dir):
        key = (r["soundfont"], int(r["program"]), int(r["pitch"]))
        if key in wanted:
            rows.setdefault(key, {})[int(r["velocity"])] = r
    return [{v: NoteSet.to_float(_read_unit(data_dir, r["unit"], int(r["index"]) * frames, frames))
             for v, r in sorted(rows.get(key, {}).items())} for key in notes]


def real_notes(data_dir: Path, program: int, pitches: list[int], velocity: int = 100,
               soundfont: str | None = None) -> dict[int, np.ndarray]:
    """The note set's notes of one GM program (of one soundfont, or any) at these pitches (float, any split), each
    at the velocity nearest `velocity`; pitches the set lacks are left out. Reads only the units it needs."""
    rows = [r for r in _rows(data_dir) if int(r["program"]) == program and int(r["pitch"]) in pitches
            and soundfont in (None, r["soundfont"])]
    best: dict[int, dict] = {}
    for r in rows:
        p = int(r["pitch"])
        if p not in best or abs(int(r["velocity"]) - velocity) < abs(int(best[p]["velocity"]) - velocity):
            best[p] = r
    frames = int(NOTE_SECONDS * SAMPLE_RATE)
    return {p: NoteSet.to_float(_read_unit(data_dir, r["unit"], int(r["index"]) * frames, frames))
            for p, r in best.items()}

