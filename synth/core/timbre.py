"""Timbre latents: spherical interpolation, the four-corner morph of the XY pad, and named presets on disk."""
from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synth.core.files import write_atomic


def _shipped_presets() -> Path:
    """The presets that come with the program: synth/presets in an installed wheel or the bundle (setuptools maps
    the repository's presets/ there), else presets/ of the source tree this file is in."""
    installed = Path(__file__).resolve().parents[1] / "presets"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "presets"


PRESETS_DIR = _shipped_presets()
MAX_NAME = 100  # characters in a preset's name
SLUG_BYTES = 120  # bytes of its file name (file systems allow 255)


class PresetError(ValueError):
    """A preset file that cannot be used, with the reason in words."""


class PresetExists(PresetError):
    """Saving would replace a preset of the same name (the caller may ask and save again with overwrite)."""


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from a (t=0) to b (t=1); falls back to linear when the two are (anti)parallel."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return ((1 - t) * a + t * b).astype(np.float32)
    cos = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    omega = math.acos(cos)
    if math.sin(omega) < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    s = math.sin(omega)
    return (math.sin((1 - t) * omega) / s * a + math.sin(t * omega) / s * b).astype(np.float32)


def default_timbre(z_dim: int) -> np.ndarray:
    """The timbre played when no preset exists: a fixed draw from the model's prior."""
    return np.random.default_rng(0).standard_normal(z_dim).astype(np.float32)


def morph(corners: list[np.ndarray] | np.ndarray, x: float, y: float) -> np.ndarray:
    """NSynth-Super-style XY morph: slerp along the top and bottom edges by x, then between them by y.

    At a corner it returns that corner's latent exactly; along an edge it is the slerp of the edge's two ends.
    """
    tl, tr, bl, br = (np.asarray(c, dtype=np.float32) for c in corners)
    x, y = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
    return slerp(slerp(tl, tr, x), slerp(bl, br, x), y)


@dataclass
class Preset:
    """A named timbre: the latent z, plus an optional GM family and description."""

    name: str
    z: np.ndarray
    family: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        body = {"name": self.name, "z": [round(float(v), 6) for v in self.z]}
        if self.family:
            body["family"] = self.family
        if self.description:
            body["description"] = self.description
        return json.dumps(body | self.extra, indent=1, ensure_ascii=False)


def check_latent(z: object, z_dim: int, where: str) -> np.ndarray:
    """The latent as float32 [z_dim], or PresetError saying what is wrong with it."""
    try:
        arr = np.asarray(z, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise PresetError(f"{where}: 'z' must be a list of numbers") from None
    if arr.ndim != 1:
        raise PresetError(f"{where}: 'z' must be a flat list of numbers")
    if len(arr) != z_dim:
        raise PresetError(f"{where}: latent has {len(arr)} numbers but the model needs {z_dim}")
    z = arr.astype(np.float32)
    if not np.isfinite(z).all():  # after the cast: 1e300 is finite as a double, infinite as a float32
        raise PresetError(f"{where}: latent contains NaN or infinite values")
    return z


def check_name(name: object, where: str) -> str:
    """A preset name as typed: text of 1 to MAX_NAME characters, not only spaces, no control characters."""
    if not isinstance(name, str) or not name.strip():
        raise PresetError(f"{where}: a preset needs a name")
    if len(name) > MAX_NAME:
        raise PresetError(f"{where}: a preset name can have at most {MAX_NAME} characters, this one has {len(name)}")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise PresetError(f"{where}: a preset name cannot hold control characters (tabs, new lines)")
    return name


def load_preset(path: str | os.PathLike, z_dim: int) -> Preset:
    """Read one preset file and check its name, latent (against the model's z size) and texts."""
    path = Path(path)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"preset {path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise PresetError(f"preset {path} is not readable JSON ({e})") from None
    if not isinstance(body, dict) or "name" not in body or "z" not in body:
        raise PresetError(f"preset {path} needs a 'name' and a 'z'")
    name = check_name(body["name"], f"preset {path}")
    z = check_latent(body["z"], z_dim, f"preset {path}")
    texts = {}
    for key in ("family", "description"):
        value = body.get(key, "")
        if not isinstance(value, str) or len(value) > 10_000:
            raise PresetError(f"preset {path}: '{key}' must be text")
        texts[key] = value
    extra = {k: v for k, v in body.items() if k not in ("name", "z", "family", "description")}
    return Preset(name, z, texts["family"], texts["description"], extra)


def scan_presets(z_dim: int, directory: str | os.PathLike = PRESETS_DIR) -> tuple[list[Preset], list[str]]:
    """The presets of a directory that load, sorted by file name (the order program changes select them in),
    and a line for each file that does not: one bad file never hides the others."""
    directory = Path(directory)
    if not directory.is_dir():
        return [], []
    found, problems = [], []
    for p in sorted(directory.glob("*.json")):
        try:
            found.append(load_preset(p, z_dim))
        except PresetError as e:
            problems.append(str(e))
    return found, problems


def load_presets(z_dim: int, directory: str | os.PathLike = PRESETS_DIR) -> list[Preset]:
    """All presets of a directory, sorted by file name; PresetError for the first file that does not load."""
    found, problems = scan_presets(z_dim, directory)
    if problems:
        raise PresetError(problems[0])
    return found


def preset_filename(name: str, number: int = 1) -> str:
    """The file a preset is saved in: its name in lower case with runs of anything but letters and digits (of
    any script) made one '-', at most SLUG_BYTES bytes; `number` > 1 tells apart names that give one slug."""
    slug = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFC", name).casefold()).strip("-") or "preset"
    while len(slug.encode("utf-8")) > SLUG_BYTES:
        slug = slug[:-1]
    slug = slug.rstrip("-")
    return f"{slug}.json" if number == 1 else f"{slug}-{number}.json"


def preset_path(name: str, directory: str | os.PathLike = PRESETS_DIR) -> tuple[Path, bool]:
    """(the file for a preset of this name, whether a preset of this very name is already there): the first
    numbered file that is free or holds this name, so names that give one slug never replace each other."""
    directory = Path(directory)
    for number in range(1, 1000):
        path = directory / preset_filename(name, number)
        if not path.exists():
            return path, False
        try:
            held = json.loads(path.read_text(encoding="utf-8")).get("name")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            held = None  # unreadable: never replaced by a preset of another name
        if isinstance(held, str) and held.casefold() == name.casefold():
            return path, True
    raise PresetError(f"too many presets are named like '{name}'")


def save_preset(preset: Preset, directory: str | os.PathLike = PRESETS_DIR, overwrite: bool = False) -> Path:
    """Write a preset atomically; refuses to replace a preset of the same name unless overwrite is set."""
    check_name(preset.name, "cannot save the preset")
    check_latent(preset.z, len(preset.z), f"preset '{preset.name}'")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path, taken = preset_path(preset.name, directory)
    if taken and not overwrite:
        raise PresetExists(f"preset {path} already exists; choose another name")
    return write_atomic(path, preset.to_json() + "\n")


def named_preset(presets: list[Preset], name: str) -> Preset:
    """The preset of this name (any case), or a one-line error naming those there are."""
    found = [p for p in presets if p.name.lower() == name.lower()]
    if not found:
        raise PresetError(f"no preset named '{name}' (have: {', '.join(p.name for p in presets) or 'none'})")
    return found[0]
