"""Routes into a DAW: our JACK client's stable name and `--connect`, and the virtual audio devices a DAW records
from (JACK, PulseAudio/PipeWire null sinks, BlackHole, Loopback, VB-CABLE)."""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import time
from typing import Any

JACK_CLIENT = "GANSynth Live Audio"
# name fragment → what it is; matched case-insensitively against PortAudio device names
VIRTUAL_NAMES = {"blackhole": "BlackHole", "loopback": "Loopback", "cable": "VB-CABLE", "soundflower": "Soundflower",
                 "null": "null sink", "pulse": "PulseAudio/PipeWire", "pipewire": "PipeWire"}
_name_buffer = None  # PortAudio keeps the pointer, so the name must outlive the call


class RoutingError(ValueError):
    """A JACK port or sound-server sink that is not there, with what is."""


def name_jack_client(name: str = JACK_CLIENT) -> None:
    """Make PortAudio's JACK client appear as `name` (re-initialises PortAudio; call before opening a stream).
    Without this its ports carry the interpreter's name, which changes from machine to machine."""
    global _name_buffer
    import sounddevice as sd

    if not any(a["name"].startswith("JACK") for a in sd.query_hostapis()):
        return
    set_name = getattr(ctypes.CDLL(sd._libname), "PaJack_SetClientName", None)
    if set_name is None:
        return
    _name_buffer = ctypes.create_string_buffer(name.encode())
    set_name(_name_buffer)
    sd._terminate()
    sd._initialize()


class XrunWatch:
    """Counts the JACK server's xruns (it reports them to every client) and when they happened, so a benchmark
    can tell its own underruns from the machine's stalls."""

    def __init__(self, name: str = "xrun-watch") -> None:
        import jack

        self.times: list[float] = []  # time.monotonic() of each xrun
        self._client = jack.Client(name, no_start_server=True)
        self._client.set_xrun_callback(lambda delay: self.times.append(time.monotonic()))
        self._client.activate()

    @property
    def count(self) -> int:
        return len(self.times)

    def close(self) -> None:
        self._client.deactivate()
        self._client.close()


def virtual_kind(name: str, hostapi: str) -> str | None:
    """What virtual route an output device is, or None for a plain sound card."""
    if hostapi.startswith("JACK"):
        return "JACK"
    low = name.lower()
    return next((kind for key, kind in VIRTUAL_NAMES.items() if key in low), None)


def pulse_sinks() -> list[dict]:
    """PulseAudio/PipeWire sinks (name, driver, null) from `pactl`, or [] without a sound server."""
    if shutil.which("pactl") is None:
        return []
    try:
        r = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return []
    sinks = []
    for line in r.stdout.splitlines() if r.returncode == 0 else []:
        fields = line.split("\t")
        if len(fields) >= 3:
            sinks.append({"name": fields[1], "driver": fields[2], "null": "null" in fields[2]})
    return sinks


def use_pulse_sink(spec: str) -> str | None:
    """If `spec` names a sound-server sink, send PortAudio's 'pulse' device there (PULSE_SINK) and return the sink."""
    sinks = [s["name"] for s in pulse_sinks()]
    match = [s for s in sinks if s == spec] or [s for s in sinks if spec.lower() in s.lower()]
    if len(match) != 1:
        return None
    os.environ["PULSE_SINK"] = match[0]
    return match[0]


def connect_outputs(targets: str, client_name: str = JACK_CLIENT) -> list[tuple[str, str]]:
    """Wire our JACK outputs to the input ports that `targets` names (comma-separated full names or fragments, e.g.
    "Ardour:audio_in" or "recorder"): out_0 to the first, out_1 to the second, ...; other connections are dropped."""
    import jack

    client = jack.Client("GANSynth Live router", no_start_server=True)
    try:
        ours = client.get_ports(f"^{re.escape(client_name)}:", is_audio=True, is_output=True)
        if not ours:
            raise RoutingError(f"no JACK output ports of '{client_name}' (is the audio going through JACK?)")
        inputs = client.get_ports(is_audio=True, is_input=True)
        wanted: list[Any] = []  # jack.Port
        for spec in filter(None, (s.strip() for s in targets.split(","))):
            found = [p for p in inputs if p.name == spec] or [p for p in inputs if spec.lower() in p.name.lower()]
            if not found:
                have = ", ".join(p.name for p in inputs) or "none"
                raise RoutingError(f"no JACK input port matches '{spec}'; inputs: {have}")
            wanted += [p for p in found if p.name not in {w.name for w in wanted}]
        for port in ours:
            for other in client.get_all_connections(port):
                client.disconnect(port, other)
        pairs = [(ours[i % len(ours)], w) for i, w in enumerate(wanted)]
        for a, b in pairs:
            client.connect(a, b)
        return [(a.name, b.name) for a, b in pairs]
    finally:
        client.close()
