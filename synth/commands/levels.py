"""`levels`: per-channel levels of General MIDI files, ours beside FluidSynth's (each channel rendered solo)."""
from __future__ import annotations

import argparse
from pathlib import Path

from synth.commands.common import fluidsynth_comparison_options, model_and_presets


def register(sub: argparse._SubParsersAction) -> None:
    lv = sub.add_parser("levels", help="per-channel levels of GM files, ours beside FluidSynth's (each channel solo)")
    lv.add_argument("midi", nargs="+", help="General MIDI files")
    fluidsynth_comparison_options(lv)
    lv.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.engine.levels import channel_levels, format_levels

    model, presets = model_and_presets(a)
    for path in a.midi:
        print(format_levels(Path(path).name, channel_levels(path, model, presets, a.soundfont, a.rate)), flush=True)
