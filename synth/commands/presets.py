"""`presets list|find|encode|import|instruments|curve|pictures`: the presets, finding named ones with the family
classifiers, and making them from recorded notes."""
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
    pi = pr_sub.add_parser("import", help="a preset from a recorded note (any audio file libsndfile reads): its "
                                          "timbre across the whole keyboard")
    pi.add_argument("file", help="one note, 0.2-10 s of sound")
    pi.add_argument("--name", help="the preset's name (default: the file's name)")
    pi.add_argument("--pitch", type=opt.note_or_auto, help="the note's pitch: a MIDI number, a name like C4 or F#2, or "
                                                    "auto (found in the sound)")
    pi.add_argument("--model", help=MODEL_HELP + "; its encoder, NAME.encoder.pt, must lie beside it")
    pi.add_argument("--out", help="preset directory (default: your presets, which the window lists)")
    pi.add_argument("--overwrite", action="store_true", help="replace a preset of the same name")
    pi.add_argument("--steps", type=opt.int_in(0, 2000), default=40,
                    help="optimisation steps refining the encoder's latent against the note's spectrum")
    pi.set_defaults(func=run_import)
    pn = pr_sub.add_parser("instruments", help="a preset for each instrument of a note set (your recordings' "
                                               "folders, your soundfont's programs), e.g. after a fine-tune on it")
    pn.add_argument("set", type=opt.existing_dir, help="the note set (dataset build --samples or --soundfont)")
    pn.add_argument("--model", help=MODEL_HELP + "; its encoder, NAME.encoder.pt, must lie beside it")
    pn.add_argument("--out", help="preset directory (default: your presets, which the window lists)")
    pn.add_argument("--only", action="append", metavar="NAME", help="only this instrument (repeatable)")
    pn.add_argument("--overwrite", action="store_true", help="replace presets of the same names")
    pn.add_argument("--steps", type=opt.int_in(0, 2000), default=40,
                    help="optimisation steps refining each candidate against its note's spectrum")
    pn.add_argument("--json", help="also write the rows as JSON")
    pn.set_defaults(func=run_instruments)
    pk = pr_sub.add_parser("check-import", help="import real notes the model never trained on and measure how much "
                                                "of each sound the preset keeps")
    pk.add_argument("sets", nargs="+", help="note sets (dataset build): the held-out split of one the model trained "
                                            "on, all of one it did not")
    pk.add_argument("--data", default=str(DEFAULT_DATA), help="note set the evaluation classifier is trained on")
    pk.add_argument("--model", help=MODEL_HELP)
    pk.add_argument("--per-family", type=opt.int_in(1, 100), default=4, help="notes imported per GM family")
    pk.add_argument("--steps", type=opt.int_in(0, 2000), default=40, help="refinement steps per note")
    pk.add_argument("--held-out", action="store_true", help="only each set's held-out split, also of a soundfont "
                                                            "the model never trained on (before/after a fine-tune)")
    pk.add_argument("--programs", type=opt.MIDI_NUMBERS, help="only these GM programs, e.g. 0,8,16")
    pk.add_argument("--json", help="also write the rows as JSON")
    pk.set_defaults(func=run_check_import)
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
    psc = pr_sub.add_parser("score", help="each preset's family probability by both classifiers on a model (how "
                                          "firmly it still sounds like its family, e.g. after a fine-tune)")
    psc.add_argument("--data", default=str(DEFAULT_DATA), help="note set the classifiers are trained on")
    psc.add_argument("--model", help=MODEL_HELP)
    psc.add_argument("--presets", type=opt.existing_dir, help=PRESETS_HELP)
    psc.add_argument("--json", help="also write the scores as JSON")
    psc.set_defaults(func=run_score)
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

    _refuse_taken(a, a.only)
    found, probs = find_presets(a.data, _model(a), candidates=a.candidates, seed=a.seed, generations=a.refine,
                                names=a.only)
    families = np.bincount(probs.argmax(1), minlength=len(FAMILIES))
    print("top family of the candidates: " + ", ".join(f"{f} {n}" for f, n in zip(FAMILIES, families) if n))
    _write_found(a, found)


def run_encode(a: argparse.Namespace) -> None:
    from synth.model.timbre_map import encode_presets

    from synth.model.voice_train import load_voice

    load_voice(a.checkpoint)  # what is given is checked before what would be written
    _refuse_taken(a, None)
    _write_found(a, encode_presets(a.data, a.checkpoint, _model(a), min_probability=a.min_probability))


def _refuse_taken(a: argparse.Namespace, only: list[str] | None) -> None:
    """Said before minutes of search, not after: a family preset that exists and may not be replaced."""
    from synth.core.timbre import PresetExists, preset_path
    from synth.model.timbre_map import TARGETS

    if a.overwrite or a.replace_weaker or (only and set(only) - {name for name, _ in TARGETS}):
        return  # nothing is replaced, or a name that is no target: the search says so first
    for name, _ in TARGETS:
        path, taken = preset_path(name, Path(a.out))
        if taken and (only is None or name in only):
            raise PresetExists(f"preset {path} already exists; give --overwrite or --replace-weaker, or --only "
                               f"the families still missing")


def run_instruments(a: argparse.Namespace) -> None:
    from synth.core.config import user_presets_dir
    from synth.core.timbre import Preset, PresetExists, check_name, preset_path, save_preset
    from synth.model.instrument_presets import find_instrument_presets, instruments
    from synth.model.one_shot import load_model

    out = Path(a.out) if a.out else user_presets_dir()
    names = [n for n in instruments(a.set).values() if a.only is None or n in a.only]
    if not names:
        raise ValueError(f"no instrument named {', '.join(a.only or [])} in {a.set}; it has: "
                         f"{', '.join(instruments(a.set).values())}")
    for name in names:  # said before minutes of work, not after
        path, taken = preset_path(check_name(name, "cannot make a preset"), out)
        if taken and not a.overwrite:
            raise PresetExists(f"preset {path} already exists; give --overwrite to replace it")
    voice, encoder = load_model(_model(a))
    rows = []
    for found in find_instrument_presets(a.set, voice, encoder, steps=a.steps, only=set(names)):
        preset = Preset(found.name, found.z, description=f"from {found.name}'s MIDI {found.source_pitch} note in "
                                                         f"{Path(a.set).name}",
                        extra={"source": str(Path(a.set).name), "gm_program": found.program,
                               "log_spectral_distance_db": round(found.lsd, 2)})
        saved = save_preset(preset, out, overwrite=a.overwrite)
        print(f"{found.name}: from its MIDI {found.source_pitch} note; log-spectral distance to its own notes "
              f"(median of {found.compared}) {found.lsd:.1f} dB -> {saved}", flush=True)
        rows.append({"instrument": found.name, "program": found.program, "soundfont": found.soundfont,
                     "source_pitch": found.source_pitch, "lsd_db": round(found.lsd, 2)})
    if a.json:
        write_json(a.json, rows)


def run_import(a: argparse.Namespace) -> None:
    from synth.core.config import user_presets_dir
    from synth.core.timbre import Preset, PresetExists, check_name, preset_path, save_preset
    from synth.model.one_shot import comparison_picture, import_sound, load_model, read_sound

    source = Path(a.file)
    name = check_name(a.name or source.stem, "cannot import")
    out = Path(a.out) if a.out else user_presets_dir()
    path, taken = preset_path(name, out)
    if taken and not a.overwrite:  # said before a minute of work, not after
        raise PresetExists(f"preset {path} already exists; choose another --name or give --overwrite")
    sound = read_sound(source)
    voice, encoder = load_model(_model(a))
    result = import_sound(voice, encoder, sound, a.pitch, steps=a.steps, where=source.name)
    moved = f", moved {result.octaves:+d} octave(s) into the model's range" if result.octaves else ""
    preset = Preset(name, result.z, description=f"imported from {source.name} (MIDI {result.detected:.1f}{moved})",
                    extra={"source": source.name, "source_pitch": round(result.detected, 2),
                           "log_spectral_distance_db": round(result.lsd, 2)})
    saved = save_preset(preset, out, overwrite=a.overwrite)
    picture = saved.with_suffix(".png")
    comparison_picture(result, picture, source.name)
    print(f"{source.name}: pitch MIDI {result.detected:.1f}{moved}; log-spectral distance to the model's note at "
          f"MIDI {result.pitch}: {result.encoded_lsd:.1f} dB encoded, {result.lsd:.1f} dB after {a.steps} steps")
    print(f"wrote {saved} and {picture}; play it: gansynth-live play --presets {out} --preset \"{name}\"")


def run_score(a: argparse.Namespace) -> None:
    from synth.model.timbre_map import recheck

    rows = []
    print(f"{'preset':14s} {'family':22s} {'classifier':>10s} {'second':>7s} {'firmness':>8s}")
    for preset in load_presets(a, _z_dim(a)):
        checked, firm = recheck(a.data, _model(a), preset)
        if firm < 0:
            continue
        row = {"name": preset.name, "family": preset.family, "classifier_p": checked.extra["classifier_p"],
               "second_classifier_p": checked.extra["second_classifier_p"], "firmness": round(firm, 4)}
        rows.append(row)
        print(f"{preset.name:14s} {preset.family:22s} {row['classifier_p']:10.2f} {row['second_classifier_p']:7.2f} "
              f"{firm:8.2f}")
    if a.json:
        write_json(a.json, rows)


def run_check_import(a: argparse.Namespace) -> None:
    from synth.model.import_check import check_imports, format_check

    rows = [row for s in a.sets for row in check_imports(s, _model(a), a.data, a.per_family, a.steps,
                                                         held_out=a.held_out, programs=a.programs)]
    print(format_check(rows))
    if a.json:
        write_json(a.json, rows)


def _write_found(a: argparse.Namespace, found: list) -> None:
    from synth.model.preset_policy import write_found

    for line in write_found(found, a.out, a.data, _model(a), a.min_probability, overwrite=a.overwrite,
                            replace_weaker=a.replace_weaker):
        print(line)
