"""Note models built with torch for the tests: the tiny voice's shape and an analytic tone with known answers."""
import numpy as np
import torch

from synth.model.voice import VoiceConfig

TINY_NET = VoiceConfig(z_dim=16, cond=32, channels=[16, 16, 8, 8, 8])


class ToneSynth(torch.nn.Module):
    """A model with a known answer: G(z, pitch) is a harmonic tone at exactly the pitch's frequency (fundamental
    dominant, z shading the weak upper partials), 5 ms attack, steady for 3 s, then a 1 s decay. It goes through
    the same ONNX loader as a trained model, so engine tests can check onsets and pitches; it keeps the first
    contract (no velocity input, 16 kHz), which the runtime still plays."""

    def __init__(self, z_dim: int = 8, rate: int = 16000, samples: int = 64000) -> None:
        super().__init__()
        t = torch.arange(samples) / rate
        env = torch.clamp(t / 0.005, max=1.0) * torch.where(t < 3.0, torch.ones_like(t), torch.exp(-(t - 3.0) * 8))
        self.register_buffer("t", t)
        self.register_buffer("env", env)
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        f = 440.0 * torch.pow(2.0, (pitch.float() - 69.0) / 12.0)
        weights = 0.1 * torch.sigmoid(z[:, :3])  # 2nd-4th partials at most -20 dB under the fundamental
        phase = 2 * np.pi * f[:, None] * self.t[None, :]
        audio = torch.sin(phase)
        for k in range(3):
            audio = audio + weights[:, k:k + 1] * torch.sin((k + 2) * phase)
        return 0.3 * audio * self.env[None, :]
