"""Harmonic levels over a whole note: each harmonic's amplitude every 20 ms, read from the generator's controls
directly and from the real note's STFT, and their log distance as a loss. The spectral losses compare every bin,
and the bins between the partials outnumber those on them; the voice's rebuilt notes missed the real harmonics'
energy by 5.7 dB on average, and the evaluation classifier heard those notes in their family 58 % of the time.
"""
from __future__ import annotations

import torch

from synth.model.hnsynth import HARMONICS, HOP, SAMPLE_RATE, HarmonicNoiseSynth, midi_to_hz

N_FFT = 8192                   # 5.9 Hz bins: the lowest notes' harmonics (MIDI 24: 33 Hz apart) stay apart
STRIDE = 4                     # control frames per STFT hop (20 ms)
RANGE_DB = 40.0                # harmonics this far under the frame's loudest are not compared
FLOOR = 1e-4                   # frames whose loudest harmonic is under this amplitude (-80 dB) are not compared
MAX_HZ = 4000.0                # harmonics above are not compared: 5 cents off moves them past the bins searched


class HarmonicLevels(torch.nn.Module):
    """Per-harmonic amplitudes [B, frames, HARMONICS] of controls and of audio on the same 20 ms frames."""

    window: torch.Tensor  # a buffer (register_buffer), named here for the type checker

    def __init__(self, synth: HarmonicNoiseSynth) -> None:
        super().__init__()
        self.synth = synth
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def controls(self, amplitudes: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """The synth's sine amplitudes every STRIDE control frames (harmonics near Nyquist faded as it fades them)."""
        return (amplitudes * self.synth.nyquist_mask(pitch))[:, ::STRIDE]

    def audio(self, audio: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """Each harmonic's sine amplitude from the power in five STFT bins about it: with a Hann window that sum
        holds a partial's whole main lobe wherever it falls between bins. The five may sit up to two bins from
        k·f0 (never so far that they reach the next harmonic's lobe), where they hold the most: soundfont notes are often
        a few cents off their MIDI pitch, which moves the upper harmonics by more than a bin."""
        spec = torch.stft(audio, N_FFT, HOP * STRIDE, window=self.window, return_complex=True).abs().pow(2)
        batch, bins, frames = spec.shape
        lobes = 5 * torch.nn.functional.avg_pool1d(spec.transpose(1, 2).reshape(-1, 1, bins), 5, stride=1,
                                                   padding=2, count_include_pad=True)
        lobes = lobes.reshape(batch, frames, bins).transpose(1, 2)                              # [B, bins, T]
        spacing = midi_to_hz(pitch) * (N_FFT / SAMPLE_RATE)                                     # bins
        centre = torch.round(self.synth.harmonic_hz(pitch)[:, 0] * (N_FFT / SAMPLE_RATE)).long()  # [B, K]
        offsets = torch.arange(-2, 3, device=audio.device)
        index = torch.clamp(centre[:, :, None] + offsets, 0, bins - 1).reshape(batch, -1, 1)
        power = torch.gather(lobes, 1, index.expand(-1, -1, frames)).reshape(batch, HARMONICS, 5, frames)
        allowed = offsets.abs()[None, :] <= (spacing - 4.0)[:, None]  # never reaching a neighbour's lobe
        power = torch.where(allowed[:, None, :, None], power, torch.zeros_like(power)).amax(2)  # [B, K, T]
        return (torch.sqrt(power / 1.5) * 2 / self.window.sum()).transpose(1, 2)

    def loss(self, amplitudes: torch.Tensor, pitch: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Mean absolute log ratio of ours to the real note's harmonic amplitudes, over the harmonics up to MAX_HZ
        within RANGE_DB of each audible frame's loudest."""
        ours, real = self.controls(amplitudes, pitch), self.audio(audio, pitch)
        frames = min(ours.shape[1], real.shape[1])
        ours, real = ours[:, :frames], real[:, :frames]
        top = real.amax(-1, keepdim=True)
        below = self.synth.harmonic_hz(pitch) <= MAX_HZ
        keep = (real > top * 10 ** (-RANGE_DB / 20)) & (top > FLOOR) & below
        diff = (torch.log(ours + 1e-6) - torch.log(real + 1e-6)).abs()
        return (diff * keep).sum() / keep.sum().clamp(min=1)
