"""`levels`: per-channel levels of General MIDI files, ours beside FluidSynth's (each channel rendered solo)."""
from __future__ import annotations

import argparse
from pathlib import Path

from synth.commands import options as opt
from synth.commands.common import load_presets


def register(sub: argparse._SubParsersAction) -> None:
    lv = sub.add_parser("levels", help="per-channel levels of GM files, ours beside FluidSynth's (each channel solo)")
    lv.add_argument("midi", nargs="+", help="General MIDI files")
    lv.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2", help="FluidSynth's SoundFont")
    lv.add_argument("--model", help="ONNX model (default: the shipped one)")
    lv.add_argument("--presets", type=opt.existing_dir, help="preset directory (default: the shipped presets/)")
    lv.add_argument("--rate", type=opt.RATE, default=48000)
    lv.add_argument("--provider", help="onnxruntime provider (default: best present)")
    lv.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.engine.levels import channel_levels, format_levels
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    model = NoteModel(a.model or DEFAULT_MODEL, provider=a.provider)
    presets = load_presets(a, model.info.z_dim)
    for path in a.midi:
        print(format_levels(Path(path).name, channel_levels(path, model, presets, a.soundfont, a.rate)), flush=True)
