"""Evaluation as in the GANSynth paper: pitch accuracy (PA), FID and NDB on the features of a pitch/family classifier
trained on the real note set, plus an algorithmic pitch check (YIN) in cents.

The real held-out notes go through the same code and make the reference row.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synth.core.files import replacing, write_atomic
from synth.model import dataset
from synth.model.hnsynth import mel_filters
from synth.model.voice import N_PITCHES, PITCH_MIN

if TYPE_CHECKING:
    from synth.runtime.model import NoteModel

SAMPLE_RATE = dataset.SAMPLE_RATE

N_FAMILIES = len(dataset.FAMILIES)


class NoteClassifier(nn.Module):
    """Log-mel spectrogram of a 4 s note at 48 kHz → (128-d features, pitch logits [61], family logits [14]).

    Frequency position is kept to the end (time is averaged, frequency flattened) because pitch lives there.
    """

    fb: torch.Tensor  # buffers (register_buffer), named here for the type checker
    window: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("fb", torch.from_numpy(mel_filters(256, 4096)), persistent=False)  # hears above 8 kHz too
        self.register_buffer("window", torch.hann_window(4096), persistent=False)
        chans = (1, 16, 32, 64)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans, chans[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm2d(b) for b in chans[1:])
        self.embed = nn.Linear(64 * 32, 128)
        self.pitch = nn.Linear(128, N_PITCHES)
        self.family = nn.Linear(128, N_FAMILIES)

    def spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, 192000] audio → [B, 1, 32, 256] log-mel (128 frames of 31 ms pooled 4x in time)."""
        with torch.no_grad():
            spec = torch.stft(audio, 4096, 1500, window=self.window, return_complex=True).abs()[..., :128]
            logmel = torch.log(torch.matmul(self.fb, spec) + 1e-5).transpose(1, 2)[:, None]
            return (F.avg_pool2d(logmel, (4, 1)) + 5.0) / 5.0

    def forward(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = spec
        for conv, norm in zip(self.convs, self.norms):
            x = F.max_pool2d(F.relu(norm(conv(x))), 2)
        feats = F.relu(self.embed(x.mean(dim=2).flatten(1)))
        return feats, self.pitch(feats), self.family(feats)


def spectrograms(model: NoteClassifier, audio: np.ndarray, batch: int = 64) -> torch.Tensor:
    """Classifier inputs for int16 or float audio, computed in batches."""
    out = []
    for i in range(0, len(audio), batch):
        chunk = audio[i:i + batch]
        x = dataset.NoteSet.to_float(chunk) if chunk.dtype == np.int16 else chunk.astype(np.float32)
        out.append(model.spectrogram(torch.from_numpy(x)))
    return torch.cat(out)


CLASSIFIER_FILE = "classifier-v3.pt"  # v3: 48 kHz log-mel to 20 kHz (v2: 16 kHz IF-Mel magnitudes)


def classifier_file(seed: int) -> str:
    """Cache file of the classifier trained with this seed (seed 0 is the evaluation classifier)."""
    return CLASSIFIER_FILE if seed == 0 else CLASSIFIER_FILE.replace(".pt", f"-seed{seed}.pt")


def train_classifier(data_dir: Path, limit: int | None = None, epochs: int = 12, seed: int = 0,
                     progress: bool = True) -> NoteClassifier:
    """Train a classifier on real training notes and cache it in data_dir (see classifier_file); seed 0 is the
    evaluation classifier, another seed an independent second opinion (other initial weights and note order)."""
    path = Path(data_dir) / classifier_file(seed)
    model = NoteClassifier()
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    torch.manual_seed(seed)
    notes = dataset.load(data_dir, "train", limit=limit, seed=seed)
    specs = spectrograms(model, notes.audio)
    pitch = torch.from_numpy(notes.pitch - PITCH_MIN)
    family = torch.from_numpy(notes.family)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * math.ceil(len(specs) / 64))
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(specs), generator=gen)
        total = 0.0
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            _, lp, lf = model(specs[idx])
            loss = F.cross_entropy(lp, pitch[idx]) + F.cross_entropy(lf, family[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if progress:
            print(f"classifier epoch {epoch + 1}/{epochs}: loss {total / len(order):.3f}", flush=True)
    model.eval()
    with replacing(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return model


def classify(model: NoteClassifier, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features [N,128], pitch probabilities [N,61], family probabilities [N,14])."""
    return classify_spectrograms(model, spectrograms(model, audio))


@torch.no_grad()
def classify_spectrograms(model: NoteClassifier, specs: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`classify` for spectrograms already made by `spectrograms`."""
    feats, pitch, family = [], [], []
    for i in range(0, len(specs), 256):
        f, lp, lf = model(specs[i:i + 256])
        feats.append(f)
        pitch.append(lp.softmax(1))
        family.append(lf.softmax(1))
    return torch.cat(feats).numpy(), torch.cat(pitch).numpy(), torch.cat(family).numpy()


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(ca cb) = sum of sqrt eigenvalues of the symmetric sqrt(ca) cb sqrt(ca).
    w, v = np.linalg.eigh(ca)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ cb @ root_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.sqrt(np.clip(cross, 0, None)).sum())


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> np.ndarray:
    """Plain Lloyd's k-means; returns the centres."""
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iters):
        labels = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([x[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return centres


def ndb(reference: np.ndarray, samples: np.ndarray, centres: np.ndarray, alpha: float = 0.05) -> float:
    """Share of k-means bins whose sample proportion differs significantly from the reference (NDB/K)."""
    def proportions(x: np.ndarray) -> np.ndarray:
        labels = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        return np.bincount(labels, minlength=len(centres)) / len(x)
    p, q = proportions(reference), proportions(samples)
    n, m = len(reference), len(samples)
    pooled = (p * n + q * m) / (n + m)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    z = np.abs(p - q) / np.maximum(se, 1e-12)
    return float((z > NormalDist().inv_cdf(1 - alpha / 2)).mean())


YIN_BATCH = 64


def yin_f0(audio: np.ndarray, sr: int = SAMPLE_RATE, fmin: float = 30.0, fmax: float = 1200.0,
           start: float = 0.1, stop: float = 1.0, threshold: float = 0.15) -> np.ndarray:
    """Median YIN f0 (Hz) of each note over start..stop seconds; NaN where no frame is voiced. Notes go through
    YIN_BATCH at a time: its frames of a thousand 4 s notes took more than 5 GB at once."""
    out = np.full(len(audio), np.nan)
    for i in range(0, len(audio), YIN_BATCH):
        f0 = yin_f0_frames(audio[i:i + YIN_BATCH], sr, fmin, fmax, start, stop, threshold)
        voiced = np.flatnonzero(np.isfinite(f0).any(1))
        out[i + voiced] = np.nanmedian(f0[voiced], axis=1)
    return out


def yin_f0_frames(audio: np.ndarray, sr: int = SAMPLE_RATE, fmin: float = 30.0, fmax: float = 1200.0,
                  start: float = 0.1, stop: float = 1.0, threshold: float = 0.15, window: int = 1024) -> np.ndarray:
    """YIN f0 (Hz) of each note [N, samples] in frames of `window` samples every 512 over start..stop seconds
    [N, frames]; NaN where a frame is unvoiced."""
    tau_max, hop = int(sr / fmin) + 1, 512
    tau_min = int(sr / fmax)
    seg = audio[:, int(start * sr):int(stop * sr)].astype(np.float64)
    length = window + tau_max
    starts = np.arange(0, seg.shape[1] - length, hop)
    if len(starts) == 0:
        return np.full((len(audio), 0), np.nan)
    frames = np.stack([seg[:, s:s + length] for s in starts], axis=1)  # [N, T, L]
    n_fft = 1 << (2 * length - 1).bit_length()
    a = frames[..., :window]
    acf = np.fft.irfft(np.conj(np.fft.rfft(a, n_fft)) * np.fft.rfft(frames, n_fft), n_fft)[..., :tau_max + 1]
    sq = np.concatenate([np.zeros(frames.shape[:2] + (1,)), np.cumsum(frames**2, axis=-1)], axis=-1)
    taus = np.arange(tau_max + 1)
    e2 = sq[..., taus + window] - sq[..., taus]
    d = np.maximum(sq[..., window:window + 1] + e2 - 2 * acf, 0.0)
    cmnd = d[..., 1:] * taus[1:] / np.maximum(np.cumsum(d[..., 1:], axis=-1), 1e-12)  # index i ↔ tau i+1
    cmnd[..., :tau_min - 1] = np.inf
    below = cmnd < threshold
    # First dip under the threshold, walked down to its local minimum; else the global minimum.
    first = np.where(below.any(-1), below.argmax(-1), cmnd.argmin(-1))
    idx = first.copy()
    for _ in range(tau_max):
        nxt = np.minimum(idx + 1, cmnd.shape[-1] - 1)
        step = np.take_along_axis(cmnd, nxt[..., None], -1)[..., 0] < np.take_along_axis(cmnd, idx[..., None], -1)[..., 0]
        if not step.any():
            break
        idx = np.where(step, nxt, idx)
    best = np.take_along_axis(cmnd, idx[..., None], -1)[..., 0]
    lo = np.take_along_axis(cmnd, np.maximum(idx - 1, 0)[..., None], -1)[..., 0]
    hi = np.take_along_axis(cmnd, np.minimum(idx + 1, cmnd.shape[-1] - 1)[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(np.isfinite(lo + hi), 0.5 * (lo - hi) / (lo - 2 * best + hi), 0.0)
    tau = idx + 1 + np.clip(np.nan_to_num(shift), -1, 1)
    loud = sq[..., window] / window > 1e-8  # frames quieter than -80 dBFS RMS are unvoiced
    return np.where((best < 0.35) & loud, sr / tau, np.nan)


def cents_error(audio: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """|cents| between YIN's f0 and each asked MIDI pitch (inf where unvoiced)."""
    f0 = yin_f0(audio)
    want = 440.0 * 2 ** ((pitches - 69) / 12)
    with np.errstate(invalid="ignore"):
        err = np.abs(1200 * np.log2(f0 / want))
    return np.where(np.isfinite(err), err, np.inf)


def sound_checks(audio: np.ndarray, sr: int = SAMPLE_RATE) -> dict:
    """Fractions of notes that pass each check: DC under 0.01, no sample at full scale, an attack (10 % of the peak
    reached within 50 ms), and a release that ends in silence (last 100 ms at least 60 dB under the peak)."""
    peak = np.abs(audio).max(axis=1) + 1e-12
    onset = np.argmax(np.abs(audio) >= 0.1 * peak[:, None], axis=1) / sr
    return {"no_dc": float((np.abs(audio.mean(axis=1)) < 0.01).mean()),
            "no_clipping": float((peak < 0.999).mean()),
            "attack": float((onset <= 0.05).mean()),
            "decays": float(decays(audio, sr).mean())}


def decays(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Per note: does its release end in silence (last 100 ms at least 60 dB under the note's peak)?"""
    peak = np.abs(audio).max(axis=1) + 1e-12
    return np.sqrt(np.mean(np.square(audio[:, -sr // 10:]), axis=1)) <= peak * 10 ** (-60 / 20)


def score(name: str, audio: np.ndarray, pitches: np.ndarray, model: NoteClassifier, ref_feats: np.ndarray,
          centres: np.ndarray, families: np.ndarray | None = None, family: str = "",
          check: NoteClassifier | None = None) -> dict:
    """One row of the evaluation table; with the notes' true families (real notes) also the classifier's family
    accuracy, which says how far its family checks of presets can be trusted; with a preset's family the share of
    its notes the classifier puts in that family (how far across the keyboard the preset keeps its instrument),
    and the same share by the `check` classifier, which `presets find --refine` never searched against."""
    feats, pp, pf = classify(model, audio)
    cents = cents_error(audio, pitches)
    row = {"set": name, "notes": int(len(audio)),
           "pitch_accuracy": float((pp.argmax(1) == pitches - PITCH_MIN).mean()),
           "fid": fid(feats, ref_feats), "ndb_over_k": ndb(ref_feats, feats, centres),
           "median_cents_error": float(np.median(cents)), "within_50_cents": float((cents <= 50).mean()),
           "families": int(len(np.unique(pf.argmax(1))))}
    if families is not None:
        row["family_accuracy"] = float((pf.argmax(1) == families).mean())
    if family in dataset.FAMILIES:
        j = dataset.FAMILIES.index(family)
        row["own_family"] = float((pf.argmax(1) == j).mean())
        if check is not None:
            row["own_family_check"] = float((classify(check, audio)[2].argmax(1) == j).mean())
    return row | sound_checks(audio)


def render_at_set_rate(model: NoteModel, z: np.ndarray, pitches: np.ndarray, velocities: np.ndarray | None = None,
                       batch: int = 32) -> np.ndarray:
    """Notes of a NoteModel at the note set's rate and length (an older 16 kHz model is resampled), so the
    classifier and every measure hear ours as they hear the real notes."""
    from synth.core.resample import resample

    out = np.concatenate([model.render(z[i:i + batch], pitches[i:i + batch],
                                       None if velocities is None else velocities[i:i + batch])
                          for i in range(0, len(z), batch)])
    if model.info.sample_rate != SAMPLE_RATE:
        out = resample(out, int(round(out.shape[1] * SAMPLE_RATE / model.info.sample_rate)))
    length = int(dataset.NOTE_SECONDS * SAMPLE_RATE)
    return np.pad(out, ((0, 0), (0, max(0, length - out.shape[1]))))[:, :length]


def generated_notes(model_path: str | os.PathLike, per_pitch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Render per_pitch random latents at every pitch of the model (velocities drawn from the note set's
    layers) through the ONNX runtime."""
    from synth.runtime.model import NoteModel

    m = NoteModel(model_path)
    rng = np.random.default_rng(seed)
    pitches = np.repeat(np.arange(m.info.pitch_min, m.info.pitch_max + 1), per_pitch)
    z = rng.standard_normal((len(pitches), m.info.z_dim)).astype(np.float32)
    vel = rng.choice(dataset.DEFAULT_VELOCITIES, len(pitches)).astype(np.float32) / 127
    return render_at_set_rate(m, z, pitches, vel), pitches


def preset_notes(model_path: str | os.PathLike, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One latent rendered at every pitch of the model (at its top velocity layer)."""
    from synth.runtime.model import NoteModel

    m = NoteModel(model_path)
    pitches = np.arange(m.info.pitch_min, m.info.pitch_max + 1)
    zs = np.repeat(np.asarray(z, np.float32)[None], len(pitches), axis=0)
    return render_at_set_rate(m, zs, pitches), pitches


def random_z_families(model_path: str | os.PathLike, clf: NoteClassifier, n: int = 256, seed: int = 5) -> int:
    """Distinct families the classifier gives n random latents (mean probabilities over MIDI 48/60/72): 1 = collapse."""
    from synth.model.timbre_map import family_probabilities
    from synth.runtime.model import NoteModel

    m = NoteModel(model_path)
    z = np.random.default_rng(seed).standard_normal((n, m.info.z_dim)).astype(np.float32)
    return int(len(np.unique(family_probabilities(m, clf, z).argmax(1))))


def evaluate(data_dir: Path, model_path: str | os.PathLike | None = None, per_pitch: int = 15, real_limit: int = 915,
             k: int = 20, progress: bool = True, presets: list | None = None,
             checkpoint: str | os.PathLike | None = None) -> list[dict]:
    """Reference row (real held-out notes); given a training checkpoint, the same notes rebuilt through it (their
    encoder latents decoded at their own pitch and velocity: how far the decoder is from the real notes, the
    prior and the pitch aside); given a model, the generated row (random latents, with the number of families among
    256 random latents) and a row per preset (all 61 pitches)."""
    clf = train_classifier(Path(data_dir), progress=progress)
    ref = dataset.load(data_dir, "train", limit=2000, seed=1)
    ref_feats = classify(clf, ref.audio)[0]
    centres = kmeans(ref_feats, k)
    test = dataset.load(data_dir, "test", limit=real_limit, seed=2)
    rows = [score("real held-out", dataset.NoteSet.to_float(test.audio), test.pitch, clf, ref_feats, centres,
                  test.family)]
    if checkpoint is not None:
        from synth.model.voice_eval import checkpoint_renderer

        rebuilt = checkpoint_renderer(checkpoint)(test.audio, test.pitch, test.velocity, test.family)
        rows.append(score(f"rebuilt ({Path(checkpoint).name})", rebuilt, test.pitch, clf, ref_feats, centres,
                          test.family))
    if model_path is not None:
        audio, pitches = generated_notes(model_path, per_pitch)
        row = score(f"generated ({Path(model_path).name})", audio, pitches, clf, ref_feats, centres)
        row["families_of_256_z"] = random_z_families(model_path, clf)
        rows.append(row)
        check = train_classifier(Path(data_dir), seed=1, progress=progress) if presets else None
        for preset in presets or []:
            audio, pitches = preset_notes(model_path, preset.z)
            rows.append(score(f"preset {preset.name}", audio, pitches, clf, ref_feats, centres, family=preset.family,
                              check=check))
    return rows


def format_table(rows: list[dict]) -> str:
    cols = ("set", "notes", "pitch_accuracy", "fid", "ndb_over_k", "median_cents_error", "within_50_cents", "families",
            "family_accuracy", "own_family", "own_family_check", "no_dc", "no_clipping", "attack", "decays")
    head = ("set", "notes", "PA", "FID", "NDB/K", "median |cents|", "≤50 cents", "families", "family acc",
            "own family", "2nd clf", "no DC", "no clip", "attack", "decays")
    rows = [{c: r.get(c, "–") for c in cols} for r in rows]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) and math.isfinite(v) else str(v)  # noqa: E731
    table = [head] + [tuple(fmt(r[c]) for c in cols) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in table)


def save_json(rows: list[dict], path: str | os.PathLike) -> None:
    """The measured rows as JSON (atomic)."""
    write_atomic(path, json.dumps(rows, indent=2))
