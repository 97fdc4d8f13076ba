"""The real notes' vibrato, tracked, and a loss that asks the voice's pitch curve to follow it. The spectral
losses pay more for a vibrato a little out of phase than for none, so the voice learnt almost none (1.6-1.8
cents of wobble on reeds and pipes against the real notes' 5-8, docs/models.md), and its held notes came out
too clean between the partials. A soundfont note's vibrato (its sample's and its LFO's) runs the same way from
every note-on, so the tracked curve is a target the decoder can meet, phase and all.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from synth.core.notes import HOLD_SECONDS, SAMPLE_RATE
from synth.model import dataset
from synth.model.sound_metrics import peak_cents

N_FFT = 4096                    # 85 ms frames: the partials of an A1 (55 Hz) still apart
TRACK_HOP = 960                 # 20 ms: vibrato (4-7 Hz) and slower drift
PARTIALS = 12                   # the two strongest of the first 12 harmonics (below 6 kHz) are tracked
TOP_HZ = 6000.0
SEARCH = 0.03                   # each peak is looked for within ±3 % of k·f0
AGREE_CENTS = 6.0               # a frame counts where both partials move together: a vibrato, not beating
RANGE = np.log(1e3)             # and where both are within 30 dB of their loudest held frame
FLOOR = np.log(1e-2)            # and louder than a sine 80 dB under full scale (its peak power through the window)
HELD = (0.15, HOLD_SECONDS - 0.1)
MIN_FRAMES = 20                 # a note with fewer trusted frames gives no target
CENTS_SCALE = 10.0              # the loss in units of 10 cents
RATE_BLUR_HZ = 1.0              # the any-phase loss compares the curves' rates this coarsely


def track(audio: np.ndarray, pitch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per note of `audio` [B, samples] (float) at MIDI `pitch` [B]: its pitch curve in cents about its median,
    every TRACK_HOP samples from the onset, and a weight per frame (1 where the curve can be trusted, else 0;
    all 0 for a note it cannot follow, e.g. a struck one that has died away)."""
    power = torch.stft(torch.from_numpy(np.ascontiguousarray(audio, np.float32)), N_FFT, TRACK_HOP,
                       window=torch.hann_window(N_FFT), center=True, return_complex=True).abs().pow(2).numpy()
    n, bins, frames = power.shape
    df = SAMPLE_RATE / N_FFT
    t = np.arange(frames) * TRACK_HOP / SAMPLE_RATE
    held = (t > HELD[0]) & (t < HELD[1])
    cents, weight = np.zeros((n, frames), np.float32), np.zeros((n, frames), np.float32)
    f0s = 440.0 * 2.0 ** ((np.asarray(pitch, np.float64) - 69.0) / 12.0)
    for b in range(n):
        mean = power[b][:, held].mean(1)
        windows = [(max(2, int(k * f0s[b] * (1 - SEARCH) / df)), int(k * f0s[b] * (1 + SEARCH) / df) + 2, k)
                   for k in range(1, PARTIALS + 1) if k * f0s[b] <= TOP_HZ]
        windows = sorted((w for w in windows if w[1] > w[0] and w[1] < bins - 1), key=lambda w: -mean[w[0]:w[1]].max())
        if len(windows) < 2:
            continue
        curves, trusted = [], held.copy()
        for lo, hi, k in windows[:2]:
            curve, level = peak_cents(power[b].T, lo, hi, k * f0s[b], df)
            curves.append(curve)
            trusted &= (level > level[held].max() - RANGE) & (level > FLOOR)
        if trusted.sum() < MIN_FRAMES:
            continue
        # About their medians: a peak read between bins is off by a steady few cents that differs by partial.
        curves = [c - np.median(c[trusted]) for c in curves]
        trusted &= np.abs(curves[0] - curves[1]) < AGREE_CENTS
        if trusted.sum() < MIN_FRAMES:
            continue
        curve = 0.5 * (curves[0] + curves[1])
        cents[b] = np.where(trusted, curve - np.median(curve[trusted]), 0.0)
        weight[b] = trusted
    return cents, weight


def track_all(audio_int16: np.ndarray, pitch: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """track() over a whole note set's int16 audio, a chunk at a time (about 11 ms a note on one core)."""
    parts = [track(dataset.NoteSet.to_float(audio_int16[i:i + chunk]), pitch[i:i + chunk])
             for i in range(0, len(audio_int16), chunk)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _tracker_smoothing(hop: int) -> torch.Tensor:
    """The weights with which a frame of N_FFT samples averages the pitch at control rate `hop`: a peak read from
    a Hann-windowed frame follows the power-weighted mean frequency under it, so the voice's curve is seen through
    the same window before it is compared."""
    reach = (N_FFT // 2 - 1) // hop
    w = torch.cos(torch.pi * torch.arange(-reach, reach + 1, dtype=torch.float32) * hop / N_FFT).pow(4)  # Hann²
    return (w / w.sum()).reshape(1, 1, -1)


def _rate_blur(bins: int, seconds: float) -> torch.Tensor:
    """[bins, bins] spreads each rate bin's power over ±RATE_BLUR_HZ (Gaussian, power kept): a vibrato at 5.5 Hz
    asked for by a real one at 4.5 Hz then still gains from a deeper swing, and the rate comes from the overlap."""
    hz = torch.arange(bins, dtype=torch.float32) / seconds
    k = torch.exp(-0.5 * ((hz[:, None] - hz[None, :]) / RATE_BLUR_HZ) ** 2)
    return k / k.sum(1, keepdim=True)


def vibrato_loss(f0_dev: torch.Tensor, cents: torch.Tensor, weight: torch.Tensor, hop: int,
                 any_phase: bool = False) -> torch.Tensor:
    """Mean distance (in 10-cent units) between the voice's pitch curve `f0_dev` [B, control frames] (semitones
    at `hop` samples a frame, from the onset) and the real notes' tracked curves [B, tracked frames], over the
    frames the tracker trusts, each curve taken about its own mean there. With `any_phase`, between the curves'
    magnitude spectra instead: the vibrato's depth and rate, whenever it swings."""
    kernel = _tracker_smoothing(hop).to(f0_dev)
    seen = F.conv1d(100.0 * f0_dev[:, None], kernel, padding=kernel.shape[-1] // 2)[:, 0]
    step = TRACK_HOP // hop
    frames = min(cents.shape[1], (seen.shape[1] - 1) // step + 1)
    ours, real, w = seen[:, ::step][:, :frames], cents[:, :frames], weight[:, :frames]
    count = w.sum(1, keepdim=True).clamp(min=1.0)
    ours = ours - (ours * w).sum(1, keepdim=True) / count
    real = real - (real * w).sum(1, keepdim=True) / count
    if any_phase:  # the RMS distance of the magnitudes (Parseval: a flat curve scores the real one's RMS)
        power = torch.view_as_real(torch.fft.rfft(torch.stack([ours * w, real * w]))).pow(2).sum(-1)
        power = power @ _rate_blur(power.shape[-1], frames * TRACK_HOP / SAMPLE_RATE).to(power)
        gap = ((power[0] + 1e-6).sqrt() - (power[1] + 1e-6).sqrt()).pow(2).sum()
        return (2.0 * gap / (frames * w.sum().clamp(min=1.0)) + 1e-9).sqrt() / CENTS_SCALE
    return ((ours - real).abs() * w).sum() / w.sum().clamp(min=1.0) / CENTS_SCALE
