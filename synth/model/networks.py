"""GANSynth's progressive generator and discriminator (after Progressive GAN): pixel norm, equalized learning rate,
leaky ReLU, nearest-neighbour upsampling, minibatch stddev and an auxiliary pitch classifier (AC-GAN).

Level 0 works on a 2 x 8 (time x frequency) grid; each further level doubles both axes, so level 6 is the full
128 x 512 IF-Mel image. `alpha` fades a new level in over the previous one.
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
    """Widths per level (7 levels: 2x8 ... 128x512) and latent size. GANSynth: 256,256,256,256,128,64,32; z 256."""
    z_dim: int = 256
    channels: tuple[int, ...] = (256, 256, 256, 256, 128, 64, 32)

    @property
    def levels(self) -> int:
        return len(self.channels)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "NetConfig":
        return NetConfig(z_dim=int(d["z_dim"]), channels=tuple(int(c) for c in d["channels"]))


class EqConv(nn.Conv2d):
    """Conv with weights ~ N(0, 1) scaled at run time by He's constant (equalized learning rate)."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], gain: float = math.sqrt(2)) -> None:
        super().__init__(cin, cout, kernel, padding="same", bias=True)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = gain / math.sqrt(self.weight[0].numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding="same")


class EqLinear(nn.Linear):
    def __init__(self, cin: int, cout: int, gain: float = math.sqrt(2)) -> None:
        super().__init__(cin, cout)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = gain / math.sqrt(cin)

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
