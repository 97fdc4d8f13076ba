"""`recover`: finish the take a stopped or crashed `play --record` left in a hidden .part file."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    rc = sub.add_parser("recover", help="finish the take a stopped or crashed --record left in a hidden .part file")
    rc.add_argument("part", help="the part file, e.g. .take.flac.x1y2z3.part")
    rc.add_argument("-o", "--out", help="the take to write (default: the name it was recorded to)")
    rc.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.engine.recorder import recover

    path, seconds = recover(a.part, a.out)
    print(f"recovered {seconds:.1f} s into {path}")
