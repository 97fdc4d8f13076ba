"""`devices`: the audio outputs (virtual routes marked), PulseAudio/PipeWire sinks and MIDI inputs."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    dv = sub.add_parser("devices", help="list audio outputs and MIDI inputs")
    dv.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    import rtmidi

    from synth.engine.audio import output_devices
    from synth.engine.midi import APIS, MidiPortError, list_ports
    from synth.engine.routing import pulse_sinks

    print("Audio outputs (* = a virtual route a DAW can record from):")
    for d in output_devices():
        mark = f"  * virtual: {d['virtual']}" if d["virtual"] else ""
        print(f"  [{d['index']}] {d['name']} ({d['hostapi']}, {d['channels']} ch, {d['default_rate']:.0f} Hz, "
              f"low latency {d['low_latency_ms']} ms){mark}")
    sinks = pulse_sinks()
    if sinks:
        print("PulseAudio/PipeWire sinks (play to one with --audio-out SINK):")
        for s in sinks:
            mark = "  * virtual: null sink, record its .monitor" if s["null"] else ""
            print(f"  {s['name']} ({s['driver']}){mark}")
    print("MIDI inputs:")
    compiled = set(rtmidi.get_compiled_api())
    for name, const in APIS.items():
        if getattr(rtmidi, const) not in compiled:
            continue
        try:
            ports = list_ports(name)
        except MidiPortError as e:
            print(f"  {name}: {e}")
            continue
        for i, port in enumerate(ports):
            print(f"  {name} [{i}] {port}")
        if not ports:
            print(f"  {name}: no ports")
