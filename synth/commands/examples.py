"""`examples`: listening examples, each preset's phrase and the demo's opening beside FluidSynth's, as FLAC."""
from __future__ import annotations

import argparse
from pathlib import Path

from synth.commands.common import fluidsynth_comparison_options, model_and_presets


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("examples", help="each preset's phrase and the demo's opening, ours beside FluidSynth's "
                                        "playing the same MIDI, as FLAC files to listen to")
    e.add_argument("--out", default="docs/examples", help="folder for the FLAC files (default docs/examples)")
    e.add_argument("--preset", help="only this preset")
    e.add_argument("--no-demo", action="store_true", help="leave out the demo piece")
    fluidsynth_comparison_options(e)
    e.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.bench.examples import write_examples
    from synth.demo import DEMO_MIDI

    model, presets = model_and_presets(a)
    print(f"{'example':12s} {'GM program':>10s}  {'ours LUFS':>9s}  {'FluidSynth LUFS':>15s}  files")
    for ex in write_examples(model, presets, a.soundfont, Path(a.out), None if a.no_demo else DEMO_MIDI, a.rate):
        program = f"{ex.program}" if ex.program >= 0 else "file's"
        print(f"{ex.name:12s} {program:>10s}  {ex.ours_lufs:9.1f}  {ex.theirs_lufs:15.1f}  {ex.ours.name}, "
              f"{ex.theirs.name}", flush=True)
