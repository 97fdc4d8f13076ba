"""The XY pad's timbre map: which preset family each pad position sounds most like, painted under the puck.

Each cell of a grid over the pad plays morph(corners, x, y) (slerp along the edges, then between them); the map
gives it the family of the preset whose latent is nearest in angle — the preset data stored with the model,
since the evaluation classifier needs the training notes, which a player's machine does not have. The grid is
computed once per set of corner latents (about 10 ms for 32 × 32, numpy only, off the audio path: the sound runs
in its own process) and cached. Families that hold at least MIN_SHARE of the pad are named at their centre."""
from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QColor, QImage

from synth.core.timbre import Preset, morph

GRID = 32
MIN_SHARE = 0.06
FAMILY_COLOURS = {  # hue per GM family, dark enough for light text over it
    "piano": "#4a5f8c", "chromatic_percussion": "#3f7f8f", "organ": "#7a5a2e", "guitar": "#8a6d3b",
    "bass": "#5b3f6e", "strings": "#8c4a4a", "ensemble": "#7d4d6f", "brass": "#8f7a2f", "reed": "#4f7d46",
    "pipe": "#3f8c72", "synth_lead": "#8c3f6b", "synth_pad": "#3d6f9a", "synth_effects": "#5e5e8c",
    "ethnic": "#6e6a3a"}
OTHER_COLOUR = "#3d4b63"

_cache: dict[bytes, np.ndarray] = {}


def family_grid(corners: list[np.ndarray], presets: list[Preset], n: int = GRID) -> np.ndarray:
    """[n, n] (row = y, column = x, cell centres): the index in `presets` of the preset nearest in angle to the
    latent each pad cell plays. Cached per corner latents and presets."""
    key = b"".join(np.asarray(c, np.float32).tobytes() for c in corners) + b"|".join(
        p.z.astype(np.float32).tobytes() for p in presets) + n.to_bytes(4, "little")
    if key in _cache:
        return _cache[key]
    bank = np.stack([p.z / max(np.linalg.norm(p.z), 1e-12) for p in presets]).astype(np.float64)
    grid = np.zeros((n, n), dtype=np.int64)
    centres = (np.arange(n) + 0.5) / n
    for row, y in enumerate(centres):
        zs = np.stack([morph(corners, float(x), float(y)) for x in centres]).astype(np.float64)
        grid[row] = np.argmax(zs @ bank.T, axis=1)  # largest cosine: smallest angle
    _cache[key] = grid
    return grid


def family_colour(preset: Preset) -> QColor:
    return QColor(FAMILY_COLOURS.get(preset.family, OTHER_COLOUR))


def map_image(grid: np.ndarray, presets: list[Preset]) -> QImage:
    """The grid as an image, one pixel a cell, each in its preset's family colour."""
    n_rows, n_cols = grid.shape
    image = QImage(n_cols, n_rows, QImage.Format.Format_RGB32)
    for row in range(n_rows):
        for col in range(n_cols):
            image.setPixelColor(col, row, family_colour(presets[int(grid[row, col])]))
    return image


def map_labels(grid: np.ndarray, presets: list[Preset], min_share: float = MIN_SHARE) -> list[tuple[str, float, float]]:
    """(preset name, x, y) at the centre of each region holding at least `min_share` of the pad (x, y in 0-1)."""
    n_rows, n_cols = grid.shape
    out = []
    for index in np.unique(grid):
        rows, cols = np.nonzero(grid == index)
        if len(rows) >= min_share * grid.size:
            out.append((presets[int(index)].name, (cols.mean() + 0.5) / n_cols, (rows.mean() + 0.5) / n_rows))
    return out
