"""The window's live rig (synth.engine.rig) in a process of its own, and the window's handle on it.

A window's thread runs long Python work (painting, layout, event handling) while holding the GIL; if the OS
preempts it there, an audio callback in the same process waits for the GIL and is late. Here the audio
process holds only short, real-time-priority threads (synth.engine.realtime): its command loop, the watcher, the
bank bookkeeping, the effects producer, the recorder and MIDI input.

Two pipes. Commands, front end → sound: one-way posts (notes, timbre, gain) and calls ("call", id, name, args)
answered by ("reply", id, ok, value); a reply whose id is not the call's (a call that gave up waiting, then a late
answer) is dropped, never taken as another call's answer. Events, sound → front end, never waited for: the
RigStatus ten times a second, controller moves and errors.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np

from synth.engine.effects import EffectError
from synth.engine.rig import RigConfig, RigStatus

STARTUP_SECONDS = 120.0
WATCH_SECONDS = 0.1  # how often the sound process sends its status and looks for problems and a lost server
EFFECT_CALLS = ("add_builtin", "add_plugin", "remove", "move", "set_bypass", "set")  # their errors: EffectError


class SoundProcessError(ValueError):
    """The sound process could not start or answer, with its reason."""


def _serve(commands, events, config: RigConfig) -> None:  # pragma: no cover - runs in the child (end to end)
    """The child: open the rig in a thread of its own and answer the front end as soon as the devices are open
    (the first bank renders meanwhile and the audio starts after it); close the rig when told or orphaned."""
    from synth.engine.audio import skip_portaudio_teardown_if_jack_is_gone
    from synth.engine.realtime import promote_thread
    from synth.engine.rig import LiveRig

    lock = threading.Lock()

    def emit(*event: Any) -> None:
        with lock:
            events.send(event)

    def on_midi(status: int, d1: int, d2: int) -> None:
        if status & 0xF0 == 0xB0:
            emit("cc", status & 0x0F, d1, d2)

    rig = LiveRig(config, on_midi=on_midi, report=lambda text: emit("error", text))
    watching, answered = threading.Event(), threading.Event()
    announced: list[bool] = []

    def announce() -> None:  # the devices are open (or said not to be): the front end may go on
        commands.send(("ready", {"audio_error": rig.audio_error, "midi_error": rig.midi_error,
                                 "chain_error": rig.chain_error}))
        announced.append(True)
        threading.Thread(target=_watch, args=(rig, emit, watching), name="sound-watch", daemon=True).start()
        answered.set()

    def opener() -> None:
        try:
            rig.open(announce)
        except Exception as e:  # noqa: BLE001 - every failure is said, in the window's words
            if announced:
                emit("error", f"the sound could not start: {e}")
            else:
                commands.send(("error", str(e)))
        finally:
            answered.set()

    opening = threading.Thread(target=opener, name="rig-open", daemon=True)
    opening.start()
    answered.wait()
    if not announced:
        return
    promote_thread()
    try:
        _answer(rig, commands, emit)
    finally:
        watching.set()
        rig.close()
        opening.join(timeout=5)
        if rig.audio is not None and rig.audio.abandoned:
            os._exit(0)  # PortAudio would hang or abort tearing down a stream its host API lost
        skip_portaudio_teardown_if_jack_is_gone()


def _watch(rig, emit, stop: threading.Event) -> None:  # pragma: no cover - runs in the child
    """Off the audio thread, ten times a second: the status, problems, and a lost audio server (then the take is
    finished at once and said)."""
    from synth.engine.realtime import promote_thread

    promote_thread()
    while not stop.wait(WATCH_SECONDS):
        for line in rig.problems():
            emit("error", line)
        if rig.check_server():
            saved = rig.record_stop()
            emit("error", f"audio stopped: {rig.lost}" + (f"; the take is saved: {saved}" if saved else "")
                 + ("; waiting for the server to come back" if rig.audio.hostapi.startswith("JACK")
                    else "; choose Devices → Apply to start the sound again"))
        emit("status", rig.status())


def _answer(rig, commands, emit) -> None:  # pragma: no cover - runs in the child
    """The command loop: posts change the sound (a bad value is said as an error event and changes nothing);
    calls are answered with their id. Returns on "close" or when the front end goes away."""
    from synth.engine.effects import builtin, load_plugin

    chain = rig.chain

    def add_builtin(kind: str, params: dict) -> None:
        chain.add(builtin(kind, **params))

    def add_plugin(path: str) -> None:
        chain.add(load_plugin(path))

    posts = {"send": lambda message: rig.engine.send(*message), "gain": rig.set_gain,
             "timbre": lambda z: rig.engine.set_timbre(np.asarray(z, np.float32))}
    calls = {
        "status": rig.status, "chain": lambda: _chain_view(chain), "chain_save": chain.to_list,
        "add_builtin": add_builtin, "add_plugin": add_plugin,
        "remove": chain.remove, "move": chain.move, "set_bypass": chain.set_bypass, "set": chain.set,
        "record_start": rig.record_start, "record_stop": lambda: _path_text(rig.record_stop()),
        "mod_target": lambda name: rig._engine().set_mod_target(name),
    }
    try:
        while True:
            msg = commands.recv()
            if msg[0] == "close":
                return
            if msg[0] == "post":
                try:
                    posts[msg[1]](*msg[2])
                except (KeyError, ValueError, TypeError) as e:  # a bad value from the front end: said, nothing changes
                    emit("error", str(e))
                continue
            _, call_id, name, args = msg
            try:
                commands.send(("reply", call_id, True, calls[name](*args)))
            except KeyError:
                commands.send(("reply", call_id, False, f"the sound process has no command '{name}'"))
            except (OSError, ValueError, IndexError, TypeError) as e:
                commands.send(("reply", call_id, False, str(e)))
    except EOFError:  # the front end went away
        return


def _chain_view(chain) -> list[dict]:
    return [{"kind": fx.kind, "name": fx.name, "uid": fx.uid, "bypass": fx.bypass,
             "params": {k: list(v) for k, v in fx.parameters().items()}} for fx in chain.effects]


def _path_text(path) -> str | None:
    return str(path) if path else None


class SoundProcess:
    """The front end's handle on the sound process. Every method but `call` returns in well under a millisecond;
    `status()` and `events()` only read what the sound process has pushed."""

    def __init__(self, config: RigConfig) -> None:
        # The window edits its chain, so there is always one; a device that does not open is said in the window
        # and the rest plays.
        config = replace(config, effects=config.effects if config.effects is not None else [], strict=False)
        ctx = mp.get_context("spawn")
        self._commands, child_commands = ctx.Pipe()
        self._events, child_events = ctx.Pipe(duplex=False)
        # Not a daemon: it starts the note renderer's worker process itself. It ends when the pipe closes.
        self.process = ctx.Process(target=_serve, args=(child_commands, child_events, config), name="gansynth-sound")
        self.process.start()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._status: RigStatus | None = None
        self._pending: list[tuple] = []
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
        self.audio_error, self.midi_error = info["audio_error"], info["midi_error"]
        self.chain_error = info["chain_error"]

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def _post(self, name: str, *args: Any) -> None:
        """One-way message; if the process has died it is dropped (the next `call` reports the death)."""
        with self._lock:
            try:
                self._commands.send(("post", name, args))
            except OSError:  # BrokenPipeError: the sound process is gone
                pass

    def send(self, status: int, d1: int = 0, d2: int = 0) -> None:
        self._post("send", (status, d1, d2))

    def set_timbre(self, z: np.ndarray) -> None:
        self._post("timbre", np.asarray(z, np.float32))

    def set_gain(self, gain: float) -> None:
        self._post("gain", gain)

    def call(self, name: str, *args: Any, timeout: float = 30.0) -> Any:
        """Ask the sound process and wait for this call's answer (answers to earlier calls that gave up are
        dropped); its errors come back as exceptions."""
        with self._lock:
            if not self.process.is_alive():
                raise SoundProcessError(f"the sound process has stopped (exit code {self.process.exitcode})")
            call_id = next(self._ids)
            deadline = time.monotonic() + timeout
            try:
                self._commands.send(("call", call_id, name, args))
                while True:
                    if not self._commands.poll(max(deadline - time.monotonic(), 0.0)):
                        raise SoundProcessError(f"the sound process did not answer '{name}' in {timeout:g} s")
                    _, reply_id, ok, value = self._commands.recv()
                    if reply_id == call_id:
                        break
            except (OSError, EOFError):
                raise SoundProcessError("the sound process has stopped") from None
        if not ok:
            raise EffectError(value) if name in EFFECT_CALLS else SoundProcessError(value)
        return value

    def _drain(self) -> None:
        try:
            while self._events.poll():
                event = self._events.recv()
                if event[0] == "status":
                    self._status = event[1]
                else:
                    self._pending.append(event)
        except (OSError, EOFError):  # the process is gone; `call` will say so
            pass

    def events(self) -> list[tuple]:
        """Controller moves ("cc", channel, controller, value) and errors ("error", text) since the last call."""
        self._drain()
        out, self._pending = self._pending, []
        return out

    def status(self) -> RigStatus | None:
        """The newest status the sound process pushed (None before the first); never waits."""
        self._drain()
        return self._status

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
