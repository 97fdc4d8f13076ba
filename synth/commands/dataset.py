"""`dataset build`: render the NSynth-like note set from soundfonts with FluidSynth (resumable)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from synth.commands import options as opt
from synth.commands.common import DEFAULT_DATA


def register(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("dataset", help="build the NSynth-like note set from soundfonts")
    ds_sub = ds.add_subparsers(dest="action", required=True)
    b = ds_sub.add_parser("build", help="render notes with FluidSynth (resumable)")
    b.add_argument("--out", default=str(DEFAULT_DATA))
    b.add_argument("--soundfonts", nargs="+", help="fluidr3 timgm6mb musescore musescore-hq (default: all installed)")
    b.add_argument("--programs", type=opt.MIDI_NUMBERS, help="GM programs, e.g. 0-7,40 (default 0-111)")
    b.add_argument("--velocities", type=opt.int_list(1, 127), help="default 40,80,120")
    b.add_argument("--pitches", type=opt.MIDI_NUMBERS, help="MIDI pitches (default 24-84)")
    b.add_argument("--gain", type=float, default=1.5, help="FluidSynth master gain")
    b.add_argument("--workers", type=int, default=2)
    b.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.model import dataset

    summary = dataset.build(Path(a.out), a.soundfonts, a.programs, a.velocities, a.pitches, gain=a.gain,
                            workers=a.workers)
    print(json.dumps(summary, indent=2))
