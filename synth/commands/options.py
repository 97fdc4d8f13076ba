"""Argument types with ranges for the command line: a value out of range is one line from argparse
("argument --rate: 0 is outside 8000-192000 Hz"), never a traceback or silent nonsense later."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable


def int_in(lo: int, hi: int, unit: str = "") -> Callable[[str], int]:
    """An integer from lo to hi."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}-{hi}{' ' + unit if unit else ''}")
        return value
    return parse


def float_in(lo: float, hi: float, unit: str = "", above: bool = False) -> Callable[[str], float]:
    """A finite number from lo (or just above it, with `above`) to hi."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not (math.isfinite(value) and (value > lo if above else value >= lo) and value <= hi):
            low = f"above {lo:g}" if above else f"from {lo:g}"
            raise argparse.ArgumentTypeError(f"{text} is not {low} to {hi:g}{' ' + unit if unit else ''}")
        return value
    return parse


def int_list(lo: int, hi: int) -> Callable[[str], list[int]]:
    """'0-7,40' → [0..7, 40], every number from lo to hi and every range low to high."""
    def parse(text: str) -> list[int]:
        out: list[int] = []
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            try:
                a, b = int(first), int(last if dash else first)
            except ValueError:
                raise argparse.ArgumentTypeError(f"'{part}' is not a number or a range like 3-7") from None
            if a > b:
                raise argparse.ArgumentTypeError(f"range {part} runs backwards; write {b}-{a}")
            if a < lo or b > hi:
                raise argparse.ArgumentTypeError(f"'{part}' is outside {lo}-{hi}")
            out.extend(range(a, b + 1))
        return out
    return parse


def latency(text: str) -> str | float:
    """PortAudio's 'low' or 'high', or seconds above 0 up to 10."""
    if text in ("low", "high"):
        return text
    try:
        return float_in(0.0, 10.0, "seconds", above=True)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"'{text}' is not low, high or seconds (above 0, up to 10)") from None


def existing_dir(text: str) -> str:
    """A folder that exists."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder" if Path(text).exists() else f"{text} does not exist")
    return text


RATE = int_in(8000, 192000, "Hz")
BLOCK = int_in(16, 8192, "frames")
MIDI_CHANNELS = int_list(1, 16)
MIDI_NUMBERS = int_list(0, 127)


NOTE_NAMES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def note(text: str) -> int:
    """A MIDI note: a number 0-127 or a name with its octave (C4 = 60, F#2, Bb5)."""
    t = text.strip()
    if t.lstrip("-").isdigit():
        value = int(t)
    else:
        body = t.lower()
        if not body or body[0] not in NOTE_NAMES:
            raise argparse.ArgumentTypeError(f"'{text}' is not a MIDI note number or a note name like C4 or F#2")
        shift = 1 if body[1:2] in ("#", "♯") else -1 if body[1:2] in ("b", "♭") and body[2:3] != "" else 0
        octave = body[2:] if shift else body[1:]
        try:
            value = 12 * (int(octave) + 1) + NOTE_NAMES[body[0]] + shift
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a MIDI note number or a note name like C4 or "
                                             "F#2") from None
    if not 0 <= value <= 127:
        raise argparse.ArgumentTypeError(f"{text} is outside MIDI notes 0-127")
    return value


def note_or_auto(text: str) -> int | None:
    """A MIDI note as `note` reads it, or None for 'auto'."""
    return None if text.strip().lower() == "auto" else note(text)

