"""ONNX export of the voice: (z, pitch, velocity) → audio at 48 kHz, the harmonic-plus-noise synthesis inside the
graph, with the contract's metadata. The file appears only when complete."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from synth import __version__
from synth.core.files import replacing, write_atomic
from synth.model.hnsynth import HOLD_SECONDS, HOP, NOTE_SAMPLES, SAMPLE_RATE
from synth.model.one_shot import encoder_path, save_encoder
from synth.model.voice import PITCH_MAX, PITCH_MIN, Voice

VELOCITY_LAYERS = (40, 80, 120)
DECODER = "harmonic-plus-noise"
PRIOR_NOTES = 1000  # training notes the prior map is fitted to
OBJECTIVE = ("VAE: multi-resolution STFT loss and average-spectrum loss on crops, whole-note band envelope loss, "
             "KL to N(0, I)")


def write_onnx(module: torch.nn.Module, path: str | os.PathLike, args: tuple[torch.Tensor, ...],
               input_names: list[str], metadata: dict[str, object]) -> None:
    """Export any (inputs) → audio module with a dynamic batch and the given metadata; atomic."""
    import onnx

    with replacing(path) as tmp:
        torch.onnx.export(module.eval(), args, str(tmp), input_names=input_names, output_names=["audio"],
                          dynamic_axes={k: {0: "batch"} for k in input_names + ["audio"]}, opset_version=17,
                          dynamo=False)
        proto = onnx.load(str(tmp))
        meta = {"version": __version__} | metadata
        del proto.metadata_props[:]
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v if isinstance(v, str) else json.dumps(v)
        onnx.save(proto, str(tmp))


def export_voice(voice: Voice, path: str | os.PathLike, metadata: dict[str, object]) -> None:
    """Write the voice with the contract's metadata (`metadata` adds to it: training_data, metrics, ...)."""
    z_dim = voice.generator.cfg.z_dim
    args = (torch.zeros(2, z_dim), torch.tensor([PITCH_MIN, PITCH_MAX]), torch.tensor([0.3, 0.9]))
    meta = {"sample_rate": SAMPLE_RATE, "z_dim": z_dim, "pitch_min": PITCH_MIN, "pitch_max": PITCH_MAX,
            "note_seconds": NOTE_SAMPLES / SAMPLE_RATE, "release_seconds": NOTE_SAMPLES / SAMPLE_RATE - HOLD_SECONDS,
            "velocity_layers": list(VELOCITY_LAYERS), "control_rate": SAMPLE_RATE / HOP, "decoder": DECODER,
            "net": voice.generator.cfg.to_dict()} | metadata
    write_onnx(voice, path, args, ["z", "pitch", "velocity"], meta)


def voice_from_model_file(path: str | os.PathLike) -> Voice:
    """Rebuild the voice an exported file was made from (its generator's weights are the graph's initializers,
    named by parameter), so training can go on from a shipped model when the checkpoint is gone."""
    import onnx
    from onnx import numpy_helper

    from synth.model.voice import VoiceConfig

    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("decoder") != DECODER:
        raise ValueError(f"{path} is not a {DECODER} model")
    voice = Voice(VoiceConfig.from_dict(json.loads(meta["net"])))
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in proto.graph.initializer}
    state = {k: weights[f"generator.{k}"] for k in voice.generator.state_dict() if f"generator.{k}" in weights}
    missing = voice.generator.load_state_dict(state, strict=False).missing_keys
    if missing:
        raise ValueError(f"{path} lacks generator weights {', '.join(missing[:3])}")
    for name in ("prior_mean", "prior_map"):  # files from before the prior map have none: N(0, I)
        if name in weights:
            getattr(voice, name).copy_(weights[name])
    return voice


def _objective_extras(cfg: dict) -> str:
    """The optional training terms a run used, as the card's objective line goes on."""
    extras = [f"harmonic level loss, weight {cfg['harmonic_weight']:g}"] if cfg.get("harmonic_weight") else []
    if cfg.get("noise_weight"):
        extras.append(f"noise course loss, weight {cfg['noise_weight']:g}")
    if cfg.get("texture_weight"):
        extras.append(f"texture (modulation spectrum) loss, weight {cfg['texture_weight']:g}")
    if cfg.get("onset_weight"):
        extras.append(f"onset envelope loss, weight {cfg['onset_weight']:g}")
    if cfg.get("vibrato_weight"):
        extras.append(f"vibrato loss{' (depth and rate)' if cfg.get('vibrato_any_phase') else ''}, weight "
                      f"{cfg['vibrato_weight']:g}")
    if cfg.get("mel_weight"):
        extras.append(f"log-mel loss, weight {cfg['mel_weight']:g}")
    if cfg.get("spectrum_weight", 0.1) != 0.1:
        extras.append(f"average-spectrum weight {cfg['spectrum_weight']:g}")
    if cfg.get("adversarial"):
        extras.append(f"adversarial stage (spectrogram discriminator, weight {cfg['adversarial']:g})")
    if cfg.get("noise_adversarial"):
        extras.append(f"noise adversarial stage (between-partials critic, weight {cfg['noise_adversarial']:g})")
    return "".join(f"; {e}" for e in extras)


def _data_facts(data_dir: str) -> dict:
    from synth.model.dataset import build_summary

    summary = build_summary(data_dir)
    return {"soundfonts": summary.get("soundfonts"), "dataset_notes": summary.get("notes"),
            "dataset_rate": summary.get("sample_rate")}


def fit_prior_to_notes(voice: Voice, encoder: torch.nn.Module, data_dir: str | os.PathLike) -> int:
    """Fit the voice's prior map (Voice.fit_prior) to the encoder's posteriors of up to PRIOR_NOTES training notes
    of the note set; returns how many notes."""
    import numpy as np

    from synth.model import dataset
    from synth.model.voice import MelFeatures

    notes = dataset.load(Path(data_dir), "train", limit=PRIOR_NOTES, seed=7)
    mel, means, variances = MelFeatures(), [], []
    with torch.no_grad():
        for i in range(0, len(notes.pitch), 32):
            mean, logvar = encoder(mel(torch.from_numpy(notes.to_float(notes.audio[i:i + 32]))),
                                   torch.from_numpy(notes.pitch[i:i + 32]),
                                   torch.from_numpy(notes.velocity[i:i + 32].astype(np.float32) / 127))
            means.append(mean)
            variances.append(logvar.exp())
    voice.fit_prior(torch.cat(means), torch.cat(variances))
    return len(notes.pitch)


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, metrics: dict | list,
                      data_dir: str | os.PathLike | None = None) -> dict:
    """Export a training checkpoint's voice, its prior map fitted to the note set it was trained on (`data_dir`,
    default the run's own; without one the prior stays N(0, I)); returns the training facts stored in the file."""
    from synth.model.voice_train import load_voice

    voice, encoder, facts = load_voice(checkpoint)
    cfg = facts.get("config") or {}
    data = Path(data_dir or cfg.get("data_dir") or "")
    if data_dir is not None and not (data / "metadata.csv").is_file():
        from synth.model.dataset import DatasetError

        raise DatasetError(f"{data} holds no note set (no metadata.csv) to fit the prior map to")
    prior = "N(0, I): no note set to fit it to"
    parent = cfg.get("init_from") or ""
    if parent.endswith(".onnx") and Path(parent).is_file() and data_dir is None:
        # A fine-tune keeps the latent space of the model it grew from, so that model's presets keep their sound.
        shipped = voice_from_model_file(parent)
        voice.prior_mean.copy_(shipped.prior_mean)
        voice.prior_map.copy_(shipped.prior_map)
        prior = f"kept from {Path(parent).name}, the model this run was fine-tuned from"
    elif (data / "metadata.csv").is_file():
        fitted = fit_prior_to_notes(voice, encoder, data)
        prior = f"Gaussian fit of the encoder's posteriors of {fitted} training notes"
    training = _data_facts(cfg.get("data_dir", "")) | {
        "decoder": DECODER + (" with a per-note unison" if facts["net"].get("unison") else ""),
        "objective": OBJECTIVE + _objective_extras(cfg),
        "steps": facts["step"], "train_seconds": round(facts["trained_s"]), "train_notes": facts["train_notes"],
        "batch": cfg.get("batch"), "crop_frames": cfg.get("crop_frames"), "kl_weight": cfg.get("kl_weight"),
        "cross_pitch": cfg.get("cross_pitch", 0.0), "cross_velocity": cfg.get("cross_velocity", 0.0),
        "hardware": facts["hardware"], "net": facts["net"], "pretrained": cfg.get("init_from"), "prior": prior}
    export_voice(voice, out, {"training_data": training, "metrics": metrics})
    save_encoder(encoder, voice, out)  # presets import encodes recorded notes with it
    return training


def reexport_model_file(path: str | os.PathLike, out: str | os.PathLike, metrics: dict | list | None) -> dict:
    """Export a model file's voice again with this version's graph, keeping its metrics unless new ones are given."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    voice = voice_from_model_file(path)
    training = json.loads(meta.get("training_data", "{}"))
    export_voice(voice, out, {"training_data": training,
                              "metrics": metrics if metrics is not None else json.loads(meta.get("metrics", "{}"))})
    encoder = encoder_path(path)
    if encoder.is_file() and encoder.resolve() != encoder_path(out).resolve():
        with replacing(encoder_path(out)) as tmp:  # the same generator: its encoder still fits
            shutil.copyfile(encoder, tmp)
    return training


def write_card(card: str | os.PathLike, model_path: str | os.PathLike, training: dict, metrics: dict | list) -> None:
    """A Markdown model card: what the model is, how it was trained, and every measured number as the tables `eval`
    prints (atomic)."""
    lines = [f"# Model card: {Path(model_path).name}", "",
             "GANSynth Live's voice: G(z, pitch, velocity) → harmonic-plus-noise controls at 200 frames/s → 48 kHz "
             "audio, the synthesis inside the ONNX graph. Trained by `gansynth-live train` on this machine's "
             "FluidSynth renders of General MIDI soundfonts.", "", "## Training", "", "| fact | value |", "|---|---|"]
    lines += [f"| {k} | {json.dumps(v) if isinstance(v, (dict, list)) else v} |" for k, v in training.items()]
    lines += ["", "## Measured (`gansynth-live eval`)", ""] + _metric_lines(metrics)
    write_atomic(card, "\n".join(lines))


def _metric_lines(metrics: dict | list) -> list[str]:
    """eval's rows as its own tables: the classifier rows, then each sound row (real / ours per family, and the
    spectral centroid against velocity); anything else as JSON."""
    from synth.model.evaluate import format_table
    from synth.model.voice_eval import VELOCITY_HEADING, format_family_table, format_velocity_table

    rows = metrics if isinstance(metrics, list) else []
    scored = [r for r in rows if "pitch_accuracy" in r]
    sound = [r for r in rows if "families" in r and isinstance(r["families"], dict)]
    lines: list[str] = []
    if scored:
        lines += ["```", format_table(scored)] + [
            f"{r['set']}: {r['families_of_256_z']} distinct classifier families among 256 random latents"
            for r in scored if "families_of_256_z" in r] + ["```", ""]
    for r in sound:
        lines += [f"Sound by family, real / ours ({r['set']}, {r.get('notes')} held-out notes):", "", "```",
                  format_family_table(r["families"]), "```", ""]
        centroids = r.get("brightness_by_velocity") or {}  # not "velocity_centroid": it compared unlike notes
        if centroids:
            lines += [VELOCITY_HEADING + ":", "", "```",
                      format_velocity_table(centroids, r.get("brightness_rise_cents") or {}), "```", ""]
    rest = [r for r in rows if r not in scored and r not in sound] if rows else [metrics] if metrics else []
    if rest:
        lines += ["```json", json.dumps(rest, indent=1), "```", ""]
    return lines
