"""Training terms that let a fine-tune go on without losing the timbre map.

Every longer run from the shipped model moved its latent space, so the shipped presets stopped sounding like their
instruments and a better generator could not ship. `keep_loss` holds the generator's notes at the preset latents
to what the generator the run started from (the teacher) made there. `even_morph_loss` asks the sound to change
at an even speed along slerp between two presets, so a morph has no sudden jump where a family border was.
"""
from __future__ import annotations

from typing import Callable

import torch

GeneratorFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (z, pitch) -> features [B, 2, frames, bins]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Row-wise spherical interpolation [B, Z] from a (t=0) to b (t=1), t of shape [B]; the presets of a map are
    never (anti)parallel, so no linear fallback is needed."""
    cos = (torch.nn.functional.normalize(a, dim=1) * torch.nn.functional.normalize(b, dim=1)).sum(1)
    omega = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))[:, None]
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def keep_loss(g: GeneratorFn, teacher: GeneratorFn, z: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
    """Mean L1 between the log magnitudes the generator and the teacher make for these latents and pitches, over the
    whole note: the release tail is part of what makes an instrument (a run that left the last 0.8 s free kept the
    held notes within 0.03 but Keys and Voices lost their family, and got it back with the old tails spliced on)."""
    with torch.no_grad():
        target = teacher(z, pitch)[:, 0]
    return (g(z, pitch)[:, 0] - target).abs().mean()


def morph_points(pairs: int, segments: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[pairs, segments + 1] increasing t from 0 to 1: the inner points jittered within their segment, so the
    term sees the whole path over many steps, not a fixed grid a jump could hide between."""
    inner = (torch.arange(1, segments, dtype=torch.float32) + 0.8 * (torch.rand(pairs, segments - 1,
                                                                                generator=generator) - 0.5))
    return torch.cat([torch.zeros(pairs, 1), inner / segments, torch.ones(pairs, 1)], dim=1)


def even_morph_loss(g: GeneratorFn, a: torch.Tensor, b: torch.Tensor, pitch: torch.Tensor,
                    t: torch.Tensor) -> torch.Tensor:
    """Unevenness of the sound's speed along slerp(a, b): for each pair, the variance of (mean |log-magnitude
    change| / dt) over the path's segments, divided by its mean squared, so it is scale-free (0: even)."""
    pairs, points = t.shape
    z = slerp(a.repeat_interleave(points, 0), b.repeat_interleave(points, 0), t.reshape(-1))
    mag = g(z, pitch.repeat_interleave(points))[:, 0].reshape(pairs, points, -1)
    speed = (mag[:, 1:] - mag[:, :-1]).abs().mean(2) / (t[:, 1:] - t[:, :-1]).to(mag.device)
    mean = speed.mean(1, keepdim=True)
    return (((speed - mean) / (mean + 1e-6)).square()).mean()
