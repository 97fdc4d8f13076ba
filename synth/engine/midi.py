"""MIDI input with python-rtmidi: a hardware port by name or number, or our own virtual port for a DAW.

rtmidi delivers messages on its own thread; they are checked byte by byte (synth.engine.midi_bytes) and only
well-formed channel voice messages go to the engine as (status, data1, data2); an event holding anything else
is dropped whole and counted. A hardware port that disappears is reported and re-opened when it comes back, while
the audio keeps running.
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable

from synth.engine.midi_bytes import parse
from synth.engine.realtime import promote_thread

PORT_NAME = "GANSynth Live"
APIS = {"jack": "API_UNIX_JACK", "alsa": "API_LINUX_ALSA", "coremidi": "API_MACOSX_CORE",
        "winmm": "API_WINDOWS_MM"}


class MidiPortError(ValueError):
    """A MIDI port or API that cannot be opened, with what exists."""


def _api(name: str | None) -> int:
    import rtmidi

    if name is None:
        return default_api()
    key = APIS.get(name.lower())
    if key is None or getattr(rtmidi, key) not in rtmidi.get_compiled_api():
        have = ", ".join(rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api())
        raise MidiPortError(f"MIDI API '{name}' is not available here; available: {have}")
    return getattr(rtmidi, key)


def default_api() -> int:
    """JACK when a JACK server runs (DESIGN: pass the API explicitly), else the platform's own."""
    import rtmidi

    compiled = rtmidi.get_compiled_api()
    if rtmidi.API_UNIX_JACK in compiled and jack_running() and _rtmidi_reaches_jack():
        return rtmidi.API_UNIX_JACK
    for api in (rtmidi.API_LINUX_ALSA, rtmidi.API_MACOSX_CORE, rtmidi.API_WINDOWS_MM):
        if api in compiled:
            return api
    return compiled[0]


def jack_running() -> bool:
    try:
        import jack

        jack.set_error_function(lambda message: None)
        jack.Client("gansynth-probe", no_start_server=True).close()
        return True
    except Exception:  # no server (jack.JackOpenError) or no libjack at all (OSError)
        return False


def _rtmidi_reaches_jack() -> bool:
    """python-rtmidi's wheel carries its own JACK 2 client library, which cannot reach PipeWire's JACK server
    (a desktop where libjack is PipeWire's); there the platform's MIDI (ALSA, which PipeWire bridges) is used."""
    import rtmidi

    try:
        rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="gansynth-probe").delete()
        return True
    except rtmidi.SystemError:
        return False


def list_ports(api: str | None = None) -> list[str]:
    import rtmidi

    try:
        m = rtmidi.MidiIn(rtapi=_api(api))
    except rtmidi.SystemError as e:
        raise MidiPortError(f"cannot open the MIDI system ({e})") from None
    try:
        return m.get_ports()
    finally:
        m.delete()


class MidiInput:
    """Feeds `on_message(status, d1, d2)` from a port; `port` is a name fragment or number, or None for virtual."""

    def __init__(self, on_message: Callable[[int, int, int], None], port: str | int | None = None,
                 api: str | None = None, name: str = PORT_NAME, report: Callable[[str], None] | None = None) -> None:
        self.on_message = on_message
        self.api = _api(api)
        self.spec = port
        self.name = name
        self.report = report or (lambda text: print(text, file=sys.stderr))
        self.port_name: str | None = None
        self.messages = 0
        self.dropped = 0  # malformed or non-channel messages the port delivered (synth.engine.midi_bytes)
        self._promoted = 0
        self._midi: Any = None  # an rtmidi.MidiIn while open (python-rtmidi ships no type hints)
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None
        if port is None and sys.platform == "win32":
            raise MidiPortError("Windows has no virtual MIDI ports: install loopMIDI, create a port, and open it "
                                "with --midi-in NAME")
        self._open()

    def _new_midi(self) -> Any:
        import rtmidi

        try:
            m = rtmidi.MidiIn(rtapi=self.api, name=self.name)
        except rtmidi.SystemError as e:
            raise MidiPortError(f"cannot open the MIDI system ({e})") from None
        m.ignore_types(sysex=True, timing=True, active_sense=True)
        m.set_callback(self._callback)
        return m

    def _find(self, ports: list[str]) -> int | None:
        if isinstance(self.spec, int) or str(self.spec).isdigit():
            assert self.spec is not None  # str(None) is not digits
            i = int(self.spec)
            return i if 0 <= i < len(ports) else None
        matches = [i for i, p in enumerate(ports) if str(self.spec).lower() in p.lower()]
        return matches[0] if matches else None

    def _open(self) -> None:
        m = self._new_midi()
        if self.spec is None:
            m.open_virtual_port(PORT_NAME)
            self.port_name = f"{PORT_NAME} (virtual)"
        else:
            ports = m.get_ports()
            i = self._find(ports)
            if i is None:
                m.delete()
                raise MidiPortError(f"no MIDI input port matches '{self.spec}'; ports: {', '.join(ports) or 'none'}")
            m.open_port(i, PORT_NAME)
            self.port_name = ports[i]
        self._midi = m
        if self.spec is not None:
            self._watch = threading.Thread(target=self._watchdog, name="midi-watch", daemon=True)
            self._watch.start()

    def _callback(self, event: tuple[list[int], float], data: object = None) -> None:
        if self._promoted != threading.get_ident():  # rtmidi's own thread: see synth.engine.realtime
            promote_thread()
            self._promoted = threading.get_ident()
        messages, dropped = parse(event[0])
        if dropped:  # rtmidi hands over one event at a time: one bad byte makes the whole event suspect
            self.dropped += 1
            return
        for status, d1, d2 in messages:
            self.messages += 1
            self.on_message(status, d1, d2)

    def _watchdog(self) -> None:
        """Poll the port list each second: report a vanished port, re-open it when it returns.

        Lists through the open rtmidi object, and builds a fresh one only when that fails: rtmidi keeps the GIL in
        its calls, and opening or closing a JACK client waits for a server cycle, which a synchronous server (jack1,
        jackd -S) runs only after our audio callback, itself waiting for the GIL (a probe client each second
        stalled the audio, and the watchdog, until the server's timeout)."""
        lost = False
        promote_thread()
        while not self._stop.wait(1.0):
            probe = None
            try:
                ports = self._midi.get_ports()
            except Exception:  # the open object cannot list: ask a fresh one
                try:
                    probe = self._new_midi()
                    ports = probe.get_ports()
                except Exception:  # the MIDI system itself went away (e.g. the JACK server stopped)
                    ports = []
            present = self.port_name in ports
            if not lost and not present:
                lost = True
                self.report(f"MIDI port '{self.port_name}' disappeared; waiting for it to come back")
                self._midi.close_port()
            elif lost and present:
                if probe is not None:
                    self._midi.delete()
                    self._midi, probe = probe, None
                self._midi.set_callback(self._callback)  # python-rtmidi's close_port dropped it
                self._midi.open_port(ports.index(self.port_name), PORT_NAME)
                lost = False
                self.report(f"MIDI port '{self.port_name}' is back")
            if probe is not None:
                probe.delete()

    def close(self) -> None:
        self._stop.set()
        if self._watch:
            self._watch.join(timeout=3)
        if self._midi is not None:
            self._midi.close_port()
            self._midi.delete()
            self._midi = None
