"""Where the user's own files live: the window's session, saved and imported presets."""
from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    """~/.config/gansynth-live, or $GANSYNTH_LIVE_CONFIG."""
    base = os.environ.get("GANSYNTH_LIVE_CONFIG") or Path(os.environ.get("XDG_CONFIG_HOME") or
                                                          Path.home() / ".config") / "gansynth-live"
    return Path(base)


def user_presets_dir() -> Path:
    """The user's presets (saved from the pad, imported from sounds), which the window lists beside the shipped."""
    return config_dir() / "presets"
