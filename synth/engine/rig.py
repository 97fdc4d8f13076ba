"""The live rig: model, engine, effects, audio output, MIDI input and recorder, opened and closed in the one order
that works, for `gansynth-live play` and for the window's sound process alike.

The order (written here only): the audio stream is made, then MIDI input is opened, then the first bank is
waited for, then the audio starts; on close the audio stops first, then the take is finished, then MIDI closes.
Opening or closing rtmidi's JACK client (GIL held) waits for a server cycle, which a synchronous JACK server runs
only after our audio callback has returned: with the callback running, that cycle waits for the GIL we hold.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synth.core.timbre import Preset

if TYPE_CHECKING:
    from synth.engine.audio import AudioOutput
    from synth.engine.effects import EffectsChain
    from synth.engine.engine import Engine
    from synth.engine.midi import MidiInput
    from synth.engine.recorder import Recorder
    from synth.runtime.model import NoteModel

FIRST_BANK_SECONDS = 120.0  # the first bank renders before the audio starts; a slow model gets this long


@dataclass
class RigConfig:
    """Everything a live rig is opened with; every `play` option has its field here."""

    model: str
    provider: str | None = None
    presets: list[Preset] = field(default_factory=list)
    timbre: np.ndarray | None = None  # the latent to start on (default: the first preset's)
    gain: float | None = None  # the voices' master gain (default: theirs, 0.5)
    rate: int = 48000
    block: int = 128
    latency: str | float = "low"  # "low", "high" or seconds, as PortAudio takes it
    polyphony: int = 32
    release: float | None = None  # a fixed release in seconds (default: each note's own from the model)
    channel: int | None = None  # 0-15: listen to one MIDI channel (default: all)
    effects: str | list[dict] | None = None  # a typed chain (must load), a saved chain (reported if it does not
    #                                          load, and the rig plays without it) or None: no effects stage
    audio: bool = True
    midi: bool = True
    audio_out: str | None = None
    host_api: str | None = None
    midi_in: str | None = None
    midi_api: str | None = None
    connect: str | None = None  # JACK input ports to wire our outputs to
    record: str | None = None
    overwrite: bool = False  # let `record` replace an existing file
    bit_depth: int = 24  # the take's sample format: 16 or 24-bit PCM, 32-bit float (WAV only)
    spread: float = 0.0  # key-tracked stereo spread, 0-1
    mod_target: str | None = None  # the preset the wheel and pressure morph towards (default: the engine's choice)
    drums: str | None = None  # a SoundFont FluidSynth plays channel 10 from
    strict: bool = True  # a device that does not open stops open(); else it is said in `problems` and left out


@dataclass
class RigStatus:
    """One picture of a running rig, the same for the command line and the window (it pickles across the pipe)."""

    provider: str = ""
    polyphony: int = 0  # what the voices play with, read back from them
    release_s: float | None = None  # a fixed release; None: each note's own
    channel: int | None = None  # 0-15; None: every channel
    voices: int = 0
    bank_ready: int = 0
    bank_size: int = 0
    bank_complete: bool = False
    last_bank_s: float | None = None
    first_note_s: float | None = None
    waited_notes: int = 0  # notes that waited for their pitch to be rendered
    dropped_notes: int = 0
    stolen: int = 0  # voices taken for newer notes past the polyphony
    limited_blocks: int = 0  # blocks the peak limiter turned down
    nonfinite_blocks: int = 0  # blocks that were NaN or Inf and played as silence
    render_error: str | None = None
    preset: str | None = None
    z: list[float] = field(default_factory=list)
    keys_held: list[int] = field(default_factory=list)
    key_velocities: dict[int, int] = field(default_factory=dict)  # each held key's note-on velocity
    mod_target: str | None = None  # the preset the modulation wheel and pressure morph towards
    meter: dict | None = None  # the output's peak, RMS, clip and scope since the last status (Meter.read)
    queued_events: list[tuple[int, int, int]] = field(default_factory=list)  # MIDI the callback has not taken yet
    audio: str | None = None  # the output device while it plays
    hostapi: str | None = None
    audio_lost: str | None = None  # why the audio stopped under us, once it has
    latency_ms: float | None = None  # device plus effects
    blocks: int = 0
    underruns: int = 0
    late_blocks: int = 0
    failed_blocks: int = 0
    callback_p50_us: float = 0.0
    callback_p99_us: float = 0.0
    midi: str | None = None  # the MIDI input port
    midi_messages: int = 0
    bad_midi: int = 0  # malformed messages dropped, by the input and by the engine
    recording: str | None = None
    recording_s: float | None = None
    recording_error: str | None = None


class LiveRig:
    """A rig built from a RigConfig: `open()` starts it in order, `close()` stops it in order (and is safe to call
    after a failed or partial open). Only `open`, `close` and the record calls change what is open."""

    def __init__(self, config: RigConfig, model: NoteModel | None = None,
                 on_midi: Callable[[int, int, int], None] | None = None,
                 report: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.on_midi = on_midi  # called after the engine has each MIDI message (the window's MIDI learn)
        self.report = report  # MIDI input problems as they happen
        self.model = model  # an already loaded config.model (the caller read its z size for the presets)
        self.engine: Engine | None = None
        self.chain: EffectsChain | None = None
        self.audio: AudioOutput | None = None
        self.midi: MidiInput | None = None
        self.audio_error: str | None = None
        self.midi_error: str | None = None
        self.chain_error: str | None = None
        self.lost: str | None = None
        self.connected: list[tuple[str, str]] = []  # (our port, theirs) wired by `connect`
        self.last_take: Recorder | None = None  # the last finished take (its seconds and dropped frames)
        self._recording = threading.Lock()
        self._clip_told = False
        self._closed = False
        self._latency_ms: float | None = None
        self._state = threading.Lock()  # close() from another thread never meets a half-started stream
        self._rec_told: str | None = None

    # -- open and close ----------------------------------------------------------------------------------------
    def open(self, announce: Callable[[], None] | None = None) -> None:
        """Model, engine and effects; the audio stream (not started); the recorder; the bank renderer; MIDI input;
        `announce()` (devices are known now); the first bank; the audio starts; JACK connections."""
        try:
            engine = self._open_engine()
            audio = self._open_audio(engine)
            engine.start()
            self._open_midi()
            if announce is not None:
                announce()
            if audio is not None:
                self._wait_first_bank(engine)
                with self._state:
                    if self._closed:  # closed from another thread while the bank rendered
                        return
                    audio.start()
                    self._latency_ms = audio.latency_ms  # asked once: a stream whose server died may raise
                if self.config.connect:
                    self.connected = self._connect(audio, self.config.connect)
        except BaseException:
            self.close()
            raise

    def _wait_first_bank(self, engine: Engine) -> None:
        """Until the first bank is complete, it failed, FIRST_BANK_SECONDS passed or close() was called."""
        deadline = time.monotonic() + FIRST_BANK_SECONDS
        while not self._closed and time.monotonic() < deadline:
            if engine.renderer.wait_complete(timeout=0.1) or engine.renderer.error:
                return

    def _open_engine(self) -> Engine:
        from synth.engine.engine import Engine
        from synth.runtime.model import NoteModel, live_threads

        c = self.config
        if self.model is None:
            self.model = NoteModel(c.model, provider=c.provider, threads=live_threads())
        self.engine = engine = Engine(self.model, rate=c.rate, block=c.block, polyphony=c.polyphony,
                                      presets=c.presets, release=c.release, channel=c.channel, spread=c.spread,
                                      mod_target=c.mod_target, drums=c.drums)
        if c.gain is not None:
            self.set_gain(c.gain)
        if c.timbre is not None:
            engine.set_timbre(np.asarray(c.timbre, np.float32))
        self.chain = self._open_chain()
        return engine

    def _open_chain(self) -> EffectsChain | None:
        from synth.engine.effects import EffectError, EffectsChain, parse_chain

        c = self.config
        if c.effects is None:
            return None
        if isinstance(c.effects, str):
            return parse_chain(c.effects, c.rate)
        try:
            return EffectsChain.from_list(c.rate, c.effects)
        except EffectError as e:
            self.chain_error = f"saved effects not restored: {e}"
            return EffectsChain(c.rate)

    def _open_audio(self, engine: Engine) -> AudioOutput | None:
        from synth.engine.audio import AudioOutput
        from synth.engine.recorder import Recorder

        c = self.config
        if not c.audio:
            return None
        try:
            self.audio = audio = AudioOutput(engine, c.audio_out, c.host_api, block=c.block, latency=c.latency,
                                             effects=self.chain)
        except (OSError, ValueError) as e:
            if c.strict:
                raise
            self.audio_error = str(e)
            return None
        if c.record:
            audio.recorder = Recorder(c.record, c.rate, audio.channels, overwrite=c.overwrite, bit_depth=c.bit_depth)
        return audio

    def _open_midi(self) -> None:
        from synth.engine.midi import MidiInput

        c = self.config
        if not c.midi:
            return
        try:
            self.midi = MidiInput(self._midi_in, port=c.midi_in, api=c.midi_api, report=self.report)
        except (OSError, ValueError) as e:
            if c.strict:
                raise
            self.midi_error = str(e)

    def _midi_in(self, status: int, d1: int, d2: int) -> None:
        self._engine().send(status, d1, d2)
        if self.on_midi is not None:
            self.on_midi(status, d1, d2)

    @staticmethod
    def _connect(audio: AudioOutput, ports: str) -> list[tuple[str, str]]:
        from synth.engine.routing import RoutingError, connect_outputs

        if not audio.hostapi.startswith("JACK"):
            raise RoutingError(f"--connect wires JACK ports, but the audio goes to {audio.device_name}; "
                               "add --host-api jack")
        return connect_outputs(ports)

    def _engine(self) -> Engine:
        if self.engine is None:
            raise ValueError("the live rig is not open")
        return self.engine

    def close(self) -> Path | None:
        """Stop in order: audio, the take (finished first: it is the one thing that cannot be made again),
        effects, MIDI, the bank renderer. Returns the take's path if one was written. Safe to call twice."""
        with self._state:
            if self._closed:
                return None
            self._closed = True
        take = None
        try:
            if self.audio is not None:
                self.audio.stop()
            take = self.record_stop()
        finally:
            if self.chain is not None:
                self.chain.close()
            if self.midi is not None:
                self.midi.close()
            if self.engine is not None:
                self.engine.stop()
        return take

    # -- while it plays ----------------------------------------------------------------------------------------
    def set_gain(self, gain: float) -> None:
        """The voices' master gain, 0 to MAX_GAIN; a value outside (or NaN) is refused and the gain stays."""
        gain, voices = float(gain), self._engine().voices
        if not 0.0 <= gain <= MAX_GAIN:  # NaN too
            raise ValueError(f"master gain {gain} is outside 0-{MAX_GAIN:g}; kept {voices.gain:g}")
        voices.gain = gain

    def record_start(self, path: str, overwrite: bool = False) -> str:
        from synth.engine.recorder import Recorder

        if self.audio is None or self.lost:
            raise ValueError("nothing to record: the audio output is not running")
        with self._recording:
            if self.audio.recorder is not None:
                raise ValueError(f"already recording to {self.audio.recorder.path}")
            self.audio.recorder = Recorder(path, self.config.rate, self.audio.channels, overwrite=overwrite)
            return str(self.audio.recorder.path)

    def record_stop(self) -> Path | None:
        """Finish the take (OutputError if it cannot be: its part file stays, and says so); None if none."""
        with self._recording:
            if self.audio is None or self.audio.recorder is None:
                return None
            rec, self.audio.recorder = self.audio.recorder, None
            self.last_take = rec
            return rec.close()

    def check_server(self) -> bool:
        """Whether the audio server went away under us (then the take is finished at once); asked off the audio
        thread, a few times a second."""
        if self.audio is None or self.lost or not self.audio.check_server():
            return False
        self.lost = f"{self.audio.device_name} went away (was its server stopped?)"
        return True

    def problems(self) -> list[str]:
        """New lines to tell the player since the last call: failed blocks, hosted plugins that dropped out,
        clipping after the effects (once) and a recorder that stopped."""
        lines: list[str] = list(self.audio.problems()) if self.audio is not None else []
        while self.chain is not None and self.chain.errors:
            lines.append(self.chain.errors.pop(0))
        clipping = self.chain.clipping() if self.chain is not None and not self._clip_told else None
        if clipping:
            self._clip_told = True
            lines.append(f"warning: {clipping}")
        recorder = self.audio.recorder if self.audio is not None else None
        if recorder is not None and recorder.error is not None and recorder.error is not self._rec_told:
            self._rec_told = recorder.error
            lines.append(recorder.error)
        return lines

    def status(self) -> RigStatus:
        e, a, m = self._engine(), self.audio, self.midi
        r, v = e.renderer, e.voices
        playing = a is not None and a.blocks > 0 and not self.lost
        rec = a.recorder if a is not None else None
        p50, p99, _ = a.callback_us() if a is not None else (0.0, 0.0, 0.0)
        return RigStatus(
            provider=e.model.provider, polyphony=v.polyphony, channel=v.channel,
            release_s=1.0 / (v.release_rate * v.rate) if v.fixed_release else None, voices=v.sounding,
            bank_ready=r.ready(), bank_size=r.bank_notes,
            bank_complete=r.complete(), last_bank_s=r.last_bank_seconds, first_note_s=r.last_first_note_seconds,
            waited_notes=v.waited_notes, dropped_notes=v.dropped_notes, stolen=v.stolen,
            limited_blocks=v.limited_blocks, nonfinite_blocks=v.nonfinite_blocks, render_error=r.error,
            preset=e.presets[e.preset_index].name if e.preset_index is not None else None,
            z=e.z.tolist(), keys_held=v.keys_held(), queued_events=list(v.events),
            key_velocities={k: int(r.lanes[0].velocity[k]) for k in v.keys_held()}, mod_target=e.morph_name,
            meter=a.meter.read() if a is not None and playing else None,
            audio=a.device_name if a is not None and playing else None, hostapi=a.hostapi if a is not None else None,
            audio_lost=self.lost,
            latency_ms=self._latency_ms + a.fx_latency_ms if a is not None and playing and self._latency_ms is not None
            else None,
            blocks=a.blocks if a else 0, underruns=a.underruns if a else 0, late_blocks=a.late_blocks if a else 0,
            failed_blocks=a.failed_blocks if a else 0, callback_p50_us=p50, callback_p99_us=p99,
            midi=m.port_name if m else None, midi_messages=m.messages if m else 0,
            bad_midi=e.bad_midi + (m.dropped if m else 0),
            recording=str(rec.path) if rec else None, recording_s=rec.seconds if rec else None,
            recording_error=rec.error if rec else None)


MAX_GAIN = 10.0  # +26 dB over the voices' default 0.5: more than the master slider's +6 dB ever asks
