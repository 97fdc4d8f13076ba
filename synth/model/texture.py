"""How each band's level moves over a crop, whatever its timing: the modulation spectrum (the power of the Fourier
transform over time of a band's log level, 2-100 Hz) of the voice's crop against the real crop's, as a log
distance. Frame by frame, the spectral losses pay more for a fluctuation (bow, breath, a chorus's beating, a
hammer's ring) placed a few frames late than for none at all, so the decoder learns a smooth course; the real
notes' fluctuation is what the classifier hears most (docs/models.md). The power ignores when a band moves and
keeps how fast and how far, so this asks for the fluctuation itself.
"""
from __future__ import annotations

import torch

from synth.model.hnsynth import stft_bands, stft_power

N_FFT = 1024                   # 21 ms frames
HOP_SAMPLES = 240              # 5 ms: rates up to 100 Hz
FLOOR = 1e-9                   # band power (re a full-scale sine's 0.5, -90 dB) below which levels are not told apart
DEPTH_FLOOR = 0.01             # modulation (nats per rate bin, ~0.1 dB) below which depths are not told apart


class Texture(torch.nn.Module):
    """Modulation spectra [B, bands, rates] of audio crops, and the loss between two crops'."""

    window: torch.Tensor  # buffers (register_buffer), named here for the type checker
    bands: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("bands", torch.from_numpy(stft_bands(N_FFT)), persistent=False)

    def modulation(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, NOISE_BANDS, rates]: the power of each band's log-level fluctuation per rate bin (the mean level left
        out), scaled so a random fluctuation of σ nats reads about σ² in every bin. Squares, not magnitudes: a
        silent band's course is flat, and a magnitude's gradient at zero is not a number."""
        power = stft_power(audio, self.window, HOP_SAMPLES)                             # [B, bins, frames]
        level = torch.log(torch.matmul(power.transpose(1, 2), self.bands) + FLOOR)         # [B, frames, bands]
        level = (level - level.mean(dim=1, keepdim=True)).transpose(1, 2)
        taper = torch.hann_window(level.shape[-1], periodic=False, device=audio.device)
        return torch.view_as_real(torch.fft.rfft(level * taper)).pow(2).sum(-1)[..., 1:] / taper.pow(2).sum()

    def loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Mean absolute log ratio of the two crops' modulation depths, each averaged over octaves of rate and
        groups of four bands (a random fluctuation's spectrum is itself random bin to bin)."""
        return 0.5 * (torch.log(self.depths(fake) + DEPTH_FLOOR ** 2)
                      - torch.log(self.depths(real) + DEPTH_FLOOR ** 2)).abs().mean()

    def depths(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, NOISE_BANDS // 4, octaves]: the mean modulation power over each octave of rate in each group of four
        bands (its root is the fluctuation's RMS in nats)."""
        m = self.modulation(audio)
        b, bands, rates = m.shape
        m = m.reshape(b, bands // 4, 4, rates).mean(2)
        edges = [1] + [e for e in (2, 4, 8, 16, 32) if e <= rates] + [rates + 1]   # rate bins 1..rates (index + 1)
        return torch.stack([m[..., lo - 1:hi - 1].mean(-1) for lo, hi in zip(edges[:-1], edges[1:])], -1)
