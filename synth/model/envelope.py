"""Whole-note band envelopes: the power in eight octave-wide bands every 5 ms, from the synth's controls (no audio
needed, so cheap) and from real audio (an STFT). Their log distance over all 800 frames of a note teaches the
level's course from attack through decay to release, which the 0.48 s spectral crops only see piecewise: with
crops alone, held notes kept swelling for half a second after the onset."""
from __future__ import annotations

import numpy as np
import torch

from synth.model.hnsynth import HOP, SAMPLE_RATE, HarmonicNoiseSynth

EDGES_HZ = (20.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0, SAMPLE_RATE / 2 + 1)
N_FFT = 1024
FLOOR = 1e-7  # power (re full scale) under which levels are not compared: -70 dB
ONSET_FRAMES = 80  # 0.4 s: the attack of the slowest real families (reeds, pads) is about that long


class BandEnvelope(torch.nn.Module):
    """Band powers [B, frames, bands] of controls (`controls`) and of audio (`audio`), on the same frames: frame t
    is an N_FFT Hann window centred on sample t * HOP."""

    noise_power: torch.Tensor  # buffers (register_buffer), named here for the type checker
    bins: torch.Tensor
    kernel: torch.Tensor
    window: torch.Tensor

    def __init__(self, synth: HarmonicNoiseSynth) -> None:
        super().__init__()
        self.synth = synth
        edges = np.array(EDGES_HZ)
        noise_power = synth.noise_band_power(edges)
        self.register_buffer("noise_power", torch.from_numpy(noise_power).float(), persistent=False)
        stft_band = np.digitize(np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE), edges) - 1
        bins = np.stack([(stft_band == c) for c in range(len(edges) - 1)], 1).astype(np.float32)
        self.register_buffer("bins", torch.from_numpy(bins), persistent=False)
        window = np.hanning(N_FFT + 1)[:-1]
        self.register_buffer("window", torch.from_numpy(window).float(), persistent=False)
        # What an STFT frame sees of control frames t-2..t+2 (the synth interpolates linearly between frames).
        offsets = (np.arange(N_FFT) - N_FFT / 2) / HOP
        taps = np.array([np.sum(window ** 2 * np.clip(1 - np.abs(offsets - d), 0, None)) for d in range(-2, 3)])
        self.register_buffer("kernel", torch.from_numpy(taps / taps.sum()).float()[None, None], persistent=False)

    def controls(self, amplitudes: torch.Tensor, noise: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """Band powers of the sound the synth makes of these controls ([B, T, HARMONICS], [B, T, NOISE_BANDS])."""
        harmonic = torch.matmul(0.5 * (amplitudes * self.synth.nyquist_mask(pitch)) ** 2, self.spread(pitch))
        power = harmonic + torch.matmul(self.synth.noise_components(noise) ** 2, self.noise_power)  # [B, T, bands]
        b, t, c = power.shape
        flat = power.transpose(1, 2).reshape(b * c, 1, t)
        return torch.nn.functional.conv1d(flat, self.kernel, padding=2).reshape(b, c, t).transpose(1, 2)

    def spread(self, pitch: torch.Tensor) -> torch.Tensor:
        """[B, HARMONICS, bands]: how each harmonic's power lands in the bands as the STFT sees it, main lobe and
        leakage of the Hann window included (a partial just below a band edge is half in the band above)."""
        at = self.synth.harmonic_hz(pitch).transpose(1, 2) * (N_FFT / SAMPLE_RATE)     # [B, K, 1] in bins
        x = at - torch.arange(self.bins.shape[0], device=pitch.device, dtype=torch.float32)
        lobe = (0.5 * torch.sinc(x) + 0.25 * torch.sinc(x - 1) + 0.25 * torch.sinc(x + 1)) ** 2
        return torch.matmul(lobe / lobe.sum(-1, keepdim=True).clamp(min=1e-12), self.bins)

    def audio(self, audio: torch.Tensor) -> torch.Tensor:
        """Band powers of audio [B, samples]: 1 + samples // HOP frames."""
        spec = torch.stft(audio, N_FFT, HOP, window=self.window, center=True, pad_mode="constant",
                          return_complex=True).abs() ** 2                               # [B, bins, frames]
        power = 2 * spec / (N_FFT * self.window.pow(2).sum())
        return torch.matmul(power.transpose(1, 2), self.bins)

    def loss(self, amplitudes: torch.Tensor, noise: torch.Tensor, pitch: torch.Tensor,
             audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean absolute log ratio of the controls' band powers to the real note's: over every frame and band, and
        over the onset's first ONSET_FRAMES alone (a handful of the note's 800 frames, so the whole-note mean
        hardly sees a soft attack: the shipped voice's onsets sat a mean 0.4 nepers under the real notes' while
        the rest of the note was within 0.04)."""
        fake, real = self.controls(amplitudes, noise, pitch), self.audio(audio)
        frames = min(fake.shape[1], real.shape[1])
        distance = (torch.log(fake[:, :frames] + FLOOR) - torch.log(real[:, :frames] + FLOOR)).abs()
        return distance.mean(), distance[:, :ONSET_FRAMES].mean()
