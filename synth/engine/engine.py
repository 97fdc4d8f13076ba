"""The instrument as one object: model, note bank renderer, voices, presets and the timbre, with the small API
the command line and the GUI drive (thread-safe: every call only queues an event or starts a bank).

The bank has two lanes: lane 0 plays the timbre, lane 1 the modulation wheel's morph target (see
synth.engine.voices), rendered only once a wheel, pressure or aftertouch message first asks for it."""
from __future__ import annotations

from collections import deque

import numpy as np

from synth.engine.bank import BankRenderer
from synth.core.timbre import Preset, default_timbre
from synth.engine.midi_bytes import checked_message
from synth.engine.offline import morph_target, touches_morph
from synth.engine.voices import Voices
from synth.runtime.model import NoteModel


class Engine:
    """Play G(z, pitch) live: `send()` MIDI bytes from any thread, `process()` from the audio callback."""

    def __init__(self, model: NoteModel, rate: int = 48000, block: int = 128, polyphony: int = 32,
                 presets: list[Preset] | None = None, release: float | None = None, channel: int | None = None,
                 render_process: bool = True, spread: float = 0.0, mod_target: str | None = None,
                 drums: str | None = None) -> None:
        """`spread`: key-tracked stereo spread (0-1); `mod_target`: the preset CC1 and pressure morph towards
        (default: offline.morph_target's choice for the current preset; ValueError for an unknown name);
        `drums`: a SoundFont whose GM kit FluidSynth plays channel 10 with, mixed into every block (DrumError
        if it cannot be loaded); without it channel 10 plays the timbre like any other."""
        self.model = model
        self.rate = rate
        self.presets = list(presets or [])
        info = model.info
        bank_notes = (info.pitch_max - info.pitch_min + 1) * len(info.velocity_layers)
        voices = polyphony * (2 if len(info.velocity_layers) > 1 else 1)
        # lane 0 as one lane would have it, plus one bank and its voices for the morph lane
        slots = 3 * bank_notes + 2 * voices + 16
        self.renderer = BankRenderer(model, rate, lanes=2, polyphony=polyphony, slots=slots, process=render_process)
        self.renderer.blocks_per_second = rate / block
        self.voices = Voices(self.renderer, max_block=max(block, 1024), polyphony=polyphony, release=release,
                             channel=channel, spread=spread)
        self.mod_target = mod_target
        self.morph_index: int | None = None  # the preset lane 1 plays
        self.morph_started = False  # lane 1 has been asked to render
        self.drums = None
        if drums is not None:
            from synth.engine.drums import DRUM_CHANNEL, FluidPlayer

            self.drums = FluidPlayer(drums, rate)
            self.drum_events: deque[tuple[int, int, int]] = deque(maxlen=4096)
            self._drum_block = np.zeros((max(block, 1024), 2), dtype=np.float32)
            self.voices.skip_channel = DRUM_CHANNEL
        self.bad_midi = 0  # messages refused by send()
        self.preset_index: int | None = 0 if self.presets else None
        self.z = self.presets[0].z if self.presets else default_timbre(model.info.z_dim)
        self.renderer.set_timbre(self.z)
        self._choose_morph()

    def start(self) -> None:
        """Start rendering the bank in the background."""
        self.renderer.start()

    def stop(self) -> None:
        self.renderer.stop()
        if self.drums is not None:
            self.drums.close()
            self.drums = None

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
            self._choose_morph()

    def set_mod_target(self, name: str | None) -> None:
        """Morph the modulation wheel and pressure towards the preset named `name` (None: the default choice);
        ValueError naming the presets for an unknown one, and the target stays as it was."""
        morph_target(self.preset_index or 0, self.presets, name)  # raises for an unknown name
        self.mod_target = name
        self._choose_morph()

    def _choose_morph(self) -> None:
        """Point the morph lane at the target for the current preset (rendered now if the wheel was used)."""
        target = morph_target(self.preset_index or 0, self.presets, self.mod_target)
        self.voices.morph_lane_of[:] = -1 if target is None else 1
        if target != self.morph_index:
            self.morph_index = target
            if self.morph_started and target is not None:
                self.renderer.set_timbre(self.presets[target].z, 1)

    @property
    def morph_name(self) -> str | None:
        """The preset the modulation wheel morphs towards (None without presets)."""
        return None if self.morph_index is None else self.presets[self.morph_index].name

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
        if not self.morph_started and self.morph_index is not None and touches_morph(status, d1, d2):
            self.morph_started = True  # the first touch of a morph controller: render the target's bank
            self.renderer.set_timbre(self.presets[self.morph_index].z, 1)
        if self.drums is not None and status & 0x0F == self.voices.skip_channel:
            self.drum_events.append((status, d1, d2))  # played by FluidSynth in the next block
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
        """The next block, [frames, 2]: the voices, plus FluidSynth's drums when it plays channel 10 (their
        events applied at the block's start, as the voices' are; FluidSynth writes into a preallocated block)."""
        block = self.voices.process(frames)
        if self.drums is not None:
            while self.drum_events:
                self.drums.send(*self.drum_events.popleft())
            kit = self._drum_block[:frames]
            self.drums.render(kit)
            np.add(block, kit, out=block)
            np.clip(block, -1.0, 1.0, out=block)
        return block
