"""The instrument the window drives: engine, audio output, MIDI input, effects chain and recorder, with nothing
of Qt in it. Every method returns quickly: timbre changes only post a target to the renderer."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import time

import numpy as np

from synth.engine.audio import AudioOutput
from synth.engine.effects import EffectsChain
from synth.engine.engine import Engine
from synth.engine.latent import PRESETS_DIR, Preset, PresetError, load_presets, morph, save_preset
from synth.engine.midi import MidiInput
from synth.engine.recorder import Recorder
from synth.runtime.model import NoteModel

MASTER_GAIN = 0.5  # the voices' gain at 0 dB on the master slider
TIMBRE_INTERVAL = 0.1  # seconds between new banks while the pad moves: each gets time to render the held keys


@dataclass
class Devices:
    """Where the sound goes and where MIDI comes from (None: the system default / our virtual port)."""
    audio_out: str | None = None
    host_api: str | None = None
    rate: int = 48000
    block: int = 128
    midi_in: str | None = None
    midi_api: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @staticmethod
    def from_dict(d: dict) -> "Devices":
        known = Devices().__dict__
        return Devices(**{k: d[k] for k in known if k in d})


@dataclass
class Instrument:
    """One playable instrument; `start()` opens audio and MIDI (errors are kept in `audio_error`/`midi_error`)."""
    model: NoteModel
    user_presets: Path
    devices: Devices = field(default_factory=Devices)
    on_cc: Callable[[int, int, int], None] | None = None  # (channel, controller, value), from the MIDI thread

    def __post_init__(self) -> None:
        self.presets = self._load_presets()
        self.engine = self._make_engine()
        self.chain = EffectsChain(self.devices.rate)
        self.audio: AudioOutput | None = None
        self.midi: MidiInput | None = None
        self.audio_error: str | None = None
        self.midi_error: str | None = None
        self.corners: list[Preset] = [self.presets[i % len(self.presets)] for i in range(4)]
        self.position = (0.0, 0.0)
        self.master_db = 0.0
        self._pending: np.ndarray | None = None
        self._posted = 0.0

    def _load_presets(self) -> list[Preset]:
        z_dim = self.model.info.z_dim
        found: list[Preset] = []
        for directory in (PRESETS_DIR, self.user_presets):
            try:
                found += load_presets(z_dim, directory)
            except PresetError:  # presets of another model: not playable with this one
                continue
        if not found:
            rng = np.random.default_rng(0)
            found = [Preset(f"Random {i + 1}", rng.standard_normal(z_dim).astype(np.float32)) for i in range(4)]
        return found

    def _make_engine(self) -> Engine:
        engine = Engine(self.model, rate=self.devices.rate, block=self.devices.block, presets=self.presets)
        engine.start()
        return engine

    # -- audio and MIDI ------------------------------------------------------------------------------------------
    def start(self, audio: bool = True, midi: bool = True) -> None:
        """Open the devices; a device that fails leaves its error in audio_error/midi_error and the rest running."""
        self.audio_error = self.midi_error = None
        if audio:
            try:
                self.audio = AudioOutput(self.engine, self.devices.audio_out, self.devices.host_api,
                                         block=self.devices.block, effects=self.chain)
                self.audio.start()
            except (OSError, ValueError) as e:
                self.audio, self.audio_error = None, str(e)
        if midi:
            try:
                self.midi = MidiInput(self._on_midi, port=self.devices.midi_in, api=self.devices.midi_api,
                                      report=lambda text: setattr(self, "midi_error", text))
            except (OSError, ValueError) as e:
                self.midi, self.midi_error = None, str(e)

    def stop(self) -> None:
        self.stop_recording()
        if self.midi is not None:
            self.midi.close()
            self.midi = None
        if self.audio is not None:
            self.audio.stop()
            self.audio = None

    def apply(self, devices: Devices, audio: bool = True, midi: bool = True) -> None:
        """Switch to other devices; a new sample rate needs a new engine (its bank is rendered at the rate)."""
        self.stop()
        if devices.rate != self.devices.rate or devices.block != self.devices.block:
            self.engine.stop()
            self.devices = devices
            self.engine = self._make_engine()
            self.chain = EffectsChain.from_list(devices.rate, self.chain.to_list())
            self.set_master_db(self.master_db)
            self.move(*self.position)
        self.devices = devices
        self.start(audio, midi)

    def close(self) -> None:
        self.stop()
        self.engine.stop()

    def _on_midi(self, status: int, d1: int, d2: int) -> None:
        self.engine.send(status, d1, d2)
        if status & 0xF0 == 0xB0 and self.on_cc is not None:
            self.on_cc(status & 0x0F, d1, d2)

    # -- timbre --------------------------------------------------------------------------------------------------
    def move(self, x: float, y: float) -> np.ndarray:
        """Morph to pad position (x, y) in [0, 1]² (top-left corner at 0, 0) and play it. While the pad moves
        faster than TIMBRE_INTERVAL, the latest position waits for `flush_timbre()`."""
        self.position = (min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0))
        z = morph([c.z for c in self.corners], *self.position)
        self._pending = z
        self.flush_timbre()
        return z

    def flush_timbre(self) -> None:
        """Post the latest morph position to the renderer if the last one is old enough (call it periodically)."""
        if self._pending is not None and time.monotonic() - self._posted >= TIMBRE_INTERVAL:
            self.engine.set_timbre(self._pending)
            self._pending, self._posted = None, time.monotonic()

    def set_corner(self, corner: int, preset: Preset) -> None:
        self.corners[corner] = preset
        self.move(*self.position)

    def random_timbre(self, seed: int | None = None) -> np.ndarray:
        z = np.random.default_rng(seed).standard_normal(self.model.info.z_dim).astype(np.float32)
        self._pending = None
        self.engine.set_timbre(z)
        return z

    def save_preset(self, name: str, overwrite: bool = False) -> Path:
        """Save the timbre playing now in the user's preset folder (refuses to replace one unless told)."""
        path = save_preset(Preset(name, self.engine.z.copy(), description="saved from the morph pad"),
                           self.user_presets, overwrite=overwrite)
        self.presets = self._load_presets()
        return path

    def bank_progress(self) -> tuple[int, int]:
        r = self.engine.renderer
        return r.ready(), r.pmax - r.pmin + 1

    def set_master_db(self, db: float) -> None:
        self.master_db = db
        self.engine.voices.gain = MASTER_GAIN * 10 ** (db / 20)

    # -- recording -----------------------------------------------------------------------------------------------
    def start_recording(self, path: str | Path, overwrite: bool = False) -> Recorder:
        if self.audio is None:
            raise ValueError("nothing to record: the audio output is not running")
        rec = Recorder(path, self.devices.rate, self.audio.channels, overwrite=overwrite)
        self.audio.recorder = rec
        return rec

    def stop_recording(self) -> Path | None:
        if self.audio is None or self.audio.recorder is None:
            return None
        rec, self.audio.recorder = self.audio.recorder, None
        return rec.close()

    def status(self) -> dict:
        st = self.engine.status()
        a = self.audio
        st["audio"] = a.device_name if a else None
        st["latency_ms"] = (a.latency_ms + a.fx_latency_ms) if a else None
        st["underruns"] = a.underruns if a else 0
        st["callback_p99_us"] = a.callback_us()[1] if a else 0.0
        st["midi"] = self.midi.port_name if self.midi else None
        st["recording_s"] = a.recorder.seconds if a and a.recorder else None
        return st
