"""Which found presets are written: those both family classifiers accept firmly enough, and, with
replace-weaker, only where the preset already saved under the name is less firm on this model.

Firmness is the family's probability at and 4° around the latent (synth.model.timbre_map). The saved preset is
measured again on the model at hand, so a search on a new model never loses a better preset found on an old one.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from synth.core.timbre import Preset, PresetError, load_preset, preset_filename, save_preset

TIE = 1e-4  # both measured now; this only absorbs the batch size's rounding: a tie keeps the saved preset


def write_found(found: list[tuple[Preset, float]], out: str | os.PathLike, data: str, model: str | os.PathLike,
                min_probability: float, overwrite: bool = False, replace_weaker: bool = False) -> Iterator[str]:
    """Save the presets the policy accepts into `out`; yields one line per preset saying what was done."""
    from synth.model.timbre_map import recheck

    for preset, p in found:
        existing = Path(out) / preset_filename(preset.name)
        if replace_weaker and existing.exists():
            try:
                kept, old = recheck(data, model, load_preset(existing, len(preset.z)))
            except PresetError:
                kept, old = None, -1.0
            if kept is not None and (old >= p - TIE or p < min_probability):
                save_preset(kept, out, overwrite=True)  # its scores brought up to date
                yield (f"{preset.name:11s} {preset.family:21s} firmness {p:.2f}  kept {existing} ({old:.2f} on "
                       f"this model)")
                continue
        if p < min_probability:
            yield f"{preset.name:11s} {preset.family:21s} firmness {p:.2f}  not found: no candidate sounds like it"
            continue
        path = save_preset(preset, out, overwrite=overwrite or replace_weaker)
        yield f"{preset.name:11s} {preset.family:21s} firmness {p:.2f}  -> {path}"
