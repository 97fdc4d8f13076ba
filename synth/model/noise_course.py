"""The noise between the partials over a crop: in each of the synth's noise bands, the power of the STFT bins that
lie between the harmonics, every 20 ms, of the voice's crop and of the real crop alike, and their log distance as
a loss. Fitting held-out notes' controls directly showed the noise bands' course over a note (onset bursts, bow
and breath swells, at about 100 ms detail) to be the largest part the classifier hears (docs/models.md). The
spectral loss compares each bin's magnitude, and a noise bin's magnitude is random; summed over a band's bins, its
power is not, so this asks for the level a decoder can know.
"""
from __future__ import annotations

import numpy as np
import torch

from synth.model.hnsynth import SAMPLE_RATE, midi_to_hz, stft_bands, stft_power

N_FFT = 4096                   # 11.7 Hz bins, 85 ms frames: from MIDI 45 (110 Hz) up, bins lie clear of the partials
HOP_SAMPLES = 960              # 20 ms
FLOOR = 1e-9                   # band power (re a full-scale sine's 0.5, -90 dB) under which levels are not told apart
CLEARANCE_BINS = 4.5           # the window's main lobe reaches 4 bins either side of a partial


class NoiseCourse(torch.nn.Module):
    """Band powers between the harmonics [B, frames, NOISE_BANDS] of audio, and the loss between two crops."""

    window: torch.Tensor  # buffers (register_buffer), named here for the type checker
    freqs: torch.Tensor
    bands: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
        # 4-term Blackman-Harris: sidelobes 92 dB down, so the bins between partials hold the noise, not the
        # partials' spill (a Hann window left a clean tone's partials only 19-25 dB above the bins between them).
        n = np.arange(N_FFT) * 2 * np.pi / N_FFT
        window = 0.35875 - 0.48829 * np.cos(n) + 0.14128 * np.cos(2 * n) - 0.01168 * np.cos(3 * n)
        self.register_buffer("window", torch.from_numpy(window).float(), persistent=False)
        self.register_buffer("freqs", torch.from_numpy(freqs).float(), persistent=False)
        self.register_buffer("bands", torch.from_numpy(stft_bands(N_FFT)), persistent=False)

    def between(self, pitch: torch.Tensor) -> torch.Tensor:
        """[B, bins] 1 where a bin is at least a quarter of f0 (and a main lobe) from every harmonic of the pitch."""
        f0 = midi_to_hz(pitch)[:, None]
        nearest = torch.clamp(torch.round(self.freqs / f0), min=1.0) * f0
        clearance = torch.clamp(0.25 * f0, min=CLEARANCE_BINS * SAMPLE_RATE / N_FFT)
        return ((self.freqs - nearest).abs() >= clearance).float()

    def audio(self, audio: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """[B, frames, NOISE_BANDS] power between the harmonics, per band and 20 ms frame."""
        return self._band_power(audio, self.between(pitch))

    def log_course(self, audio: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """[B, NOISE_BANDS, frames] log power between the harmonics, the critic's input: bands with no such bin at
        the note's pitch read the floor, for real and generated notes alike."""
        between = self.between(pitch)
        counted = (torch.matmul(between, self.bands) > 0).float()[:, :, None]            # [B, bands, 1]
        return torch.log(self._band_power(audio, between).transpose(1, 2) * counted + FLOOR)

    def _band_power(self, audio: torch.Tensor, between: torch.Tensor) -> torch.Tensor:
        power = stft_power(audio, self.window, HOP_SAMPLES)                             # [B, bins, frames]
        return torch.matmul((power * between[:, :, None]).transpose(1, 2), self.bands)

    def loss(self, fake: torch.Tensor, real: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """Mean absolute log ratio of the two crops' band powers between the harmonics, over the frames and the
        bands that hold any such bin at this pitch."""
        between = self.between(pitch)
        counted = (torch.matmul(between, self.bands) > 0).float()[:, None, :]             # [B, 1, bands]
        gap = (torch.log(self._band_power(fake, between) + FLOOR)
               - torch.log(self._band_power(real, between) + FLOOR)).abs()
        frames = gap.shape[1]
        return (gap * counted).sum() / (counted.sum() * frames).clamp(min=1.0)
