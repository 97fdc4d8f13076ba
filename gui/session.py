"""The window's state between runs (corner presets, pad position, effects, devices, MIDI mappings), saved
atomically as JSON; a corrupt file is set aside with a timestamp and reported, never fatal."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


def config_dir() -> Path:
    """~/.config/gansynth-live, or $GANSYNTH_LIVE_CONFIG."""
    base = os.environ.get("GANSYNTH_LIVE_CONFIG") or Path(os.environ.get("XDG_CONFIG_HOME") or
                                                          Path.home() / ".config") / "gansynth-live"
    return Path(base)


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


def save_session(session: Session, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(asdict(session), indent=2) + "\n")
    os.replace(tmp, path)


def load_session(path: Path) -> tuple[Session, str | None]:
    """(session, problem): a missing file is a fresh session; an unreadable one is renamed aside and described."""
    if not path.exists():
        return Session(), None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = Session.__dataclass_fields__
        session = Session(**{k: v for k, v in data.items() if k in known})
        if len(session.position) != 2 or not all(isinstance(v, (int, float)) for v in session.position):
            raise ValueError("bad pad position")
        return session, None
    except (OSError, ValueError, TypeError) as e:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        return Session(), f"the saved session {path} could not be read ({e}); it was moved to {aside.name}"
