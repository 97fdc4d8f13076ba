"""General MIDI program levels: how loud a GM sound set plays each program at each key, relative to its typical
program at middle C, so that a rendered GM file keeps the balance its author heard.

The bank levels every note to one loudness (synth.engine.bank); a GM file, though, was balanced on a sound set
whose programs differ (in FluidR3_GM, at middle C and velocity 100, an agogo is 8 dB under the median program, a
square lead 2 dB over it, a bass 6 dB under it; a guitar's bass keys 3 dB over its middle C). `render` plays each
channel's notes at its program's level at their key from this table. It is measured from a SoundFont by
`gansynth-live levels --calibrate SF2` (FluidSynth, dry, default gain) and shipped as `synth/assets/gm_levels.json`.

Some programs swell in (FluidR3's reverse cymbal takes 0.9 s to reach half its loudness at middle C, a metallic pad
0.35 s): their short notes are far quieter than their level says, and a stand-in timbre that speaks at once would
play them 10 dB too loud. The table therefore also holds each program's rise: a linear fade-in of twice the time
its note takes to reach half its loudest level, which `render` gives the channel's notes (a reverse cymbal's
0.14 s notes: FluidSynth 25 dB under its loudest level, the fade-in 27).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from synth.core.files import write_atomic
from synth.engine.drums import FluidPlayer
from synth.engine.loudness import MAX_RISE_MS, momentary_peak_lufs, rise_ms

DEFAULT_TABLE = Path(__file__).resolve().parent.parent / "assets" / "gm_levels.json"
KEYS = (24, 36, 48, 60, 72, 84, 96, 108)  # measured keys; others are interpolated, outer ones held
VELOCITY, HOLD_SECONDS, TAIL_SECONDS = 100, 1.5, 0.5
LIMITS_DB = (-30.0, 20.0)  # a key a program has no sample for is quiet, not silent; a loud outlier is capped
MELODIC = range(112)  # the reference: the median melodic program at middle C (the bank's level for every note)


class GmLevelsError(ValueError):
    """A GM level table that cannot be used, in one line."""


class GmLevels(NamedTuple):
    """[128 programs, 128 keys] each: the linear gain a program's notes play at, and their fade-in in seconds."""
    gain: np.ndarray
    rise: np.ndarray


def measure(soundfont: str | os.PathLike, rate: int = 48000) -> dict:
    """Each GM program's loudness at KEYS (velocity 100, loudest 400 ms, K-weighted, the mean power of the two
    sides: a stereo sample's sides are not one signal) in dB relative to the median melodic program at middle C,
    played by FluidSynth from `soundfont` one note at a time; and its rise (rise_ms) at each of those keys."""
    player = FluidPlayer(soundfont, rate, effects=False)
    hold, tail = int(HOLD_SECONDS * rate), int(TAIL_SECONDS * rate)
    buf = np.zeros((hold + tail, 2), dtype=np.float32)
    lufs = np.full((128, len(KEYS)), -np.inf)
    rise = np.zeros((128, len(KEYS)))
    try:
        for program in range(128):
            player.send(0xC0, program, 0)
            for j, key in enumerate(KEYS):
                player.send(0x90, key, VELOCITY)
                player.render(buf[:hold])
                player.send(0x80, key, 0)
                player.render(buf[hold:])
                player.send(0xB0, 120, 0)  # all sound off: the next note starts from silence
                sides = [momentary_peak_lufs(buf[:, c], rate) for c in (0, 1)]
                lufs[program, j] = 10.0 * np.log10(np.mean(np.power(10.0, np.asarray(sides) / 10.0)))
                rise[program, j] = rise_ms(buf, rate)
    finally:
        player.close()
    reference = float(np.median(lufs[list(MELODIC), KEYS.index(60)]))
    db = np.clip(lufs - reference, *LIMITS_DB)
    rise[db <= LIMITS_DB[0]] = 0.0  # a key the program has no sample for
    return {"soundfont": Path(soundfont).name, "velocity": VELOCITY, "keys": list(KEYS),
            "reference_lufs": round(reference, 2), "db": np.round(db, 2).tolist(),
            "rise_ms": np.round(rise, -1).astype(int).tolist()}


def write(table: dict, path: str | os.PathLike) -> None:
    write_atomic(Path(path), json.dumps(table, indent=None, separators=(",", ":")) + "\n")


def load(path: str | os.PathLike = DEFAULT_TABLE) -> GmLevels:
    """Each program's gain and fade-in per key (measured keys interpolated, outer ones held); refused in one line
    if the file is not such a table. A table without rises (written before they were measured) fades nothing in."""
    try:
        table = json.loads(Path(path).read_text())
        keys = np.asarray(table["keys"], dtype=np.float64)
        db = np.asarray(table["db"], dtype=np.float64)
        rise = np.asarray(table.get("rise_ms", np.zeros(db.shape)), dtype=np.float64)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise GmLevelsError(f"{path} is not a GM level table ({type(e).__name__}: {e})") from None
    if (keys.ndim != 1 or len(keys) < 1 or db.shape != (128, len(keys)) or not np.all(np.diff(keys) > 0)
            or not np.isfinite(db).all() or db.min() < LIMITS_DB[0] or db.max() > LIMITS_DB[1]
            or rise.shape != db.shape or not np.isfinite(rise).all() or rise.min() < 0 or rise.max() > MAX_RISE_MS):
        raise GmLevelsError(f"{path} is not a GM level table (128 programs × rising keys, dB within "
                            f"{LIMITS_DB[0]:g} to {LIMITS_DB[1]:g}, rises of 0-{MAX_RISE_MS:g} ms)")
    db, rise = (np.stack([np.interp(np.arange(128), keys, row) for row in t]) for t in (db, rise))
    return GmLevels((10.0 ** (db / 20.0)).astype(np.float32), (rise / 1000.0).astype(np.float32))
