"""Raw MIDI bytes → channel voice messages, the one place where bytes from a controller or a DAW are checked.

A glitching controller or a bad DAW event can deliver anything: data bytes of 128 and more, messages cut short,
data bytes with no status before them, system exclusive, system common and real-time bytes. Only complete channel
voice messages (note off/on, poly pressure, control change, program change, channel pressure, pitch bend) come out;
everything else is dropped and counted, so the voices only ever see status 0x80-0xEF and data bytes 0-127. Running
status (a data byte continuing the previous channel message) is honoured, as the MIDI 1.0 specification asks.
"""
from __future__ import annotations

import operator
from typing import Any, Iterable

# data bytes after each channel voice status (high nibble) and after the system common messages that have any
CHANNEL_DATA = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
SYSTEM_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1}
SYSEX, SYSEX_END, REALTIME = 0xF0, 0xF7, 0xF8

Message = tuple[int, int, int]


def parse(data: Iterable[int]) -> tuple[list[Message], int]:
    """The channel voice messages in `data` as (status, data1, data2) (data2 0 for one-byte messages), and how
    many messages or runs of bytes were dropped (malformed, cut short, stray, or not a channel voice message)."""
    out: list[Message] = []
    dropped = 0
    status, need = 0, 0  # the running status and how many data bytes its messages take; 0: none
    got: list[int] = []
    started = False  # a status byte came and its message is not complete yet
    in_sysex = False
    stray = False  # inside a run of data bytes that belong to nothing (counted once)
    for b in data:
        if not isinstance(b, int) or not 0 <= b <= 0xFF:  # not a byte at all: the rest of this message is lost
            dropped += 1 if not stray else 0
            status, got, started, in_sysex, stray = 0, [], False, False, True
            continue
        if b >= REALTIME:  # clock, start, stop...: may come between any two bytes, never for the voices
            dropped += 1
            continue
        if b >= 0x80:
            if started:  # the previous message was cut short by this status byte
                dropped += 1
            got, stray, started = [], False, False
            if in_sysex:
                in_sysex = False
                if b == SYSEX_END:  # the end of a system exclusive message (counted at its start)
                    status = 0
                    continue
            if b < SYSEX:
                status, need, started = b, CHANNEL_DATA[b & 0xF0], True
            elif b == SYSEX:
                dropped += 1
                status, in_sysex = 0, True
            elif b in SYSTEM_DATA:
                status, need, started = b, SYSTEM_DATA[b], True
            else:  # tune request, a stray end of exclusive, undefined status bytes
                dropped += 1
                status = 0
            continue
        if in_sysex:
            continue
        if status == 0:
            if not stray:
                dropped += 1
                stray = True
            continue
        got.append(b)
        started = True
        if len(got) == need:
            if status >= SYSEX:  # a complete system common message: not for the voices, and no running status
                dropped += 1
                status = 0
            else:
                out.append((status, got[0], got[1] if need == 2 else 0))
            got, started = [], False
    if started:  # cut short by the end of the data
        dropped += 1
    return out, dropped


def checked_message(status: Any, d1: Any = 0, d2: Any = 0) -> Message | None:
    """(status, d1, d2) as plain ints if it is a channel voice message in range (status 0x80-0xEF, data bytes
    0-127, all integers, numpy's included), else None."""
    try:
        m = (operator.index(status), operator.index(d1), operator.index(d2))
    except TypeError:
        return None
    return m if 0x80 <= m[0] <= 0xEF and 0 <= m[1] <= 0x7F and 0 <= m[2] <= 0x7F else None
