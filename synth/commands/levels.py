"""`levels`: per-channel levels of General MIDI files, ours beside FluidSynth's (each channel rendered solo)."""
from __future__ import annotations

import argparse
from pathlib import Path

from synth.commands.common import fluidsynth_comparison_options, model_and_presets


def register(sub: argparse._SubParsersAction) -> None:
    lv = sub.add_parser("levels", help="per-channel levels of GM files, ours beside FluidSynth's (each channel solo)")
    lv.add_argument("midi", nargs="*", help="General MIDI files")
    lv.add_argument("--calibrate", metavar="OUT.json",
                    help="instead: measure --soundfont's level of every GM program at every octave and write the "
                         "table `render` plays GM files with (the shipped one: synth/assets/gm_levels.json)")
    fluidsynth_comparison_options(lv)
    lv.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.engine.levels import channel_levels, format_levels

    if a.calibrate:
        from synth.engine import gm_levels

        table = gm_levels.measure(a.soundfont, a.rate)
        gm_levels.write(table, a.calibrate)
        print(f"{a.calibrate}: 128 programs at keys {table['keys']}, dB re the median melodic program at middle C "
              f"({table['reference_lufs']} LUFS)")
        return
    if not a.midi:
        raise ValueError("levels needs GM files to compare, or --calibrate OUT.json")
    model, presets = model_and_presets(a)
    for path in a.midi:
        print(format_levels(Path(path).name, channel_levels(path, model, presets, a.soundfont, a.rate)), flush=True)
