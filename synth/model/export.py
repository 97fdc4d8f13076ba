"""ONNX export: the EMA generator with the IF→phase→inverse-STFT step inside the graph (z, pitch → audio)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from synth import __version__
from synth.model.networks import N_PITCHES, PITCH_MIN, NetConfig, make_generator
from synth.model.spectral import FEATURES_VERSION, RELEASE_RISE_DB, IFMel, NOTE_SAMPLES, SAMPLE_RATE, check_features

NOTE_SECONDS = NOTE_SAMPLES / SAMPLE_RATE
RELEASE_SECONDS = 1.0
ARCHITECTURES = {"2d": "progressive 2-D conv generator (GANSynth)",
                 "1d": "1-D conv generator over time, frequency bins as channels, per-pitch output spectrum"}


class NoteSynth(torch.nn.Module):
    """G(z, pitch) → 4 s of audio at 16 kHz: the whole render in one module, exported as one graph."""

    def __init__(self, generator: torch.nn.Module, codec: IFMel) -> None:
        super().__init__()
        self.generator = generator
        self.codec = codec

    def forward(self, z: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        return decode(self.generator, self.codec, self.generator(z, pitch), pitch)


def decode(generator: torch.nn.Module, codec: IFMel, feats: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
    """A generator's features → audio with a release that only fades; a fixed-IF generator's notes take the
    harmonic phase of their pitch."""
    return codec.decode(codec.fading_release(feats), codec.harmonic_phase(pitch) if generator.cfg.fixed_if else None)


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> tuple[NoteSynth, dict]:
    """The EMA generator of a training checkpoint as a NoteSynth, plus the checkpoint's facts."""
    ck = torch.load(path, map_location=device, weights_only=True)
    check_features(ck.get("features", 1), path)
    g = make_generator(NetConfig.from_dict(ck["net"]))
    g.load_state_dict(ck["G_ema"])
    codec = IFMel(mel=ck["mel"])
    codec.set_range(*ck["mag_range"])
    facts = {k: ck[k] for k in ("net", "mel", "images", "step", "trained_s", "data_dir", "train_notes", "device")}
    facts["hardware"] = ck.get("hardware", ck["device"])
    facts["batch"] = ck.get("batch")
    facts["pretrained"] = ck.get("pretrained")
    facts["objectives"] = ck.get("objectives")
    return NoteSynth(g, codec).eval(), facts


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, metadata: dict[str, object],
                z_dim: int | None = None) -> None:
    """Write a (z, pitch) → audio module and its contract metadata; the file appears only when complete."""
    import onnx

    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    z_dim = z_dim or model.generator.cfg.z_dim
    z = torch.randn(2, z_dim)
    pitch = torch.tensor([PITCH_MIN, PITCH_MIN + N_PITCHES - 1])
    torch.onnx.export(model, (z, pitch), str(tmp), input_names=["z", "pitch"], output_names=["audio"],
                      dynamic_axes={"z": {0: "batch"}, "pitch": {0: "batch"}, "audio": {0: "batch"}},
                      opset_version=17, dynamo=False)
    proto = onnx.load(str(tmp))
    meta = {"sample_rate": SAMPLE_RATE, "z_dim": z_dim, "pitch_min": PITCH_MIN,
            "pitch_max": PITCH_MIN + N_PITCHES - 1, "note_seconds": NOTE_SECONDS,
            "release_seconds": RELEASE_SECONDS, "version": __version__} | metadata
    if isinstance(getattr(model, "codec", None), IFMel):  # so load_model_file can rebuild the decoder
        meta["mag_range"] = model.codec.mag_range.tolist()
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v if isinstance(v, str) else json.dumps(v)
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)


def load_model_file(path: str | os.PathLike) -> tuple[NoteSynth, dict]:
    """Rebuild the NoteSynth an exported .onnx was made from, plus the training facts it carries: checkpoints stay
    on the machine that trained them, and a model file can still be re-exported with new metrics or decoder.

    The export folds each layer's equalized-learning-rate scale into its weight, so the weights are read back with
    a scale of 1, found by the module path in each node's name (equal tensors share one, through Identity). The
    magnitude range is in the metadata; files exported before it was hold it as their only Add and Mul scalar
    initializers.
    """
    import onnx
    from onnx import numpy_helper

    from synth.runtime.model import ModelError

    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    try:
        training = json.loads(meta["training_data"])
        g = make_generator(NetConfig.from_dict(training["net"]))
        modules = dict(g.named_modules())
        weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in proto.graph.initializer}
        state = {"pitch_spectrum": weights["generator.pitch_spectrum"]} if "generator.pitch_spectrum" in weights else {}
        scalars: dict[str, list[float]] = {"Add": [], "Mul": []}
        for node in proto.graph.node:
            if node.op_type == "Identity" and node.input[0] in weights:  # the export shares equal tensors this way
                weights[node.output[0]] = weights[node.input[0]]
            if node.op_type in ("Conv", "Gemm") and node.name.startswith("/generator/"):  # "/generator/blocks.0.1/Conv"
                name = node.name.split("/")[2]
                modules[name].scale = 1.0
                state[f"{name}.weight"], state[f"{name}.bias"] = weights[node.input[1]], weights[node.input[2]]
            scalars.setdefault(node.op_type, []).extend(
                float(weights[x]) for x in node.input if x in weights and weights[x].ndim == 0)
        missing = g.load_state_dict(state, strict=False).missing_keys
        if [k for k in missing if not k.startswith("to_rgb.")]:  # the 2d net's coarser outputs are not in the graph
            raise KeyError(", ".join(missing))
        if "mag_range" in meta:
            lo, hi = json.loads(meta["mag_range"])
        else:
            (lo,), (span,) = set(scalars["Add"]), set(scalars["Mul"])  # each decoding step repeats them
            hi = lo + span
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
        raise ModelError(f"model file {path} does not hold a generator exported by gansynth-live "
                         f"({type(e).__name__}: {e})") from None
    codec = IFMel(mel=training["representation"] == "IF-Mel")
    codec.set_range(lo, hi)
    return NoteSynth(g, codec).eval(), training


def checkpoint_from_model_file(path: str | os.PathLike) -> dict:
    """An exported .onnx as a `train --init-from` checkpoint: its generator as G and as the EMA, no critic and no
    encoder (a run from it trains those afresh), so training can go on after the run's own checkpoint is gone."""
    model, training = load_model_file(path)
    fresh = make_generator(model.generator.cfg)
    loaded = dict(model.generator.named_modules())
    state = dict(model.generator.state_dict())
    for name, m in fresh.named_modules():
        if getattr(m, "scale", None) is not None and loaded[name].scale != m.scale:  # folded on export
            state[f"{name}.weight"] = state[f"{name}.weight"] / m.scale
    return {"net": training["net"], "mel": model.codec.mel, "features": FEATURES_VERSION, "G": state, "G_ema": state,
            "D": None, "E": None, "mag_range": model.codec.mag_range.tolist(), "step": training.get("steps"),
            "images": training.get("images"), "trained_s": training.get("train_seconds", 0),
            "hardware": training.get("hardware"), "objectives": training.get("objectives"),
            "pretrained": training.get("pretrained")}


def objective_stretches(objectives: dict | list | None, steps: int | None) -> list[dict]:
    """A run's objectives as stretches of steps, `[{"steps": [first, last], <weights>}, ...]`: a run resumed with
    other weights has one stretch each. Files from before the stretches held one set of weights for all `steps`."""
    if isinstance(objectives, list):
        return objectives
    return [{"steps": [0, steps or 0]} | (objectives or {})]


def _objectives(training: dict) -> str:
    """The model card's words for the generator's objectives beside the critic's (train --reconstruct, --keep-presets,
    --even-morphs), with their weights; a stretch of steps each where a resume changed them."""
    stretches = objective_stretches(training.get("objectives"), training.get("steps", training.get("step")))
    if len(stretches) == 1:
        return _weights(stretches[0])
    return "; ".join(f"steps {s['steps'][0]}–{s['steps'][1]}: {_weights(s)}" for s in stretches)


def _weights(o: dict) -> str:
    words = ["WGAN-GP with the pitch classifier's loss"]
    if o.get("reconstruct"):
        words.append(f"an encoder's reconstruction of real notes (weight {o['reconstruct']:g})")
    if o.get("keep_presets"):
        words.append(f"{o['keep_presets']} presets kept as the starting generator made them "
                     f"(weight {o['keep_weight']:g})")
    if o.get("even_morphs"):
        words.append(f"an even speed of the sound along slerp between them (weight {o['even_morphs']:g})")
    return ", ".join(words)


def _pretrained(training: dict) -> str:
    """The model card's words for a run that started from another run's weights (train --init-from), and for what
    that run started from in turn."""
    p = training.get("pretrained")
    if not p:
        return ""
    older = (" on the older feature definition (phase without the Hann alternation)"
             if p.get("features", 1) < FEATURES_VERSION else "")
    how = f"; {_objectives(p)}" if p.get("objectives") else ""
    return (f", after starting from another run's weights ({p.get('step', '?')} steps, "
            f"{p.get('trained_s', 0) / 60:.0f} min on {p.get('hardware', '?')}{older}{how}{_pretrained(p)})")


def model_card(name: str, training: dict, metrics: list[dict], presets: list | None = None,
               curves: list[dict | list[dict]] | None = None, pictures: list[str] | None = None) -> str:
    """Markdown model card built from the checkpoint's facts, the measured eval rows, the presets (with the
    classifier scores `presets find` stored in them), slerp curves and spectrogram pictures."""
    from synth.model.evaluate import format_table

    net = training["net"]
    lines = [
        f"# Model card: {name}", "",
        "GANSynth-style generator G(z, pitch) exported by `gansynth-live export` with the inverse STFT in the graph.",
        "", "| | |", "|---|---|",
        f"| data | NSynth-like notes rendered by FluidSynth from {', '.join(training['soundfonts'] or [])}; "
        f"{training['dataset_notes']} notes built, {training['train_notes']} in the training split; "
        + "; ".join(f"{k} {v}" for k, v in training.get("labels", {}).items()) + " |",
        f"| representation | {training['representation']}, {training['resolution']}, 16 kHz, 4 s notes |",
        f"| architecture | {ARCHITECTURES[net.get('arch', '2d')]}, widths {tuple(net['channels'])}, "
        + ("IF not learned: each bin turns at the pitch's harmonic nearest to it, " if net.get("fixed_if") else "") +
        f"z {net['z_dim']}-d + 61-way pitch one-hot; the decoder lets a released note only fade (after 3 s no "
        f"frame louder than the quietest release frame before it + {RELEASE_RISE_DB:g} dB) |",
        f"| training | {training['steps']} steps, {training['images']} images, batch {training.get('batch', '?')}, "
        f"{training['train_seconds'] / 60:.0f} min on {training['hardware']}{_pretrained(training)} |",
        f"| objectives | {_objectives(training)} |",
        "", "## Evaluation (`gansynth-live eval`)", "", "```", format_table(metrics) if metrics else "(not measured)",
        "```", ""] + [f"{r['set']}: {r['families_of_256_z']} distinct classifier families among 256 random latents."
                      for r in metrics if "families_of_256_z" in r] + ["",
        "PA: the evaluation classifier's pitch accuracy. FID and NDB/K: on that classifier's 128-d features against "
        "real training notes. Cents: YIN f0 over 0.1-1.0 s versus the asked pitch. Families: distinct GM families "
        "the classifier assigns. Own family / 2nd clf: share of a preset's 61 notes that the evaluation classifier / "
        "a second one (another seed, never searched against) puts in the preset's family. "
        "No DC / no clip / attack / decays: fractions of notes with |mean| < 0.01, peak "
        "under full scale, 10 % of the peak within 50 ms, and the last 100 ms 60 dB under the peak.", ""]
    if presets:
        lines += ["## Presets (`gansynth-live presets find` or `presets encode`)", "",
                  "| preset | family | how it was checked |", "|---|---|---|"]
        lines += [f"| {p.name} | {p.family} | {p.description} |" for p in presets] + [""]
    if curves:
        from synth.model.timbre_map import format_curve, format_pairs

        lines += ["## Interpolation (`gansynth-live presets curve`)", ""]
        for curve in curves:
            lines += ["```", format_pairs(curve) if isinstance(curve, list) else format_curve(curve), "```", ""]
    if pictures:
        lines += ["## Spectrograms (`gansynth-live presets pictures`)", "",
                  "Log magnitude, 0–8 kHz, 4 s per note, MIDI 36/48/60/72/84 left to right.", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in pictures] + [""]
    return "\n".join(lines)
