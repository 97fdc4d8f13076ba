"""GANSynth's progressive generator and discriminator (after Progressive GAN): pixel norm, equalized learning rate,
leaky ReLU, nearest-neighbour upsampling, minibatch stddev and an auxiliary pitch classifier (AC-GAN).

Level 0 works on a 2 x 8 (time x frequency) grid; each further level doubles both axes, so level 6 is the full
128 x 512 IF-Mel image. `alpha` fades a new level in over the previous one.

The "1d" architecture treats the 2 x 512 frequency bins of a frame as channels and convolves over time only: a
frame's whole spectrum is one vector, so harmonic patterns are a linear map away and a CPU can train it in hours.
It is not grown progressively (one level); its output layer adds a learned spectrum per pitch. With fixed_if
its instantaneous frequency is not learned at all: the IF channel is the training notes' mean IF for the pitch
(what the critic sees beside the magnitudes) and the audio takes the harmonic phase of the pitch
(IFMel.harmonic_phase), which keeps each partial at its harmonic (a learned IF drifted an octave off at
MIDI 36-47) at the cost of vibrato and detune.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

N_PITCHES = 61
PITCH_MIN = 24
START = (2, 8)


@dataclass(frozen=True)
class NetConfig:
    """Widths per level and latent size. 2d: 7 levels, 2x8 ... 128x512 (GANSynth: 256,256,256,256,128,64,32; z 256).
    1d: widths per time resolution, the last at 128 frames, each earlier one at half the frames."""
    z_dim: int = 256
    channels: tuple[int, ...] = (256, 256, 256, 256, 128, 64, 32)
    arch: str = "2d"
    fixed_if: bool = False  # 1d only: IF is the per-pitch spectrum's, constant over time, not learned

    def __post_init__(self) -> None:
        if self.arch == "2d" and len(self.channels) != 7:
            raise ValueError(f"the 2d network needs 7 widths, got {len(self.channels)}")
        if self.arch == "1d" and not 1 <= len(self.channels) <= 8:
            raise ValueError(f"the 1d network needs 1 to 8 widths, got {len(self.channels)}")
        if self.arch not in ("1d", "2d"):
            raise ValueError(f"unknown network architecture {self.arch!r} (use 1d or 2d)")
        if self.fixed_if and self.arch != "1d":
            raise ValueError("a fixed IF needs the 1d network (its per-pitch spectrum holds the IF)")

    @property
    def levels(self) -> int:
        """Progressive-growing levels: 7 for 2d, 1 for 1d (trained at full resolution from the start)."""
        return len(self.channels) if self.arch == "2d" else 1

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "NetConfig":
        return NetConfig(z_dim=int(d["z_dim"]), channels=tuple(int(c) for c in d["channels"]), arch=d.get("arch", "2d"),
                         fixed_if=bool(d.get("fixed_if", False)))


def _equalize(layer: nn.Module, gain: float) -> None:
    """Equalized learning rate: weights ~ N(0, 1), zero bias, scaled at run time by He's constant."""
    nn.init.normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    layer.scale = gain / math.sqrt(layer.weight[0].numel())


class _EqConvForward:
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.scale, self.bias)


class EqConv(_EqConvForward, nn.Conv2d):
    """2-D conv with equalized learning rate."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], gain: float = math.sqrt(2)) -> None:
        super().__init__(cin, cout, kernel, padding="same", bias=True)
        _equalize(self, gain)


class EqLinear(nn.Linear):
    def __init__(self, cin: int, cout: int, gain: float = math.sqrt(2)) -> None:
        super().__init__(cin, cout)
        _equalize(self, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def resolution(level: int) -> tuple[int, int]:
    return START[0] << level, START[1] << level


def pitch_one_hot(pitch: torch.Tensor) -> torch.Tensor:
    return F.one_hot(pitch - PITCH_MIN, N_PITCHES).to(torch.float32)


class Generator(nn.Module):
    """G(z, pitch) → features [B, 2, H, W] in [-1, 1] at the given level."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c0 = cfg.channels[0]
        self.dense = EqLinear(cfg.z_dim + N_PITCHES, c0 * START[0] * START[1], gain=math.sqrt(2) / 4)
        self.first = EqConv(c0, c0, 3)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqConv(cfg.channels[i - 1], cfg.channels[i], 3), EqConv(cfg.channels[i], cfg.channels[i], 3)])
            for i in range(1, cfg.levels))
        self.to_rgb = nn.ModuleList(EqConv(c, 2, 1, gain=1.0) for c in cfg.channels)

    def forward(self, z: torch.Tensor, pitch: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        level = self.cfg.levels - 1 if level is None else level
        x = pixel_norm(torch.cat([z, pitch_one_hot(pitch)], dim=1))
        x = act(self.dense(x)).view(-1, self.cfg.channels[0], *START)
        x = pixel_norm(act(self.first(pixel_norm(x))))
        prev = x
        for i in range(1, level + 1):
            prev = x
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            for conv in self.blocks[i - 1]:
                x = pixel_norm(act(conv(x)))
        out = self.to_rgb[level](x)
        if level > 0 and alpha < 1.0:
            out = torch.lerp(F.interpolate(self.to_rgb[level - 1](prev), scale_factor=2, mode="nearest"), out, alpha)
        return torch.tanh(out)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    g = min(group, len(x))
    while len(x) % g:
        g -= 1
    b, c, h, w = x.shape
    y = x.view(g, -1, c, h, w)
    y = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))  # [B/g]
    y = y.view(1, -1, 1, 1, 1).expand(g, -1, 1, h, w).reshape(b, 1, h, w)
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """D(features) → (critic score [B], pitch logits [B, 61]), mirrored from G."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.from_rgb = nn.ModuleList(EqConv(2, c, 1) for c in cfg.channels)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqConv(cfg.channels[i], cfg.channels[i], 3), EqConv(cfg.channels[i], cfg.channels[i - 1], 3)])
            for i in range(1, cfg.levels))
        c0 = cfg.channels[0]
        self.last_conv = EqConv(c0 + 1, c0, 3)
        self.last_dense = EqLinear(c0 * START[0] * START[1], c0)
        self.critic = EqLinear(c0, 1, gain=1.0)
        self.pitch = EqLinear(c0, N_PITCHES, gain=1.0)

    def features(self, x: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        level = self.cfg.levels - 1 if level is None else level
        h = act(self.from_rgb[level](x))
        for i in range(level, 0, -1):
            for conv in self.blocks[i - 1]:
                h = act(conv(h))
            h = F.avg_pool2d(h, 2)
            if i == level and alpha < 1.0:
                h = torch.lerp(act(self.from_rgb[i - 1](F.avg_pool2d(x, 2))), h, alpha)
        h = act(self.last_conv(minibatch_stddev(h)))
        return act(self.last_dense(h.flatten(1)))

    def forward(self, x: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x, level, alpha)
        return self.critic(f).squeeze(1), self.pitch(f)


class EqConv1d(_EqConvForward, nn.Conv1d):
    """1-D conv over time with equalized learning rate."""

    def __init__(self, cin: int, cout: int, kernel: int, gain: float = math.sqrt(2)) -> None:
        super().__init__(cin, cout, kernel, padding="same", bias=True)
        _equalize(self, gain)


FRAMES, BINS = resolution(6)


class Generator1D(nn.Module):
    """G(z, pitch) → features [B, 2, 128, 512] in [-1, 1]; frames are vectors of 2 x 512 channels."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.t0 = FRAMES >> (len(cfg.channels) - 1)
        c = cfg.channels
        self.dense = EqLinear(cfg.z_dim + N_PITCHES, c[0] * self.t0, gain=math.sqrt(2) / 4)
        self.first = EqConv1d(c[0], c[0], 3)
        self.blocks = nn.ModuleList(nn.ModuleList([EqConv1d(c[i - 1], c[i], 3), EqConv1d(c[i], c[i], 3)])
                                    for i in range(1, len(c)))
        self.out = EqConv1d(c[-1], 2 * BINS, 1, gain=1.0)
        self.pitch_spectrum = nn.Parameter(torch.zeros(N_PITCHES, 2 * BINS))

    def forward(self, z: torch.Tensor, pitch: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        one_hot = pitch_one_hot(pitch)
        x = pixel_norm(torch.cat([z, one_hot], dim=1))
        x = act(self.dense(x)).view(-1, self.cfg.channels[0], self.t0)
        x = pixel_norm(act(self.first(pixel_norm(x))))
        for convs in self.blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            for conv in convs:
                x = pixel_norm(act(conv(x)))
        x = self.out(x) + (one_hot @ self.pitch_spectrum).unsqueeze(2)     # [B, 2*BINS, FRAMES]
        x = torch.tanh(x.view(-1, 2, BINS, FRAMES).transpose(2, 3))
        if self.cfg.fixed_if:
            x = torch.stack([x[:, 0], self.pitch_if(pitch).unsqueeze(1).expand(-1, FRAMES, -1)], dim=1)
        return x

    def pitch_if(self, pitch: torch.Tensor) -> torch.Tensor:
        """[B, BINS] IF of the per-pitch spectrum: with fixed_if, every frame's IF (set from data, not trained)."""
        return torch.tanh(pitch_one_hot(pitch) @ self.pitch_spectrum[:, BINS:].detach())


def _down_blocks(c: tuple[int, ...]) -> nn.ModuleList:
    """The 1-D critic's and encoder's trunk: a pair of 3-tap convs per width, widest time resolution first."""
    return nn.ModuleList(nn.ModuleList([EqConv1d(c[i], c[i], 3), EqConv1d(c[i], c[i - 1], 3)])
                         for i in range(len(c) - 1, 0, -1))


def _down(blocks: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
    """Run a `_down_blocks` trunk, halving the frames after each pair."""
    for convs in blocks:
        for conv in convs:
            h = act(conv(h))
        h = F.avg_pool1d(h, 2)
    return h


class Discriminator1D(nn.Module):
    """D(features) → (critic score [B], pitch logits [B, 61]), mirrored from Generator1D."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.t0 = FRAMES >> (len(c) - 1)
        self.from_rgb = EqConv1d(2 * BINS, c[-1], 1)
        self.blocks = _down_blocks(c)
        self.last_conv = EqConv1d(c[0] + 1, c[0], 3)
        self.last_dense = EqLinear(c[0] * self.t0, c[0])
        self.critic = EqLinear(c[0], 1, gain=1.0)
        self.pitch = EqLinear(c[0], N_PITCHES, gain=1.0)

    def forward(self, x: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        h = _down(self.blocks, act(self.from_rgb(x.transpose(2, 3).reshape(len(x), 2 * BINS, FRAMES))))
        h = act(self.last_conv(minibatch_stddev(h.unsqueeze(3)).squeeze(3)))
        f = act(self.last_dense(h.flatten(1)))
        return self.critic(f).squeeze(1), self.pitch(f)


class Encoder1D(nn.Module):
    """E(log-magnitude features [B, 128, 512]) → z [B, Z] on the sphere of radius sqrt(Z), where the prior's draws
    lie. Trained with the generator to reconstruct real notes (train --reconstruct), so every instrument of the
    data has latents that sound like it, and presets can be taken from real notes."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.t0 = FRAMES >> (len(c) - 1)
        self.from_mag = EqConv1d(BINS, c[-1], 1)
        self.blocks = _down_blocks(c)
        self.last_dense = EqLinear(c[0] * self.t0, c[0])
        self.to_z = EqLinear(c[0], cfg.z_dim, gain=1.0)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        h = _down(self.blocks, act(self.from_mag(magnitude.transpose(1, 2))))
        z = self.to_z(act(self.last_dense(h.flatten(1))))
        return z * (math.sqrt(self.cfg.z_dim) / (z.norm(dim=1, keepdim=True) + 1e-8))


def make_generator(cfg: NetConfig) -> nn.Module:
    """The generator for a config's architecture."""
    return Generator1D(cfg) if cfg.arch == "1d" else Generator(cfg)


def make_discriminator(cfg: NetConfig) -> nn.Module:
    """The discriminator for a config's architecture."""
    return Discriminator1D(cfg) if cfg.arch == "1d" else Discriminator(cfg)
