"""A multi-resolution spectrogram discriminator for the voice's adversarial stage (as UnivNet's and HiFi-GAN's:
hinge loss plus feature matching beside the reconstruction losses). The spectral losses average over bins and
frames, so a note can score well and still sound made: partials too clean, an onset too soft, noise in the wrong
places. The evaluation classifier heard that: it put the voice's reconstructions of held-out notes in the right
family 58 % of the time against 99 % for the notes themselves. A discriminator learns such cues from the notes.

Each resolution reads the log-magnitude STFT of a crop with frequency bins as channels and convolves over time
(1-D: cheap on a CPU), conditioned on pitch by projection.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synth.core.notes import N_PITCHES, PITCH_MIN

RESOLUTIONS = ((2048, 512), (512, 128), (128, 32))  # (n_fft, hop): partials, the level's course, onsets


class _Scale(nn.Module):
    """One resolution: log |STFT| [B, bins, frames] → per-frame scores and the hidden activations."""

    window: torch.Tensor  # a buffer (register_buffer), named here for the type checker

    def __init__(self, n_fft: int, hop: int, width: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        bins = n_fft // 2 + 1
        self.convs = nn.ModuleList([nn.Conv1d(bins, width, 3, padding=1),
                                    nn.Conv1d(width, width, 3, stride=2, padding=1),
                                    nn.Conv1d(width, width, 3, padding=1)])
        self.out = nn.Conv1d(width, 1, 3, padding=1)
        self.pitch = nn.Embedding(N_PITCHES, width)

    def forward(self, audio: torch.Tensor, pitch: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(audio, self.n_fft, self.hop, window=self.window, return_complex=True).abs()
        x = torch.log(spec + 1e-4)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
        emb = self.pitch(torch.clamp(pitch - PITCH_MIN, 0, N_PITCHES - 1))          # [B, width]
        score = self.out(x)[:, 0] + (x * emb[:, :, None]).sum(1) / x.shape[1] ** 0.5
        return score, feats


class Discriminator(nn.Module):
    """Scores of audio crops [B, samples] at every resolution (higher: more like a real note of that pitch)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.scales = nn.ModuleList(_Scale(n, h, width) for n, h in RESOLUTIONS)

    def forward(self, audio: torch.Tensor, pitch: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [scale(audio, pitch) for scale in self.scales]


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Hinge loss of the discriminator on real and generated crops (fake computed from detached audio)."""
    total = real[0][0].new_zeros(())
    for (r, _), (f, _) in zip(real, fake):
        total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
    return total / len(real)


def generator_losses(real: list, fake: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial, feature matching) losses of the generator: its crops' scores pushed up, and the
    discriminator's hidden activations of them drawn towards those of the real crops (L1, per layer)."""
    adv = sum(-f.mean() for f, _ in fake) / len(fake)
    fm = sum((a - b.detach()).abs().mean() for (_, fa), (_, ra) in zip(fake, real) for a, b in zip(fa, ra))
    return adv, fm / sum(len(fa) for _, fa in fake)
