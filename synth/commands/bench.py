"""`bench`: bank render, callback cost, note latency, offline speed, and a soak on a private JACK server."""
from __future__ import annotations

import argparse
import os

from synth.commands import options as opt
from synth.commands.common import write_json


def register(sub: argparse._SubParsersAction) -> None:
    bn = sub.add_parser("bench", help="measure bank render, callback cost, note latency, offline speed and a soak")
    bn.add_argument("--model", help="ONNX model (default: the shipped one)")
    bn.add_argument("--provider", help="onnxruntime provider (default: best present)")
    bn.add_argument("--rate", type=opt.RATE, default=48000)
    bn.add_argument("--block", type=opt.BLOCK, default=128)
    bn.add_argument("--soak", type=opt.float_in(0.0, 1e6, "seconds"), default=300,
                    help="seconds of soak on a private JACK dummy server (0: skip)")
    bn.add_argument("--floor", action="store_true",
                    help="after the soak, measure the machine's own floor: as long with a client that writes silence")
    bn.add_argument("--json", help="also write the numbers as JSON")
    bn.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.bench import measures as bench
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    path = a.model or str(DEFAULT_MODEL)
    model = NoteModel(path, provider=a.provider)
    report: dict = {"model": path, "provider": model.provider, "cpu_count": os.cpu_count()}
    report["bank"] = bench.bench_bank(model, a.rate)
    bank = bench.full_bank(model, a.rate)
    report["callback"] = bench.bench_callback(bank, a.block)
    report["note_latency"] = bench.bench_note_latency(bank, a.block)
    report["offline"] = bench.bench_offline(model, a.rate)
    if a.soak > 0:
        report["soak"] = bench.bench_soak(path, a.rate, a.block, a.soak)
        if a.floor:
            report["floor"] = bench.bench_floor(a.rate, a.block, a.soak)
    print(bench.format_report(report))
    if a.json:
        write_json(a.json, report)
