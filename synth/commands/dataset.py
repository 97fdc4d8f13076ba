"""`dataset build`: render the NSynth-like note set from soundfonts with FluidSynth (resumable)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from synth.commands import options as opt
from synth.commands.common import DEFAULT_DATA
from synth.core.notes import FAMILIES


def register(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("dataset", help="build the NSynth-like note set from soundfonts or your recordings")
    ds_sub = ds.add_subparsers(dest="action", required=True)
    b = ds_sub.add_parser("build", help="render notes with FluidSynth, or gather your recordings (resumable)")
    b.add_argument("--out", default=str(DEFAULT_DATA))
    b.add_argument("--samples", type=opt.existing_dir, metavar="DIR",
                   help="a folder of one-shot recordings instead of soundfonts: a subfolder per instrument, a note "
                        "per file (pitch from a name like C4 or 60, else detected; velocity from v100 or pp-ff)")
    b.add_argument("--family", choices=FAMILIES, help="with --samples: the GM family of instruments whose folder "
                                                      "name does not say it")
    b.add_argument("--soundfonts", "--soundfont", nargs="+", metavar="NAME|FILE",
                   help="fluidr3 timgm6mb musescore musescore-hq, or the path of any .sf2/.sf3 file (default: "
                        "every known one installed)")
    b.add_argument("--programs", type=opt.MIDI_NUMBERS, help="GM programs, e.g. 0-7,40 (default 0-111)")
    b.add_argument("--velocities", type=opt.int_list(1, 127), help="default 40,80,120")
    b.add_argument("--pitches", type=opt.MIDI_NUMBERS, help="MIDI pitches (default 24-84)")
    b.add_argument("--gain", type=float, default=1.5, help="FluidSynth master gain")
    b.add_argument("--workers", type=int, default=2)
    b.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.model import dataset

    if a.samples:
        given = [f"--{k}" for k in ("soundfonts", "programs", "velocities", "pitches") if getattr(a, k) is not None]
        if given:
            raise dataset.DatasetError(f"{given[0]} is for soundfonts; --samples takes the notes its files hold")
        from synth.model.sample_set import build_from_samples

        print(json.dumps(build_from_samples(a.samples, Path(a.out), a.family), indent=2))
        return
    if a.family:
        raise dataset.DatasetError("--family is for --samples (a soundfont's programs say their family)")
    summary = dataset.build(Path(a.out), a.soundfonts, a.programs, a.velocities, a.pitches, gain=a.gain,
                            workers=a.workers)
    print(json.dumps(summary, indent=2))
