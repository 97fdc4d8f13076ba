"""The voice: G(z, pitch, velocity) → harmonic-plus-noise controls → audio, and the encoder that trains it.

The generator keeps GANSynth's role (a global timbre latent plus pitch and velocity conditions) but outputs synthesis
controls at 200 frames/s instead of spectrogram pixels: a 1-D conv stack upsamples a learned coarse sequence over
time, FiLM-conditioned on (z, pitch, velocity), with the time since note-on and since note-off as inputs so attack,
decay and release are learned per timbre. The encoder maps a real note's log-mel to a Gaussian posterior over z
(VAE), so z ~ N(0, I) stays meaningful for random timbres and slerp.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from synth.core.notes import N_PITCHES, PITCH_MAX as PITCH_MAX, PITCH_MIN  # PITCH_MAX: re-exported
from synth.model.hnsynth import (BODY_BANDS, FRAMES, HARMONICS, HOLD_SECONDS, HOP, NOISE_BANDS, SAMPLE_RATE,
                                 HarmonicNoiseSynth, body_weights, exp_sigmoid, mel_filters, partial_jitter,
                                 smooth_frames)

MEL_BANDS = 64
MEL_HOP = 480
# Every velocity of a played note takes its vibrato from this one, the top velocity layer (at which presets are
# chosen and checked, so they keep their sound): the bank blends the two layers around a note's velocity, and each
# with its own vibrato their partials drifted out of phase and beat (Brass at middle C, velocity 100, dipped 5 dB
# every second, and held notes repeated the dip with the loop); with one vibrato they add exactly. Training decodes
# each note with its own.
VIBRATO_VELOCITY = 120 / 127
MAX_UNISON_CENTS = 20.0
UNISON_GAIN = 10.0   # the unison head's outputs are scaled up, so Adam moves them at a useful pace from a fine-tune's lr
MAX_JITTER = 0.5     # the partials' wobble: at most this standard deviation (nepers) of each harmonic's log amplitude
JITTER_GAIN = 20.0   # as UNISON_GAIN, for the wobble's depths
MAX_BODY = 3.0       # the body filter's gain at most ± this (nepers, about ±26 dB) at any frequency
BODY_GAIN = 10.0     # as UNISON_GAIN, for the body filter
DRAW_GAIN = 5.0      # as UNISON_GAIN, for the noise draw's gains
MAX_LFO_CENTS = 30.0  # the vibrato LFO's depth (amplitude) at most this
LFO_RATES = (3.0, 8.0)  # Hz
MAX_LFO_DELAY = 1.0   # seconds before it swings (it fades in over LFO_FADE)
LFO_FADE = 0.25
LFO_GAIN = 10.0      # as UNISON_GAIN, for the LFO


@dataclass
class VoiceConfig:
    z_dim: int = 64
    cond: int = 256
    coarse: int = 25                       # frames of the first (learned) sequence; ×2 per block up to FRAMES
    channels: list[int] = field(default_factory=lambda: [128, 128, 96, 64, 48])
    max_vibrato: float = 0.5               # semitones
    # A second, detuned reading of the harmonics per note (HarmonicNoiseSynth.harmonic): the real notes' partials
    # are split and beat (chorused, layered samples), ours are one exact line each: held notes measured a
    # harmonic-to-noise ratio 10-22 dB above the real notes' in 11 of 14 families. An experiment, off by default.
    unison: bool = False
    # Each harmonic's amplitude wobbles along a fixed random curve of its own (hnsynth.partial_jitter), slow and
    # fast, by a depth the generator sets per note for the low and the high harmonics: a partial becomes a narrow
    # band, as a recorded one is, instead of an exact line. An experiment, off by default.
    jitter: bool = False
    # A filter fixed in Hz per timbre (BODY_BANDS gains on log frequency, from z alone: no pitch, no velocity) over
    # the harmonics, as an instrument's body and bore shape every note it plays: the harmonic pattern alone is per
    # harmonic number and pitch-conditioned, and one latent played across the keyboard drifted out of its family
    # (a program's mean latent over all its training notes kept its family at 4 of 5 pitches for 31 of 56 held-out
    # programs; the real instruments for 56). Starts flat. An experiment, off by default.
    body: bool = False
    # The noise drawn per frame at 100 Hz resolution from `noise_bands` magnitudes (hnsynth.FrameNoise) instead of
    # 32 fixed band recordings: the real notes' detail between the partials, which our 32 bands cannot draw, is most
    # of what the classifier hears apart. An experiment, off by default.
    frame_noise: bool = False
    noise_bands: int = NOISE_BANDS
    # Random curves (this many, slow and fast: twice as many channels) beside the noise bands' head, scaled per band
    # by the condition, so the noise can take a course of its own over a note (a swell, a burst) rather than the mean
    # course a regression loss asks for; the noise adversarial stage (noise_critic.py) judges those courses. Drawn
    # anew per note in training; a played note reads them from a place set by its pitch (as the jitter), so the
    # bank renders the same note every time. Starts at zero gain: the voice it grows from plays as before. An
    # experiment, off (0) by default.
    noise_draw: int = 0
    # A vibrato per note on top of the free pitch curve: a sine whose depth, rate and onset the generator sets from
    # the condition, as a soundfont's vibrato LFO has. The free curve, asked for the real vibrato's depth and rate
    # (train --vibrato-any-phase), moved slowly: a 5 Hz swing across 800 frames is hard to draw from a conv stack,
    # three numbers are not. Starts at 0.3 cents: the voice it grows from plays as before. Off by default.
    lfo: bool = False

    @staticmethod
    def from_dict(d: dict) -> "VoiceConfig":
        d = dict(d)
        if d.pop("global_shape", False):  # files of runs of early December 2026 name the option, mostly off
            raise ValueError("this voice was trained with --global-shape, which this version no longer has")
        return VoiceConfig(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def time_features(frames: int, device: torch.device) -> torch.Tensor:
    """[1, 6, frames] inputs that say where a frame sits in the note: log time since note-on (sharp near the onset),
    linear time, log time since note-off, whether the key is released, and a slow sine pair."""
    t = (torch.arange(frames, device=device, dtype=torch.float32) + 0.5) * (FRAMES * HOP / SAMPLE_RATE / frames)
    off = torch.clamp(t - HOLD_SECONDS, min=0.0)
    feats = [torch.log(t / 0.005) / 6.0, t / HOLD_SECONDS, torch.log1p(off / 0.005) / 6.0, (t > HOLD_SECONDS).float(),
             torch.sin(t * 1.3), torch.cos(t * 1.3)]
    return torch.stack(feats)[None]


class FiLMBlock(nn.Module):
    """Upsample ×2, then two conv layers with a FiLM (scale, shift) from the condition, and a residual path."""

    def __init__(self, cin: int, cout: int, cond: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(cin + 6, cout, 3, padding=1)
        self.conv2 = nn.Conv1d(cout, cout, 3, padding=1)
        self.skip = nn.Conv1d(cin, cout, 1)
        self.film = nn.Linear(cond, 4 * cout)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="linear", align_corners=False)
        s1, b1, s2, b2 = self.film(c)[:, :, None].chunk(4, dim=1)
        h = self.conv1(torch.cat([x, time_features(x.shape[-1], x.device).expand(x.shape[0], -1, -1)], 1))
        h = F.leaky_relu(h * (1 + s1) + b1, 0.2)
        h = F.leaky_relu(self.conv2(h) * (1 + s2) + b2, 0.2)
        return h + self.skip(x)


def resample_bands(x: torch.Tensor, bands: int) -> torch.Tensor:
    """Values over evenly spaced noise bands (the last axis) interpolated linearly to `bands` bands of the same span,
    centre to centre: a model with another number of noise bands starts from, and is kept near, the same noise."""
    if x.shape[-1] == bands:
        return x
    flat = x.reshape(-1, 1, x.shape[-1])
    return F.interpolate(flat, size=bands, mode="linear", align_corners=False).reshape(*x.shape[:-1], bands)


def grow_noise_head(state: dict[str, torch.Tensor], bands: int) -> dict[str, torch.Tensor]:
    """A generator state whose head has another number of noise bands, its noise rows interpolated to `bands` (the
    same noise spectrum at first); unchanged when it already has them."""
    weight, bias = state["head.weight"], state["head.bias"]
    old = weight.shape[0] - HARMONICS - 2
    if old == bands:
        return state
    n0, n1 = 1 + HARMONICS, 1 + HARMONICS + old
    rows = lambda t: torch.cat([t[:n0], resample_bands(t[n0:n1].movedim(0, -1), bands).movedim(-1, 0),  # noqa: E731
                                t[n1:]])
    return dict(state) | {"head.weight": rows(weight), "head.bias": rows(bias)}


def _key_place(pitch: torch.Tensor, frames: int) -> torch.Tensor:
    """[B] where a played key reads fixed circular curves of `frames` (so the notes of a chord read them apart)."""
    return (pitch * 97) % frames


def _read_from(curves: torch.Tensor, place: torch.Tensor) -> torch.Tensor:
    """[C, B, frames, ...] fixed circular curves [C, frames, ...] read from each note's place [B] on."""
    frames = curves.shape[1]
    return curves[:, (torch.arange(frames, device=place.device)[None, :] + place[:, None]) % frames]


class Generator(nn.Module):
    """G(z, pitch, velocity) → controls (amplitudes, f0 deviation, noise bands), each [B, FRAMES + 1, ...], and
    the unison [B, 2] (detune in semitones, mix angle) or None."""

    jitter_curves: torch.Tensor  # buffers of a voice with --jitter, --body or --noise-draw (register_buffer),
    jitter_tilt: torch.Tensor    # named for mypy
    body_weights: torch.Tensor
    draw_curves: torch.Tensor

    def __init__(self, cfg: VoiceConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pitch_embed = nn.Embedding(N_PITCHES, 32)
        self.cond = nn.Sequential(nn.Linear(cfg.z_dim + 32 + 2, cfg.cond), nn.LeakyReLU(0.2),
                                  nn.Linear(cfg.cond, cfg.cond), nn.LeakyReLU(0.2))
        c0 = cfg.channels[0]
        self.start = nn.Linear(cfg.cond, c0 * cfg.coarse)
        self.blocks = nn.ModuleList(FiLMBlock(a, b, cfg.cond) for a, b in zip([c0] + cfg.channels[:-1], cfg.channels))
        self.head = nn.Conv1d(cfg.channels[-1], 1 + HARMONICS + cfg.noise_bands + 1, 1)
        if cfg.unison:  # the same for every note at first: 6 cents, the second voice 29 dB down
            self.unison = nn.Linear(cfg.cond, 2)
            nn.init.zeros_(self.unison.weight)
            with torch.no_grad():
                self.unison.bias.copy_(torch.tensor([math.log(0.3 / 0.7), math.log(0.047 / 0.953)]) / UNISON_GAIN)
        if cfg.jitter:  # depths (slow, fast) × (lowest, highest harmonic), a tenth of MAX_JITTER for every note at first
            self.jitter = nn.Linear(cfg.cond, 4)
            nn.init.zeros_(self.jitter.weight)
            nn.init.constant_(self.jitter.bias, math.log(0.1 / 0.9) / JITTER_GAIN)
            self.register_buffer("jitter_curves", torch.from_numpy(partial_jitter()), persistent=False)
            self.register_buffer("jitter_tilt", torch.log(torch.arange(1.0, HARMONICS + 1)) / math.log(HARMONICS),
                                 persistent=False)
        if cfg.body:  # flat at first: the last layer starts at zero
            last = nn.Linear(128, BODY_BANDS)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.body = nn.Sequential(nn.Linear(cfg.z_dim, 128), nn.LeakyReLU(0.2), last)
            self.register_buffer("body_weights", torch.from_numpy(body_weights()), persistent=False)
        if cfg.noise_draw:  # zero gain at first: the noise as without the draw
            self.draw = nn.Conv1d(2 * cfg.noise_draw, cfg.noise_bands, 5, padding=2)
            self.draw_gain = nn.Linear(cfg.cond, cfg.noise_bands)
            nn.init.zeros_(self.draw_gain.weight)
            nn.init.zeros_(self.draw_gain.bias)
            curves = partial_jitter(harmonics=cfg.noise_draw, seed=2468)                 # [2, FRAMES, draw]
            self.register_buffer("draw_curves", torch.from_numpy(curves).permute(0, 2, 1).reshape(-1, FRAMES),
                                 persistent=False)
        if cfg.lfo:  # depth 0.3 cents, 5.5 Hz, after 0.2 s, for every note at first
            self.lfo = nn.Linear(cfg.cond, 3)
            nn.init.zeros_(self.lfo.weight)
            with torch.no_grad():
                self.lfo.bias.copy_(torch.tensor([math.log(0.01 / 0.99), 0.0, math.log(0.2 / 0.8)]) / LFO_GAIN)
        bias = self.head.bias
        assert bias is not None  # Conv1d's default, bias=True
        with torch.no_grad():  # no vibrato at the start: a random f0 curve smears the partials into noise
            self.head.weight[-1].zero_()
            bias[-1].zero_()
            # Harmonics start at a falling k^-2 slope, as instruments have: started flat (every harmonic as loud as
            # the fundamental), they cost more than they earned and the network let the noise bands carry the notes.
            k = torch.arange(1, HARMONICS + 1, dtype=torch.float32)
            target = (0.5 * k ** -2.0) ** (1 / math.log(10.0))          # exp_sigmoid's sigmoid for that amplitude
            bias[1:1 + HARMONICS] = torch.log(target / (1 - target))
        assert cfg.coarse * 2 ** len(cfg.channels) == FRAMES, "coarse × 2^blocks must equal FRAMES"

    def _wobble(self, c: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """[B, FRAMES, HARMONICS] each harmonic's amplitude factor exp(σ·m − σ²) (power kept on average): m its slow
        and fast curves, read from a place that depends on the pitch (so the notes of a chord wobble apart), σ the
        note's depth, interpolated from the lowest to the highest harmonic on a log scale."""
        depth = MAX_JITTER * torch.sigmoid(JITTER_GAIN * self.jitter(c))[:, None, :]        # [B, 1, 4]
        tilt = self.jitter_tilt
        slow = depth[..., :1] * (1 - tilt) + depth[..., 1:2] * tilt                          # [B, 1, H]
        fast = depth[..., 2:3] * (1 - tilt) + depth[..., 3:4] * tilt
        curves = _read_from(self.jitter_curves, _key_place(pitch, self.jitter_curves.shape[1]))  # [2, B, FRAMES, H]
        return torch.exp(slow * curves[0] + fast * curves[1] - (slow * slow + fast * fast))

    def _lfo(self, c: torch.Tensor) -> torch.Tensor:
        """[B, FRAMES] the vibrato LFO in semitones: depth × fade-in after the onset delay × sin(2π rate t)."""
        depth, rate, delay = torch.sigmoid(LFO_GAIN * self.lfo(c)).unbind(1)
        t = torch.arange(FRAMES, device=c.device, dtype=c.dtype)[None, :] * (HOP / SAMPLE_RATE)
        fade = torch.clamp((t - MAX_LFO_DELAY * delay[:, None]) / LFO_FADE, 0.0, 1.0)
        hz = LFO_RATES[0] + (LFO_RATES[1] - LFO_RATES[0]) * rate[:, None]
        return MAX_LFO_CENTS / 100.0 * depth[:, None] * fade * torch.sin(2 * math.pi * hz * t)

    def _noise_draw(self, c: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """[B, FRAMES, noise bands] what the random curves add to the noise bands' logits: read from a random place
        per note in training, from a place set by the pitch when played (eval mode, the export)."""
        frames = self.draw_curves.shape[1]
        place = torch.randint(0, frames, pitch.shape, device=c.device) if self.training else _key_place(pitch, frames)
        curves = _read_from(self.draw_curves, place).transpose(0, 1)                          # [B, 2 draw, FRAMES]
        return self.draw(curves).transpose(1, 2) * (DRAW_GAIN * self.draw_gain(c))[:, None, :]

    def body_gain(self, z: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """[B, HARMONICS] each harmonic's gain from the timbre's body filter, read at the harmonic's frequency."""
        gains = MAX_BODY * torch.tanh(BODY_GAIN * self.body(z) / MAX_BODY)                 # [B, BODY_BANDS]
        where = self.body_weights[torch.clamp(pitch - PITCH_MIN, 0, N_PITCHES - 1)]        # [B, H, BODY_BANDS]
        return torch.exp(torch.matmul(where, gains[:, :, None])[..., 0])

    def condition(self, z: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        p = torch.clamp(pitch - PITCH_MIN, 0, N_PITCHES - 1)
        rel = (pitch.to(torch.float32) - 54.0) / 30.0
        return self.cond(torch.cat([z, self.pitch_embed(p), rel[:, None], velocity[:, None] * 2 - 1], dim=1))

    def forward(self, z: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor, vibrato_at: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The controls at `velocity`; with `vibrato_at` [B], the vibrato and the unison's detune those of that
        velocity instead: the conv stack runs on the doubled batch, the head's other outputs only on the first half
        (the played ones), so the second costs the stack alone."""
        n = z.shape[0]
        if vibrato_at is not None:
            z, pitch, velocity = torch.cat([z, z]), torch.cat([pitch, pitch]), torch.cat([velocity, vibrato_at])
        c = self.condition(z, pitch, velocity)
        x = self.start(c).reshape(z.shape[0], self.cfg.channels[0], self.cfg.coarse)
        for block in self.blocks:
            x = block(x, c)
        if vibrato_at is None:
            out = self.head(x).transpose(1, 2)                                   # [B, FRAMES, outputs]
            vibrato, c_vibrato = out[..., -1:], c
        else:
            out = self.head(x[:n]).transpose(1, 2)
            bias = self.head.bias
            assert bias is not None  # Conv1d's default, bias=True
            vibrato = F.conv1d(x[n:], self.head.weight[-1:], bias[-1:]).transpose(1, 2)
            z, pitch, c, c_vibrato = z[:n], pitch[:n], c[:n], c[n:]
        level = exp_sigmoid(out[..., :1] - 1.0)  # harmonics start audible, noise quiet (as DDSP)
        shape = exp_sigmoid(out[..., 1:1 + HARMONICS])
        if self.cfg.body:
            shape = shape * self.body_gain(z, pitch)[:, None, :]
        amplitudes = level * shape / shape.sum(dim=-1, keepdim=True)
        if self.cfg.jitter:
            amplitudes = amplitudes * self._wobble(c, pitch)
        noise_logits = out[..., 1 + HARMONICS:1 + HARMONICS + self.cfg.noise_bands]
        if self.cfg.noise_draw:
            noise_logits = noise_logits + self._noise_draw(c, pitch)
        noise = exp_sigmoid(noise_logits - 5.0)
        # Vibrato is slow (5-7 Hz): the f0 curve is smoothed over 40 ms, so it cannot jitter the partials; and it
        # is a deviation about the note's pitch, never a detune (its mean over the note is removed): a run that
        # could offset it played random timbres a median 31 cents out of tune.
        f0_dev = F.avg_pool1d(self.cfg.max_vibrato * torch.tanh(vibrato).transpose(1, 2), 9, stride=1,
                              padding=4, count_include_pad=False).transpose(1, 2)[..., 0]
        f0_dev = f0_dev - f0_dev.mean(dim=1, keepdim=True)
        if self.cfg.lfo:
            f0_dev = f0_dev + self._lfo(c_vibrato)
        unison = None
        if self.cfg.unison:
            u = self.unison(c)
            detune = torch.sigmoid(UNISON_GAIN * (u if vibrato_at is None else self.unison(c_vibrato))[:, 0])
            angle = torch.sigmoid(UNISON_GAIN * u[:, 1])
            unison = torch.stack([MAX_UNISON_CENTS / 100.0 * detune, 0.25 * math.pi * angle], dim=1)
        return smooth_frames(amplitudes), smooth_frames(f0_dev), smooth_frames(noise), unison


class Encoder(nn.Module):
    """A real note's log-mel [B, MEL_BANDS, frames] → (mean, log-variance) of z."""

    def __init__(self, z_dim: int, width: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = MEL_BANDS + 2
        for cout in (128, 192, width, width, width):
            layers += [nn.Conv1d(cin, cout, 5, stride=2, padding=2), nn.LeakyReLU(0.2)]
            cin = cout
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(2 * width, 2 * z_dim)

    def forward(self, mel: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond = torch.stack([(pitch.to(torch.float32) - 54.0) / 30.0, velocity * 2 - 1], 1)
        h = self.net(torch.cat([mel, cond[:, :, None].expand(-1, -1, mel.shape[-1])], 1))
        mean, logvar = self.out(torch.cat([h.mean(-1), h.amax(-1)], 1)).chunk(2, dim=1)
        # Means stay within ±4 (where the prior has its mass): unbounded ones ran to thousands of nats of KL while
        # the KL weight warmed up, and the decoder, fed such latents, diverged.
        return 4.0 * torch.tanh(mean / 4.0), torch.clamp(logvar, -12.0, 4.0)


class MelFeatures(nn.Module):
    """Log-mel spectrogram (MEL_BANDS bands to 16 kHz, 10 ms hop) of 48 kHz audio: the encoder's input."""

    fb: torch.Tensor  # buffers (register_buffer), named here for the type checker
    window: torch.Tensor

    def __init__(self, n_fft: int = 2048) -> None:
        super().__init__()
        fb = mel_filters(MEL_BANDS, n_fft, 30.0, 16000.0, average=False)
        self.register_buffer("fb", torch.from_numpy(fb), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.n_fft = n_fft

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(audio, self.n_fft, MEL_HOP, window=self.window, return_complex=True).abs()
        return torch.log(torch.matmul(self.fb, spec) + 1e-4) / 4.0


class Voice(nn.Module):
    """The whole playable voice: (z, pitch, velocity) → audio [B, FRAMES * HOP]; this is what is exported.

    The played z is the contract's N(0, I) draw; it reaches the generator through the prior map
    z → prior_mean + z · prior_map (prior_map: the transposed Cholesky factor), a Gaussian fit of where the encoder
    puts real notes (`fit_prior`). Without it random latents fell between the notes the decoder learned: 9 of 14
    families and twice the FID of the same decoder's reconstructions; with it, random latents score as
    reconstructions do."""

    prior_mean: torch.Tensor  # buffers (register_buffer), named here for the type checker
    prior_map: torch.Tensor

    def __init__(self, cfg: VoiceConfig) -> None:
        super().__init__()
        self.generator = Generator(cfg)
        self.synth = HarmonicNoiseSynth(bands=cfg.noise_bands, frame_noise=cfg.frame_noise)
        self.register_buffer("prior_mean", torch.zeros(cfg.z_dim))
        self.register_buffer("prior_map", torch.eye(cfg.z_dim))

    def forward(self, z: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        return self.decode(self.prior_mean + z @ self.prior_map, pitch, velocity)

    def decode(self, latent: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        """Audio of generator latents (the encoder's space, as training uses them), as played."""
        amplitudes, f0_dev, noise, unison = self.controls(latent, pitch, velocity)
        return self.synth(amplitudes, f0_dev, noise, pitch, unison=unison)

    def controls(self, latent: torch.Tensor, pitch: torch.Tensor,
                 velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The generator's controls as played: its amplitudes and noise at `velocity`, its vibrato and the unison's
        detune at VIBRATO_VELOCITY, so velocity layers blend in phase."""
        return self.generator(latent, pitch, velocity, torch.full_like(velocity, VIBRATO_VELOCITY))

    def to_input(self, latent: torch.Tensor) -> torch.Tensor:
        """The played z whose prior map is this generator latent (an encoded note's, for a preset)."""
        return torch.linalg.solve_triangular(self.prior_map, latent - self.prior_mean, upper=True, left=False)

    @torch.no_grad()
    def fit_prior(self, means: torch.Tensor, variances: torch.Tensor) -> None:
        """Set the prior map from the encoder's posteriors of many real notes ([N, z_dim] each): the mean and
        the Cholesky factor of the aggregate posterior's covariance (spread of the means plus the mean variance)."""
        m = means.double()
        cov = torch.cov(m.T) + torch.diag(variances.double().mean(0))
        scale = torch.linalg.cholesky(cov + 1e-6 * torch.eye(len(cov), dtype=cov.dtype))
        self.prior_mean.copy_(m.mean(0))
        self.prior_map.copy_(scale.T)
