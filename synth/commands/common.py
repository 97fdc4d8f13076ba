"""What several commands share: the preset choice, the render options, atomic JSON results, SIGTERM as Ctrl-C."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from synth.commands import options as opt
from synth.core.files import write_atomic

DEFAULT_DATA = Path.home() / ".cache" / "gansynth-live" / "data"
EFFECTS_HELP = ("effects chain: a saved chain (.json) or built-ins in order with parameters, e.g. "
                "'reverb:room_size=0.8,delay:mix=0.2' (reverb, delay, chorus, compressor, filter, gain) "
                "or a .vst3 path")


def render_options(r: argparse.ArgumentParser) -> None:
    """The model, presets and rate options of every command that plays notes."""
    r.add_argument("--model", help="ONNX model (default: the shipped one)")
    r.add_argument("--presets", type=opt.existing_dir, help="preset directory (default: the shipped presets/)")
    r.add_argument("--preset", help="play every channel with this preset")
    r.add_argument("--rate", type=opt.RATE, default=48000, help="output sample rate (8000-192000)")
    r.add_argument("--provider", help="onnxruntime provider: cuda, coreml, directml or cpu (default: best present)")
    r.add_argument("--spread", type=opt.float_in(0.0, 1.0, "spread"), default=0.0,
                   help="stereo spread 0-1: notes panned by key around the channel's pan (low left, high right)")
    r.add_argument("--mod-target", metavar="PRESET",
                   help="the preset the modulation wheel (CC1) and pressure morph towards (default: Synth Pad; "
                        "Strings for the Synth Pad preset itself)")
    r.add_argument("--bit-depth", type=int, choices=(16, 24, 32), default=None,
                   help="file sample format: 16 or 24-bit PCM, or 32-bit float (WAV only)")


def fluidsynth_comparison_options(p: argparse.ArgumentParser) -> None:
    """The options of the commands that set our notes beside FluidSynth's (`levels`, `held`)."""
    p.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2", help="FluidSynth's SoundFont")
    p.add_argument("--model", help="ONNX model (default: the shipped one)")
    p.add_argument("--presets", type=opt.existing_dir, help="preset directory (default: the shipped presets/)")
    p.add_argument("--rate", type=opt.RATE, default=48000)
    p.add_argument("--provider", help="onnxruntime provider (default: best present)")


def model_and_presets(a: argparse.Namespace) -> tuple:
    """(NoteModel, presets) of --model (default: the shipped one) and --presets/--preset."""
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    model = NoteModel(a.model or DEFAULT_MODEL, provider=a.provider)
    return model, load_presets(a, model.info.z_dim)


def stop_on_sigterm() -> None:
    """A killed command unwinds as Ctrl-C does: temp files are removed, takes are finished."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


def load_presets(a: argparse.Namespace, z_dim: int) -> list:
    """The presets a command plays: --presets (every file must load) or the shipped ones (skipped with a note when
    they do not fit this model), narrowed to --preset if given."""
    from synth.core.timbre import PRESETS_DIR, PresetError, named_preset, scan_presets

    presets, problems = scan_presets(z_dim, a.presets or PRESETS_DIR)
    if problems and not presets:
        if a.presets:
            raise PresetError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        # The shipped presets belong to the shipped model; another model plays its default timbre instead.
        print(f"note: not using the shipped presets ({problems[0]})", file=sys.stderr)
    for problem in problems if presets else []:
        print(f"note: preset skipped: {problem}", file=sys.stderr)
    if getattr(a, "preset", None):
        presets = [named_preset(presets, a.preset)]
    return presets


def write_json(path: str, value: object) -> None:
    """A command's numbers as JSON, written atomically, and said."""
    write_atomic(path, json.dumps(value, indent=2))
    print(f"wrote {path}")
