"""`presets list|find|encode|curve|pictures`: the presets, and finding named ones with the family classifiers."""
from __future__ import annotations

import argparse
from pathlib import Path

from synth.commands import options as opt
from synth.commands.common import DEFAULT_DATA, load_presets, write_json

MODEL_HELP = "ONNX model (default: the shipped one)"
PRESETS_HELP = "preset directory (default: the shipped presets/)"


def register(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("presets", help="list presets, or find named ones with the family classifier")
    pr_sub = pr.add_subparsers(dest="action", required=True)
    pf = pr_sub.add_parser("find", help="timbre map: one preset per GM family, checked by the classifier")
    pf.add_argument("--data", default=str(DEFAULT_DATA), help="note set the classifier is trained on")
    pf.add_argument("--model", help=MODEL_HELP)
    pf.add_argument("--candidates", type=int, default=1024, help="random latents to search")
    pf.add_argument("--seed", type=int, default=0)
    pf.add_argument("--refine", type=int, default=0, metavar="GENERATIONS",
                    help="walk each preset from its best candidate towards its family by an evolution strategy "
                         "(32 latents a generation)")
    pf.add_argument("--only", action="append", metavar="NAME", help="search only this preset (repeatable)")
    _found_arguments(pf)
    pf.set_defaults(func=run_find)
    pe = pr_sub.add_parser("encode", help="a preset per GM family from real notes, through a training "
                                          "checkpoint's encoder, checked by the classifiers")
    pe.add_argument("checkpoint", help="the voice's training checkpoint (it holds the encoder)")
    pe.add_argument("--data", default=str(DEFAULT_DATA), help="note set to encode and train the classifiers on")
    pe.add_argument("--model", help="the checkpoint's exported ONNX model (default: the shipped one)")
    _found_arguments(pe)
    pe.set_defaults(func=run_encode)
    pc = pr_sub.add_parser("curve", help="classifier family probabilities along the slerp between two presets "
                                         "(or, with no names, a summary for every pair)")
    pc.add_argument("start", nargs="?", help="preset name")
    pc.add_argument("end", nargs="?", help="preset name")
    pc.add_argument("--data", default=str(DEFAULT_DATA), help="note set the classifier is trained on")
    pc.add_argument("--model", help=MODEL_HELP)
    pc.add_argument("--presets", type=opt.existing_dir, help=PRESETS_HELP)
    pc.add_argument("--steps", type=int, default=11)
    pc.add_argument("--json", help="also write the curve as JSON")
    pc.set_defaults(func=run_curve)
    pp = pr_sub.add_parser("pictures", help="spectrogram pictures of every preset across the keyboard")
    pp.add_argument("--model", help=MODEL_HELP)
    pp.add_argument("--presets", type=opt.existing_dir, help=PRESETS_HELP)
    pp.add_argument("--out", required=True, help="folder for the PNG files")
    pp.add_argument("--data", help="note set: draw the real notes of the preset's instrument under ours")
    pp.set_defaults(func=run_pictures)
    pls = pr_sub.add_parser("list", help="list the presets (program change numbers first)")
    pls.add_argument("--model", help="ONNX model whose z size the presets must have")
    pls.add_argument("--presets", type=opt.existing_dir, help=PRESETS_HELP)
    pls.set_defaults(func=run_list)


def _found_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="presets", help="directory to write the presets to")
    p.add_argument("--overwrite", action="store_true", help="replace presets of the same name")
    p.add_argument("--replace-weaker", action="store_true",
                   help="replace a preset of the same name only if it is less firm on this model")
    p.add_argument("--min-probability", type=float, default=0.3,
                   help="write a family's preset only if both classifiers give it at least this probability "
                        "(mean over the latent and eight latents 4° around it)")


def _model(a: argparse.Namespace) -> str:
    from synth.runtime.model import DEFAULT_MODEL

    return str(a.model or DEFAULT_MODEL)


def _z_dim(a: argparse.Namespace) -> int:
    from synth.runtime.model import NoteModel

    return NoteModel(_model(a)).info.z_dim


def run_list(a: argparse.Namespace) -> None:
    from synth.core.timbre import PRESETS_DIR, load_presets as load_all

    for i, p in enumerate(load_all(_z_dim(a), a.presets or PRESETS_DIR)):
        print(f"{i:3d}  {p.name:14s} {p.family:21s} {p.description}")


def run_curve(a: argparse.Namespace) -> None:
    from synth.core.timbre import named_preset
    from synth.model.timbre_map import format_curve, format_pairs, pair_curves, slerp_curve

    if (a.start is None) != (a.end is None):
        raise ValueError("name two presets for one curve, or none for every pair")
    presets = load_presets(a, _z_dim(a))
    if a.start is None:
        pairs = pair_curves(a.data, _model(a), presets, a.steps)
        print(format_pairs(pairs))
        result: object = pairs
    else:
        curve = slerp_curve(a.data, _model(a), named_preset(presets, a.start), named_preset(presets, a.end), a.steps)
        print(format_curve(curve))
        result = curve
    if a.json:
        write_json(a.json, result)


def run_pictures(a: argparse.Namespace) -> None:
    from synth.core.timbre import preset_filename
    from synth.model.timbre_map import PICTURE_PITCHES, spectrogram_picture

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for preset in load_presets(a, _z_dim(a)):
        path = out / preset_filename(preset.name).replace(".json", ".png")
        real, name = None, ""
        if a.data:  # the real instrument under ours: the program it was encoded from, else its family's first
            from synth.core.notes import FAMILIES
            from synth.model.dataset import real_notes

            program = preset.extra.get("gm_program", 8 * FAMILIES.index(preset.family) if preset.family else None)
            if program is not None:
                real, name = real_notes(Path(a.data), int(program), list(PICTURE_PITCHES)), f"GM {program}"
        spectrogram_picture(_model(a), preset, path, real=real, real_name=name)
        print(f"wrote {path}")


def run_find(a: argparse.Namespace) -> None:
    import numpy as np

    from synth.core.notes import FAMILIES
    from synth.model.timbre_map import find_presets

    found, probs = find_presets(a.data, _model(a), candidates=a.candidates, seed=a.seed, generations=a.refine,
                                names=a.only)
    families = np.bincount(probs.argmax(1), minlength=len(FAMILIES))
    print("top family of the candidates: " + ", ".join(f"{f} {n}" for f, n in zip(FAMILIES, families) if n))
    _write_found(a, found)


def run_encode(a: argparse.Namespace) -> None:
    from synth.model.timbre_map import encode_presets

    _write_found(a, encode_presets(a.data, a.checkpoint, _model(a), min_probability=a.min_probability))


def _write_found(a: argparse.Namespace, found: list) -> None:
    from synth.model.preset_policy import write_found

    for line in write_found(found, a.out, a.data, _model(a), a.min_probability, overwrite=a.overwrite,
                            replace_weaker=a.replace_weaker):
        print(line)
