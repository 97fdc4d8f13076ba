"""A critic of the noise between the partials alone, for the noise adversarial stage (`train --noise-adversarial`).

Earlier runs found the noise bands' course over a note (onset bursts, bow and breath swells) to be most of what
the classifier hears apart, and a regression loss on that course (`--noise-weight`) lowered its own measure without
making the notes any more real: a decoder that cannot know when a real note's noise will swell learns the mean
course. A critic judges whether a course is one a real note of that pitch could have, not whether it is this note's.
The spectrogram discriminator tried before (discriminator.py) found noise an easy cue and pushed the notes past
the real ones; this one sees nothing but the between-partials power per band every 20 ms (noise_course.py), so an
overshoot there is as fake as a shortfall.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from synth.core.notes import N_PITCHES, PITCH_MIN
from synth.model.hnsynth import SAMPLE_RATE
from synth.model.noise_course import FLOOR, HOP_SAMPLES, N_FFT


class NoiseCritic(nn.Module):
    """Scores of between-partials courses [B, bands, frames] (log power, noise_course.NoiseCourse.log_course) per
    20 ms frame, conditioned on pitch and velocity by projection and told each frame's time since note-on (an onset
    burst is real at the onset, not half a second in)."""

    def __init__(self, bands: int, width: int = 64) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(3 * bands + 1, width, 3, padding=1),
                                    nn.Conv1d(width, width, 3, padding=2, dilation=2),
                                    nn.Conv1d(width, width, 3, padding=4, dilation=4)])
        self.out = nn.Conv1d(width, 1, 1)
        self.pitch = nn.Embedding(N_PITCHES, width)
        self.velocity = nn.Linear(1, width)

    def forward(self, course: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor,
                start_sample: int) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """[(scores [B, frames], hidden activations)], one resolution, as discriminator.py's losses take them."""
        frames = course.shape[-1]
        at = start_sample + N_FFT // 2 + torch.arange(frames, device=course.device, dtype=torch.float32) * HOP_SAMPLES
        t = at / SAMPLE_RATE                                                             # each frame's centre
        level = course.mean(-1, keepdim=True)
        step = F.pad(course[..., 1:] - course[..., :-1], (1, 0))
        # the course's level, its shape about that level and its steps, apart: the level alone was most of the
        # input, and a critic fed the course whole took hundreds of steps to hear a 6 dB swell
        x = torch.cat([(level.expand_as(course) - math.log(FLOOR)) / 4.0, course - level, step,
                       torch.log1p(t / 0.02)[None, None, :].expand(course.shape[0], 1, frames) / 4.0], 1)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
        emb = self.pitch(torch.clamp(pitch - PITCH_MIN, 0, N_PITCHES - 1)) + self.velocity(velocity[:, None])
        score = self.out(x)[:, 0] + (x * emb[:, :, None]).sum(1) / x.shape[1] ** 0.5
        return [(score, feats)]
