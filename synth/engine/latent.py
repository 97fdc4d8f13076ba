"""Timbre latents: spherical interpolation, the four-corner morph of the XY pad, and named presets on disk."""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"


class PresetError(ValueError):
    """A preset file that cannot be used, with the reason in words."""


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
        return json.dumps(body | self.extra, indent=1)


def check_latent(z: object, z_dim: int, where: str) -> np.ndarray:
    """The latent as float32 [z_dim], or PresetError saying what is wrong with it."""
    try:
        arr = np.asarray(z, dtype=np.float64)
    except (TypeError, ValueError):
        raise PresetError(f"{where}: 'z' must be a list of numbers") from None
    if arr.ndim != 1:
        raise PresetError(f"{where}: 'z' must be a flat list of numbers")
    if len(arr) != z_dim:
        raise PresetError(f"{where}: latent has {len(arr)} numbers but the model needs {z_dim}")
    if not np.isfinite(arr).all():
        raise PresetError(f"{where}: latent contains NaN or infinite values")
    return arr.astype(np.float32)


def load_preset(path: str | os.PathLike, z_dim: int) -> Preset:
    """Read one preset file and check its latent against the model's z size."""
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise PresetError(f"preset {path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PresetError(f"preset {path} is not readable JSON ({e})") from None
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or "z" not in body:
        raise PresetError(f"preset {path} needs a 'name' and a 'z'")
    z = check_latent(body["z"], z_dim, f"preset {path}")
    extra = {k: v for k, v in body.items() if k not in ("name", "z", "family", "description")}
    return Preset(body["name"], z, str(body.get("family", "")), str(body.get("description", "")), extra)


def load_presets(z_dim: int, directory: str | os.PathLike = PRESETS_DIR) -> list[Preset]:
    """All presets of a directory, sorted by file name (the order program changes select them in)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return [load_preset(p, z_dim) for p in sorted(directory.glob("*.json"))]


def preset_filename(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{slug or 'preset'}.json"


def save_preset(preset: Preset, directory: str | os.PathLike = PRESETS_DIR, overwrite: bool = False) -> Path:
    """Write a preset atomically; refuses to replace an existing file unless overwrite is set."""
    check_latent(preset.z, len(preset.z), f"preset '{preset.name}'")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / preset_filename(preset.name)
    if path.exists() and not overwrite:
        raise PresetError(f"preset {path} already exists; choose another name")
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(preset.to_json() + "\n")
    os.replace(tmp, path)
    return path
