"""`export`: a checkpoint's voice (or an exported .onnx, with new metrics) to ONNX with its metadata and card."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from synth.commands import options as opt


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="export a checkpoint's voice to ONNX with its metadata")
    e.add_argument("checkpoint", help="RUN/checkpoint.pt, or an exported .onnx to export again (new metrics)")
    e.add_argument("-o", "--out", required=True)
    e.add_argument("--metrics", help="JSON written by 'gansynth-live eval --json', stored in the model file")
    e.add_argument("--card", help="also write a Markdown model card here")
    e.add_argument("--data", type=opt.existing_dir,
                   help="note set to fit the prior map to (default: the one the run trained on)")
    e.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.model.voice_export import export_checkpoint, reexport_model_file, write_card

    metrics = json.loads(Path(a.metrics).read_text()) if a.metrics else None
    if a.checkpoint.endswith(".onnx"):  # the checkpoint may be gone: the file's own weights, this version's graph
        from synth.runtime.model import NoteModel

        NoteModel(a.checkpoint, provider="cpu")  # a broken file stops here, in one line
        training = reexport_model_file(a.checkpoint, a.out, metrics)
    else:
        training = export_checkpoint(a.checkpoint, a.out, metrics or {}, a.data)
    print(f"wrote {a.out}")
    if a.card:
        write_card(a.card, a.out, training, metrics or {})
        print(f"wrote {a.card}")
