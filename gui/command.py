"""The window's `gansynth-live gui` command, registered into synth's command line (synth never imports the GUI):
installed, through the `gansynth_live.commands` entry point; from a source tree or the bundle, by `main` here."""
from __future__ import annotations

import argparse

from synth.commands.options import existing_dir


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("gui", help="the instrument's window: morph pad, keyboard, devices, effects, MIDI learn")
    g.add_argument("--model", help="ONNX model (default: the shipped one)")
    g.add_argument("--presets", type=existing_dir, help="preset directory to play instead of the shipped presets "
                                                         "(your own saved presets are added as always)")
    g.add_argument("--provider", help="onnxruntime provider: cuda, coreml, directml or cpu (default: best present)")
    g.add_argument("--config", help="folder for the session and your presets (default: ~/.config/gansynth-live)")
    g.add_argument("--no-audio", action="store_true", help="do not open an audio output")
    g.add_argument("--no-midi", action="store_true", help="do not open a MIDI input")
    g.add_argument("--screenshot", metavar="FILE.png", help="open the window, let it settle, save a picture, exit")
    g.add_argument("--drag-bench", type=float, metavar="SECONDS",
                   help="drag the morph pad in circles while a chord plays; print GUI frame times and underruns")
    g.set_defaults(func=_run)


def _run(a: argparse.Namespace) -> None:
    from gui.app import run

    run(a)


def main(argv: list[str] | None = None) -> None:
    """`gansynth-live` with `gui` present even where the package's entry points are not installed."""
    from synth.cli import main as synth_main

    synth_main(argv, extra=[register])
