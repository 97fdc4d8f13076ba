"""The window's state between runs (corner presets, pad position, effects, devices, MIDI mappings), saved
atomically as JSON; a corrupt file is set aside with a timestamp and reported, never fatal."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synth import schema
from synth.core.files import write_atomic

MASTER_DB = (-60.0, 6.0)  # the master slider's range


@dataclass
class Session:
    corners: list[str] = field(default_factory=list)
    position: list[float] = field(default_factory=lambda: [0.5, 0.5])
    snap: bool = False
    master_db: float = 0.0
    effects: list[dict] = field(default_factory=list)
    devices: dict = field(default_factory=dict)
    mappings: dict[str, list[int]] = field(default_factory=dict)  # control → [channel, controller]
    velocity: int = 100
    model: str | None = None  # the model file chosen in the window (None: the one it was started with)


def save_session(session: Session, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(session), indent=2) + "\n")


def check_session(data: object, where: str) -> Session:
    """A Session from a file's JSON with every field checked (SchemaError names the field); positions and the
    master level are brought into range, anything else wrongly typed is refused."""
    from synth.engine.effects import check_chain

    data = schema.obj(data, where)
    s = Session()
    if "corners" in data:
        s.corners = schema.items(data["corners"], where, "corners",
                                 lambda v, f: str(schema.string(v, where, f, 200)), 4)
    if "position" in data:
        pos = schema.items(data["position"], where, "position", lambda v, f: schema.number(v, where, f, 0, 1, True))
        if len(pos) != 2:
            raise schema.fail(where, "position", "two numbers [x, y]", data["position"])
        s.position = pos
    if "snap" in data:
        s.snap = schema.boolean(data["snap"], where, "snap")
    if "master_db" in data:
        s.master_db = schema.number(data["master_db"], where, "master_db", MASTER_DB[0], MASTER_DB[1], clamp=True)
    if "effects" in data:
        s.effects = [{k: v for k, v in fx.items() if v is not None} for fx in check_chain(data["effects"], where)]
    if "devices" in data:
        d = schema.obj(data["devices"], where, "devices")
        s.devices = {k: schema.string(d[k], where, f"devices.{k}", 500, optional=True)
                     for k in ("audio_out", "host_api", "midi_in", "midi_api") if k in d}
        if "rate" in d:
            s.devices["rate"] = schema.integer(d["rate"], where, "devices.rate", 8000, 384000)
        if "block" in d:
            s.devices["block"] = schema.integer(d["block"], where, "devices.block", 16, 8192)
        s.devices |= _play_options(d, where)
    if "mappings" in data:
        m = schema.obj(data["mappings"], where, "mappings")
        for control, pair in m.items():
            field = f"mappings.{control}"
            if not isinstance(pair, list) or len(pair) != 2:
                raise schema.fail(where, field, "[channel, controller]", pair)
            s.mappings[control] = [schema.integer(pair[0], where, f"{field} channel", 0, 15),
                                   schema.integer(pair[1], where, f"{field} controller", 0, 127)]
    if "velocity" in data:
        s.velocity = schema.integer(data["velocity"], where, "velocity", 0, 127)
    if "model" in data:
        s.model = schema.string(data["model"], where, "model", 4096, optional=True)
    return s


def _play_options(d: dict, where: str) -> dict:
    """The devices' play options (latency, polyphony, release, channel, JACK connections), each checked."""
    out: dict = {}
    if "latency" in d:
        latency = d["latency"]
        out["latency"] = latency if latency in ("low", "high") else schema.number(latency, where, "devices.latency",
                                                                                  0.0, 2.0)
    if "polyphony" in d:
        out["polyphony"] = schema.integer(d["polyphony"], where, "devices.polyphony", 1, 256)
    if d.get("release") is not None:
        out["release"] = schema.number(d["release"], where, "devices.release", 0.0, 10.0)
    if d.get("channel") is not None:
        out["channel"] = schema.integer(d["channel"], where, "devices.channel", 0, 15)
    for key, longest in (("connect", 2000), ("mod_target", 200), ("drums", 4096)):
        if key in d:
            out[key] = schema.string(d[key], where, f"devices.{key}", longest, optional=True)
    return out


def load_session(path: Path) -> tuple[Session, str | None]:
    """(session, problem): a missing file is a fresh session; one that cannot be read or holds a wrongly typed
    value is renamed aside (so the next start is not refused again) and described in one line."""
    if not path.exists():
        return Session(), None
    try:
        return check_session(json.loads(path.read_text(encoding="utf-8")), str(path)), None
    except (OSError, ValueError, RecursionError) as e:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while aside.exists():
            n += 1
            aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        why = str(e).removeprefix(f"{path}: ")
        try:
            os.replace(path, aside)
        except OSError as moved:
            return Session(), f"the saved session {path} could not be read ({why}) nor moved aside ({moved})"
        return Session(), f"the saved session {path} could not be read ({why}); it was moved to {aside.name}"
