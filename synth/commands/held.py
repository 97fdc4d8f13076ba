"""`held`: each preset's long held note, ours beside FluidSynth's: does the bank's loop show?"""
from __future__ import annotations

import argparse

from synth.commands import options as opt
from synth.commands.common import load_presets


def register(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("held", help="each preset's held middle C beside FluidSynth's: loop pattern and level fall")
    h.add_argument("--seconds", type=opt.float_in(2.0, 60.0, "seconds"), default=8.0,
                   help="how long the note is held (default 8)")
    h.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2", help="FluidSynth's SoundFont")
    h.add_argument("--model", help="ONNX model (default: the shipped one)")
    h.add_argument("--presets", type=opt.existing_dir, help="preset directory (default: the shipped presets/)")
    h.add_argument("--preset", help="only this preset")
    h.add_argument("--rate", type=opt.RATE, default=48000)
    h.add_argument("--provider", help="onnxruntime provider (default: best present)")
    h.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.bench.held_notes import format_held, held_notes
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    model = NoteModel(a.model or DEFAULT_MODEL, provider=a.provider)
    presets = load_presets(a, model.info.z_dim)
    print(format_held(held_notes(model, presets, a.soundfont, a.seconds, a.rate), a.seconds), flush=True)
