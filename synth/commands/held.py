"""`held`: each preset's long held note, ours beside FluidSynth's: does the bank's loop show?"""
from __future__ import annotations

import argparse

from synth.commands import options as opt
from synth.commands.common import fluidsynth_comparison_options, model_and_presets


def register(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("held", help="each preset's held middle C beside FluidSynth's: loop pattern and level fall")
    h.add_argument("--seconds", type=opt.float_in(2.0, 60.0, "seconds"), default=8.0,
                   help="how long the note is held (default 8)")
    h.add_argument("--preset", help="only this preset")
    fluidsynth_comparison_options(h)
    h.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.bench.held_notes import format_held, held_notes

    model, presets = model_and_presets(a)
    print(format_held(held_notes(model, presets, a.soundfont, a.seconds, a.rate), a.seconds), flush=True)
