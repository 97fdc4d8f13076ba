"""The instrument as one object: model, note bank renderer, voices, presets and the timbre, with the small API
the command line and the GUI drive (thread-safe: every call only queues an event or starts a bank)."""
from __future__ import annotations

import numpy as np

from synth.engine.bank import BankRenderer
from synth.core.timbre import Preset, default_timbre
from synth.engine.midi_bytes import checked_message
from synth.engine.voices import Voices
from synth.runtime.model import NoteModel


class Engine:
    """Play G(z, pitch) live: `send()` MIDI bytes from any thread, `process()` from the audio callback."""

    def __init__(self, model: NoteModel, rate: int = 48000, block: int = 128, polyphony: int = 32,
                 presets: list[Preset] | None = None, release: float | None = None, channel: int | None = None,
                 render_process: bool = True) -> None:
        self.model = model
        self.rate = rate
        self.presets = list(presets or [])
        self.renderer = BankRenderer(model, rate, polyphony=polyphony, process=render_process)
        self.renderer.blocks_per_second = rate / block
        self.voices = Voices(self.renderer, max_block=max(block, 1024), polyphony=polyphony, release=release,
                             channel=channel)
        self.bad_midi = 0  # messages refused by send()
        self.preset_index: int | None = 0 if self.presets else None
        self.z = self.presets[0].z if self.presets else default_timbre(model.info.z_dim)
        self.renderer.set_timbre(self.z)

    def start(self) -> None:
        """Start rendering the bank in the background."""
        self.renderer.start()

    def stop(self) -> None:
        self.renderer.stop()

    # -- timbre ------------------------------------------------------------------------------------------------
    def set_timbre(self, z: np.ndarray) -> None:
        """Play this latent from now on (new notes use it as soon as their pitch is rendered). A latent of the
        wrong size or with NaN/Inf is refused (ValueError) and the timbre stays as it was."""
        z = np.asarray(z, dtype=np.float32)
        if z.shape != (self.model.info.z_dim,) or not np.isfinite(z).all():
            raise ValueError(f"a timbre must be {self.model.info.z_dim} finite numbers; got shape {list(z.shape)}"
                             + ("" if z.size == 0 or np.isfinite(z).all() else " with NaN or Inf")
                             + "; the timbre stays as it was")
        self.z = z.copy()
        self.renderer.set_timbre(self.z)

    def select_preset(self, index: int) -> None:
        """Program change: preset number `index` (wrapping around the list)."""
        if self.presets:
            self.preset_index = index % len(self.presets)
            self.set_timbre(self.presets[self.preset_index].z)

    # -- events ------------------------------------------------------------------------------------------------
    def send(self, status: int, d1: int = 0, d2: int = 0) -> None:
        """Queue one MIDI channel message; program changes select a preset here, off the audio thread. Anything
        that is not a channel voice message with data bytes 0-127 is dropped and counted (`bad_midi`)."""
        message = checked_message(status, d1, d2)
        if message is None:
            self.bad_midi += 1
            return
        status, d1, d2 = message
        if status & 0xF0 == 0xC0:
            if self.voices.channel is None or status & 0x0F == self.voices.channel:
                self.select_preset(d1)
            return
        self.voices.events.append((status, d1, d2))
        if status & 0xF0 == 0x90 and d2 > 0:
            lane = self.renderer.lanes[self.voices.lane_of[status & 0x0F]]
            if lane.slot_for[:, d1].max() < 0:  # not rendered yet: ask for it now rather than let the renderer poll
                lane.velocity[d1] = d2  # so the layers this velocity plays come first
                lane.wanted[d1] = max(int(lane.wanted[d1]), 1)
                self.renderer.wake()

    def note_on(self, pitch: int, velocity: int = 100, channel: int = 0) -> None:
        self.send(0x90 | channel, pitch, velocity)

    def note_off(self, pitch: int, channel: int = 0) -> None:
        self.send(0x80 | channel, pitch, 0)

    def process(self, frames: int) -> np.ndarray:
        return self.voices.process(frames)
