"""The sound side of a front end (engine, effects, recorder, audio output, MIDI input) in a process of its own.

A window's thread runs long Python work (painting, layout, event handling) while holding the GIL; if the OS
preempts it there, an audio callback in the same process waits for the GIL and is late. Here the audio
process holds only short, real-time-priority threads (synth.engine.realtime): its command loop, the bank
bookkeeping, the effects producer, the recorder and MIDI input. The front end talks to it over two pipes:
commands (one-way for notes and timbres, request/reply for the rest) and events (controller moves, errors).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from typing import Any

import numpy as np

from synth.engine.effects import EffectError

STARTUP_SECONDS = 120.0
MAX_GAIN = 10.0  # +26 dB over the voices' default 0.5: more than the master slider's +6 dB ever asks
WATCH_SECONDS = 0.1  # how often the sound process looks for failed blocks and a lost audio server


class SoundProcessError(ValueError):
    """The sound process could not start or answer, with its reason."""


def _serve(commands, events, config: dict) -> None:  # pragma: no cover - runs in the child (covered end to end)
    from synth.engine.audio import AudioOutput, skip_portaudio_teardown_if_jack_is_gone
    from synth.engine.effects import EffectsChain, builtin, load_plugin
    from synth.engine.engine import Engine
    from synth.core.timbre import Preset
    from synth.engine.midi import MidiInput
    from synth.engine.realtime import promote_thread
    from synth.engine.recorder import Recorder
    from synth.runtime.model import NoteModel, live_threads

    lock = threading.Lock()

    def emit(*event: Any) -> None:
        with lock:
            events.send(event)

    try:
        model = NoteModel(config["model"], provider=config.get("provider"), threads=live_threads())
        presets = [Preset(name, np.asarray(z, np.float32)) for name, z in config.get("presets", [])]
        rate, block = config["rate"], config["block"]
        engine = Engine(model, rate=rate, block=block, presets=presets)
        engine.voices.gain = config.get("gain", engine.voices.gain)
        if config.get("z") is not None:
            engine.set_timbre(np.asarray(config["z"], np.float32))
        try:
            chain = EffectsChain.from_list(rate, config.get("effects", []))
            chain_error = None
        except EffectError as e:
            chain, chain_error = EffectsChain(rate), f"saved effects not restored: {e}"
        engine.start()
    except (OSError, ValueError) as e:
        commands.send(("error", str(e)))
        return
    audio, midi, audio_error, midi_error = None, None, None, None
    # MIDI before audio and audio stopped before MIDI: opening or closing rtmidi's JACK client (GIL held) waits
    # for a server cycle, which a synchronous JACK server runs only after our audio callback
    if config.get("midi", True):
        def on_midi(status: int, d1: int, d2: int) -> None:
            engine.send(status, d1, d2)
            if status & 0xF0 == 0xB0:
                emit("cc", status & 0x0F, d1, d2)
        try:
            midi = MidiInput(on_midi, port=config.get("midi_in"), api=config.get("midi_api"),
                             report=lambda text: emit("error", text))
        except (OSError, ValueError) as e:
            midi, midi_error = None, str(e)
    if config.get("audio", True):
        try:
            audio = AudioOutput(engine, config.get("audio_out"), config.get("host_api"), block=block, effects=chain)
            audio.start()
        except (OSError, ValueError) as e:
            audio, audio_error = None, str(e)
    commands.send(("ready", {"audio_error": audio_error, "midi_error": midi_error, "chain_error": chain_error}))
    promote_thread()
    recording = threading.Lock()
    lost: list[str] = []  # set once: why the audio stopped under us
    watching = threading.Event()

    def watch() -> None:
        """Off the audio thread, ten times a second: failed blocks and a lost audio server, reported as events;
        on a loss the take is finalised at once."""
        promote_thread()
        while not watching.wait(WATCH_SECONDS):
            for problem in audio.problems():
                emit("error", problem)
            if audio.check_server():
                saved = record_stop()
                lost.append(f"{audio.device_name} went away (was its server stopped?)")
                emit("error", f"audio stopped: {lost[0]}" + (f"; the take is saved: {saved}" if saved else "")
                     + ("; waiting for the server to come back" if audio.hostapi.startswith("JACK")
                        else "; choose Devices → Apply to start the sound again"))
                return

    warned = []

    def status() -> dict:
        while chain.errors:  # a hosted plugin dropped while playing
            emit("error", chain.errors.pop(0))
        clipping = None if warned else chain.clipping()
        if clipping:
            warned.append(clipping)
            emit("error", f"warning: {clipping}")
        st = engine.status()
        st["audio_lost"] = lost[0] if lost else None
        st["hostapi"] = audio.hostapi if audio else None
        st["failed_blocks"] = audio.failed_blocks if audio else 0
        st["bad_midi"] += midi.dropped if midi else 0
        st["z"] = engine.z.tolist()
        st["keys_held"] = engine.voices.keys_held()
        st["pending_events"] = list(engine.voices.events)
        st["audio"] = audio.device_name if audio and not lost else None
        st["latency_ms"] = (audio.latency_ms + audio.fx_latency_ms) if audio and audio.latency_ms is not None else None
        st["underruns"] = audio.underruns if audio else 0
        st["late_blocks"] = audio.late_blocks if audio else 0
        st["callback_p99_us"] = audio.callback_us()[1] if audio else 0.0
        st["midi"] = midi.port_name if midi else None
        st["recording_s"] = audio.recorder.seconds if audio and audio.recorder else None
        st["recording_error"] = audio.recorder.error if audio and audio.recorder else None
        return st

    def chain_view() -> list[dict]:
        return [{"kind": fx.kind, "name": fx.name, "uid": fx.uid, "bypass": fx.bypass,
                 "params": {k: list(v) for k, v in fx.parameters().items()}} for fx in chain.effects]

    def record_start(path: str, overwrite: bool) -> str:
        if audio is None or lost:
            raise ValueError("nothing to record: the audio output is not running")
        with recording:
            audio.recorder = Recorder(path, rate, audio.channels, overwrite=overwrite)
            return str(audio.recorder.path)

    def record_stop() -> str | None:
        with recording:
            if audio is None or audio.recorder is None:
                return None
            rec, audio.recorder = audio.recorder, None
            path = rec.close()
            return str(path) if path else None

    def add_builtin(kind: str, params: dict) -> None:
        chain.add(builtin(kind, **params))

    def add_plugin(path: str) -> None:
        chain.add(load_plugin(path))

    def set_gain(gain: float) -> None:
        gain = float(gain)
        if not 0.0 <= gain <= MAX_GAIN:  # NaN too
            raise ValueError(f"master gain {gain} is outside 0-{MAX_GAIN:g}; kept {engine.voices.gain:g}")
        engine.voices.gain = gain

    one_way = {"send": lambda message: engine.send(*message), "gain": set_gain,
               "timbre": lambda z: engine.set_timbre(np.asarray(z, np.float32))}
    calls = {
        "status": status, "chain": chain_view, "chain_save": chain.to_list,
        "add_builtin": add_builtin, "add_plugin": add_plugin,
        "remove": chain.remove, "move": chain.move, "set_bypass": chain.set_bypass, "set": chain.set,
        "record_start": record_start, "record_stop": record_stop,
    }
    watcher = threading.Thread(target=watch, name="audio-watch", daemon=True)
    if audio is not None:
        watcher.start()
    try:
        while True:
            msg = commands.recv()
            kind = msg[0]
            if kind in one_way:
                try:
                    one_way[kind](*msg[1:])
                except (ValueError, TypeError) as e:  # a bad value from the front end: said, and nothing changes
                    emit("error", str(e))
            elif kind == "close":
                break
            else:
                try:
                    commands.send(("ok", calls[kind](*msg[1:])))
                except KeyError:
                    commands.send(("error", f"the sound process has no command '{kind}'"))
                except (OSError, ValueError, IndexError, TypeError) as e:
                    commands.send(("error", str(e)))
    except EOFError:  # the front end went away
        pass
    finally:
        watching.set()
        record_stop()
        if audio is not None:
            audio.stop()
        if midi is not None:
            midi.close()
        engine.stop()
        chain.close()
        if audio is not None and audio.abandoned:
            os._exit(0)  # PortAudio would hang or abort tearing down a stream its host API lost
        skip_portaudio_teardown_if_jack_is_gone()


class SoundProcess:
    """The front end's handle on the sound process. Every method returns in well under a millisecond."""

    def __init__(self, model: str, rate: int = 48000, block: int = 128, presets: list | None = None,
                 z: np.ndarray | None = None, gain: float = 0.5, effects: list[dict] | None = None,
                 audio: bool = True, midi: bool = True, audio_out: str | None = None, host_api: str | None = None,
                 midi_in: str | None = None, midi_api: str | None = None, provider: str | None = None) -> None:
        ctx = mp.get_context("spawn")
        self._commands, child_commands = ctx.Pipe()
        self._events, child_events = ctx.Pipe(duplex=False)
        config = {"model": str(model), "rate": rate, "block": block, "gain": gain, "effects": effects or [],
                  "presets": [(p.name, np.asarray(p.z).tolist()) for p in presets or []],
                  "z": None if z is None else np.asarray(z).tolist(), "audio": audio, "midi": midi,
                  "audio_out": audio_out, "host_api": host_api, "midi_in": midi_in, "midi_api": midi_api,
                  "provider": provider}
        # Not a daemon: it starts the note renderer's worker process itself. It ends when the pipe closes.
        self.process = ctx.Process(target=_serve, args=(child_commands, child_events, config), name="gansynth-sound")
        self.process.start()
        self._lock = threading.Lock()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._commands.poll(0.05):
            if not self.process.is_alive():
                raise SoundProcessError(f"the sound process stopped while starting (exit code {self.process.exitcode})")
            if time.monotonic() > deadline:
                self.process.kill()
                raise SoundProcessError(f"the sound process did not start in {STARTUP_SECONDS:.0f} s")
        kind, info = self._commands.recv()
        if kind == "error":
            self.process.join(timeout=5)
            raise SoundProcessError(info)
        self.audio_error, self.midi_error, self.chain_error = info["audio_error"], info["midi_error"], info["chain_error"]

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def _post(self, message: tuple) -> None:
        """One-way message; if the process has died it is dropped (the next `call` reports the death)."""
        with self._lock:
            try:
                self._commands.send(message)
            except OSError:  # BrokenPipeError: the sound process is gone
                pass

    def send(self, status: int, d1: int = 0, d2: int = 0) -> None:
        self._post(("send", (status, d1, d2)))

    def set_timbre(self, z: np.ndarray) -> None:
        self._post(("timbre", np.asarray(z, np.float32)))

    def set_gain(self, gain: float) -> None:
        self._post(("gain", gain))

    def call(self, name: str, *args: Any, timeout: float = 30.0) -> Any:
        """Ask the sound process and wait for its answer; its errors come back as exceptions."""
        with self._lock:
            if not self.process.is_alive():
                raise SoundProcessError(f"the sound process has stopped (exit code {self.process.exitcode})")
            try:
                self._commands.send((name, *args))
                if not self._commands.poll(timeout):
                    raise SoundProcessError(f"the sound process did not answer '{name}' in {timeout:.0f} s")
                kind, value = self._commands.recv()
            except (OSError, EOFError):
                raise SoundProcessError("the sound process has stopped") from None
        if kind == "error":
            raise EffectError(value) if name in ("add_builtin", "add_plugin", "remove", "move", "set_bypass",
                                                 "set") else SoundProcessError(value)
        return value

    def events(self) -> list[tuple]:
        """Controller moves and MIDI errors that arrived since the last call (never waits)."""
        out = []
        try:
            while self._events.poll():
                out.append(self._events.recv())
        except (OSError, EOFError):  # the process is gone; `call` will say so
            pass
        return out

    def close(self) -> None:
        if self.process.is_alive():
            with self._lock:
                try:
                    self._commands.send(("close",))
                except (BrokenPipeError, OSError):
                    pass
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


class EffectView:
    """What the front end knows of one effect in the sound process."""

    def __init__(self, d: dict) -> None:
        self.kind, self.name, self.uid, self.bypass = d["kind"], d["name"], d["uid"], d["bypass"]
        self.params = {k: tuple(v) for k, v in d["params"].items()}

    def parameters(self) -> dict[str, tuple[float, float, float]]:
        return dict(self.params)


class RemoteChain:
    """The effects chain of the sound process, with EffectsChain's editing methods."""

    def __init__(self, sound: SoundProcess) -> None:
        self.sound = sound
        self.effects: list[EffectView] = []
        self.refresh()

    def refresh(self) -> None:
        self.effects = [EffectView(d) for d in self.sound.call("chain")]

    def __len__(self) -> int:
        return len(self.effects)

    def _do(self, name: str, *args: Any) -> None:
        self.sound.call(name, *args)
        self.refresh()

    def add_builtin(self, kind: str, **params: float) -> None:
        self._do("add_builtin", kind, params)

    def add_plugin(self, path: str) -> None:
        self._do("add_plugin", path)

    def remove(self, index: int) -> None:
        self._do("remove", index)

    def move(self, index: int, to: int) -> None:
        self._do("move", index, to)

    def set_bypass(self, index: int, bypass: bool) -> None:
        self._do("set_bypass", index, bypass)

    def set(self, index: int, parameter: str, value: float) -> None:
        self.sound.call("set", index, parameter, value)
        fx = self.effects[index]
        _, lo, hi = fx.params[parameter]
        fx.params[parameter] = (float(value), lo, hi)

    def find(self, uid: str) -> int | None:
        return next((i for i, fx in enumerate(self.effects) if fx.uid == uid), None)

    def to_list(self) -> list[dict]:
        return self.sound.call("chain_save")
