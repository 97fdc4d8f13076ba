"""`eval`: PA, FID, NDB and a YIN pitch check of real held-out notes beside a model's, and per-family sound."""
from __future__ import annotations

import argparse
from pathlib import Path

from synth.commands import options as opt
from synth.commands.common import DEFAULT_DATA, load_presets, write_json


def register(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("eval", help="PA, FID, NDB and a YIN pitch check: real held-out notes vs a model")
    v.add_argument("--data", default=str(DEFAULT_DATA))
    v.add_argument("--model", help="ONNX model to evaluate (omit for the real-data reference row only)")
    # FID depends on how many notes it sees: 305 random latents of one model scored 272-383 by the draw and 245 at
    # 915, the real notes 99-119 at 305 and 44 at 915. So both rows take 915 by default, one size for both.
    v.add_argument("--per-pitch", type=int, default=15, help="random latents per pitch (default 15: 915 notes)")
    v.add_argument("--real-notes", type=int, default=915, help="held-out real notes in the reference row (default "
                                                               "915, as many as the generated row)")
    v.add_argument("--presets", type=opt.existing_dir,
                   help="preset directory to evaluate a row each for (default: the shipped presets/)")
    v.add_argument("--json", help="also write the rows as JSON")
    v.add_argument("--sound", action="store_true", help="also measure each family's sound (ripple, sidebands, HNR, "
                                                         "attack, decay, energy above 8 kHz, level) beside the real "
                                                         "held-out notes, at the family's preset")
    v.add_argument("--checkpoint", help="a training checkpoint: a row for its reconstructions of the held-out real "
                                        "notes, and --sound measures those instead of the presets")
    v.add_argument("--sound-only", action="store_true", help="skip the classifier rows")
    v.add_argument("--per-family", type=int, default=24, help="held-out notes per family for --sound")
    v.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.model.evaluate import evaluate, format_table

    presets = []
    if a.model:
        from synth.runtime.model import NoteModel

        presets = load_presets(a, NoteModel(a.model).info.z_dim)
    rows = evaluate(Path(a.data), a.model, per_pitch=a.per_pitch, real_limit=a.real_notes, presets=presets,
                    checkpoint=a.checkpoint) if not a.sound_only else []
    if rows:
        print(format_table(rows))
    for r in rows:
        if "families_of_256_z" in r:
            print(f"{r['set']}: {r['families_of_256_z']} distinct classifier families among 256 random latents")
    if a.checkpoint or (a.sound and a.model):
        rows.append(_sound_row(a, presets))
    if a.json:
        write_json(a.json, rows)


def _sound_row(a: argparse.Namespace, presets: list) -> dict:
    """Per-family sound measures, real held-out notes beside ours: reconstructions through a checkpoint, or the
    model's notes at each family's preset."""
    from synth.core.notes import FAMILIES
    from synth.model import voice_eval

    if a.checkpoint:
        render, what, rate = voice_eval.checkpoint_renderer(a.checkpoint), f"reconstructions by {a.checkpoint}", 200.0
    else:
        from synth.runtime.model import NoteModel

        model = NoteModel(a.model)
        # The frame rate whose sidebands are looked for: the voice's control rate, or an IF-Mel model's hop (512).
        rate = float(model.session.get_modelmeta().custom_metadata_map.get("control_rate",
                                                                             model.info.sample_rate / 512))
        latents = {FAMILIES.index(p.family): p.z for p in presets if p.family in FAMILIES}
        if not latents:
            raise ValueError("--sound needs presets with GM families (or --checkpoint for reconstructions)")
        render, what = voice_eval.model_renderer(a.model, latents), f"presets of {Path(a.model).name}"
    result = voice_eval.evaluate_sound(Path(a.data), render, rate, per_family=a.per_family,
                                       families=None if a.checkpoint else set(latents))
    print(f"sound by family, real / ours ({what}; {result['notes']} held-out notes):")
    print(voice_eval.format_family_table(result["families"]))
    if result["brightness_by_velocity"]:
        print(f"{voice_eval.VELOCITY_HEADING}:")
        print(voice_eval.format_velocity_table(result["brightness_by_velocity"], result["brightness_rise_cents"]))
    return {"set": f"sound: {what}"} | result
