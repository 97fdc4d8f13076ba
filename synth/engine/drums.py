"""General MIDI drums (channel 10) played by FluidSynth from a SoundFont, for `render --drums SOUNDFONT.sf2`.

The model has no percussion, so a GM file's drum part comes from FluidSynth (libfluidsynth through pyfluidsynth)
and is mixed into the render. FluidSynth starts an event at the start of one of its 64-frame blocks; each event
is sent at the block boundary nearest its exact sample (at most 32 frames, 0.67 ms at 48 kHz, from it, where
FluidSynth's own MIDI player starts it at the next boundary it reaches). Reverb and chorus are left at
FluidSynth's defaults, so the kit sounds as it does in FluidSynth alone.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import os
from pathlib import Path

import numpy as np

FLUID_BLOCK = 64  # FluidSynth's internal block (FLUID_BUFSIZE)
DRUM_CHANNEL = 9
DRUM_GAIN = 0.2  # FluidSynth's default synth.gain: the kit at the level FluidSynth alone plays it
RING_OUT_SECONDS = 10.0
SILENCE = 1e-5


class DrumError(ValueError):
    """A SoundFont or FluidSynth that cannot play the drums, in one line."""


class FluidPlayer:
    """A FluidSynth synthesizer in General MIDI mode playing one SoundFont (channel 10 is its drum kit); `send`
    channel messages, `render` float stereo. `effects` False turns FluidSynth's reverb and chorus off."""

    def __init__(self, soundfont: str | os.PathLike, rate: int, gain: float = DRUM_GAIN, effects: bool = True) -> None:
        path = Path(soundfont)
        if not path.is_file():
            raise DrumError(f"SoundFont {path} not found")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pyfluidsynth prints its library path if CI is set
                import fluidsynth
        except (ImportError, OSError) as e:  # pyfluidsynth missing, or libfluidsynth not installed
            raise DrumError(f"--drums needs FluidSynth (pip install pyfluidsynth; Debian: libfluidsynth3): {e}") \
                from None
        options = {} if effects else {"synth.reverb.active": 0, "synth.chorus.active": 0}
        self.synth = fluidsynth.Synth(gain=gain, samplerate=float(rate), **options)
        if self.synth.sfload(str(path)) < 0:
            self.synth.delete()
            raise DrumError(f"{path} is not a SoundFont FluidSynth can read")
        for ch in range(16):  # GM: every channel starts on program 0 (channel 10 on the drum kit, bank 128)
            self.synth.program_change(ch, 0)
        self._pressure = fluidsynth._fl.fluid_synth_channel_pressure
        self._pressure.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self._write = fluidsynth._fl.fluid_synth_write_float
        self._write.restype = ctypes.c_int
        self._write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                ctypes.c_void_p, ctypes.c_int, ctypes.c_int]

    def send(self, status: int, d1: int, d2: int) -> None:
        """One channel message."""
        kind, ch, s = status & 0xF0, status & 0x0F, self.synth
        if kind == 0x90 and d2 > 0:
            s.noteon(ch, d1, d2)
        elif kind in (0x80, 0x90):
            s.noteoff(ch, d1)
        elif kind == 0xB0:
            s.cc(ch, d1, d2)
        elif kind == 0xE0:
            s.pitch_bend(ch, ((d2 << 7) | d1) - 8192)
        elif kind == 0xC0:
            s.program_change(ch, d1)
        elif kind == 0xD0:
            self._pressure(s.synth, ch, d1)

    def render(self, out: np.ndarray) -> None:
        """Fill `out` ([frames, 2] float32, C-contiguous) with the next frames."""
        assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape[1] == 2
        if len(out):
            p = out.ctypes.data
            self._write(self.synth.synth, len(out), p, 0, 2, p, 1, 2)

    def close(self) -> None:
        self.synth.delete()


def render_drums(events: list, soundfont: str | os.PathLike, rate: int, frames: int, gain: float = DRUM_GAIN,
                 effects: bool = True) -> tuple[np.ndarray, int]:
    """Events (objects with seconds, status, d1, d2; for --drums those of channel 10) played by FluidSynth:
    [≥ frames, 2] float32, running on past `frames` while it still sounds (up to RING_OUT_SECONDS), and the
    notes played."""
    try:
        kit = FluidPlayer(soundfont, rate, gain, effects)
    except DrumError as e:
        raise DrumError(f"--drums: {e}") from None
    try:
        out = np.zeros((frames + int(RING_OUT_SECONDS * rate) + FLUID_BLOCK, 2), dtype=np.float32)
        cursor, notes = 0, 0
        for ev in events:
            at = int(round(ev.seconds * rate))
            at = min(int(round(at / FLUID_BLOCK)) * FLUID_BLOCK, len(out))  # the nearest block boundary
            if at > cursor:
                kit.render(out[cursor:at])
                cursor = at
            kit.send(ev.status, ev.d1, ev.d2)
            notes += ev.status & 0xF0 == 0x90 and ev.d2 > 0
        while cursor < len(out):  # to the end of the piece, then until the kit is silent
            n = min(FLUID_BLOCK * 16, len(out) - cursor)
            kit.render(out[cursor:cursor + n])
            cursor += n
            if cursor >= frames and np.abs(out[cursor - n:cursor]).max() < SILENCE:
                break
        return out[:cursor], notes
    finally:
        kit.close()
