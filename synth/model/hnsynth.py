"""Harmonic-plus-noise synthesis (DDSP's model) written with ops that export to ONNX and run fast on a CPU.

Harmonics: each 5 ms control frame becomes one period of a wavetable (harmonic amplitudes times a sine basis, a
matmul), read at the note's phase with linear interpolation in phase and between frames. f0 is exact from the MIDI
pitch; a small deviation curve (vibrato) shifts the phase. Noise: fixed band-limited noise signals, one per band,
each scaled by its band's magnitude, interpolated linearly between frames (or, for a voice with frame noise, drawn
per frame from more bands at 100 Hz resolution: FrameNoise). Both are phase-coherent and have no frame-rate grain by
construction. A crop (start frame, frames) can be synthesised alone, as training does.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from synth.core.notes import HOLD_SECONDS as HOLD_SECONDS, NOTE_SECONDS, SAMPLE_RATE  # HOLD_SECONDS: re-exported

HOP = 240                       # 5 ms control rate
TABLE = 512                     # wavetable length: holds 256 harmonics, we use HARMONICS of them
HARMONICS = 128
NOISE_BANDS = 32
BODY_BANDS = 40                 # the body filter's bands: log-spaced centres from 30 Hz to 24 kHz (about 1/4 octave)
LOW_CUT_HZ = 20.0              # the noise has nothing below this: no DC, no rumble
FRAMES = int(NOTE_SECONDS * SAMPLE_RATE) // HOP      # 800 control frames; the synth reads one more (the end)
NOTE_SAMPLES = FRAMES * HOP
# The unison's detune wanders by up to this share about its value along the note (a fixed slow curve, drift_curve):
# with a constant detune every partial beats at a multiple of one rate, so a held note's level repeats exactly
# once a beat (the Brass preset's middle C: every 0.64 s, loop periodicity 0.34 before the bank's loop).
UNISON_DRIFT = 0.5


def midi_to_hz(pitch: torch.Tensor) -> torch.Tensor:
    return 440.0 * torch.pow(2.0, (pitch.to(torch.float32) - 69.0) / 12.0)


def mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def mel_spaced(lo: float, hi: float, count: int) -> np.ndarray:
    """`count` frequencies (Hz) from lo to hi, evenly spaced on the mel scale."""
    return 700.0 * (10.0 ** (np.linspace(mel(lo), mel(hi), count) / 2595.0) - 1.0)


def band_edges(bands: int = NOISE_BANDS, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band edges in Hz, evenly spaced on the mel scale from 0 to Nyquist (bands + 1 values)."""
    return mel_spaced(0.0, sr / 2, bands + 1)


def between(at: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """For fractional positions among `points` evenly spaced points (clipped to them): the point below each and
    the weight of the point above (linear interpolation; at the last point, the one below it with weight 1)."""
    at = np.clip(at, 0.0, points - 1.0)
    low = np.minimum(np.floor(at).astype(int), max(points - 2, 0))
    return low, at - low


def stft_bands(n_fft: int, bands: int = NOISE_BANDS, sr: int = SAMPLE_RATE) -> np.ndarray:
    """[n_fft // 2 + 1, bands] 1 where an STFT bin lies in a noise band (none below LOW_CUT_HZ): sums bins into bands."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    band = np.clip(np.digitize(freqs, band_edges(bands, sr)) - 1, 0, bands - 1)
    return ((band[:, None] == np.arange(bands)[None, :]) & (freqs[:, None] >= LOW_CUT_HZ)).astype(np.float32)


def stft_power(audio: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """[B, bins, frames] power per STFT bin (no padded edges), scaled so a full-scale sine's bins sum to 0.5. Squares
    of the real and imaginary parts, not of a magnitude, so the gradient stays a number where a bin is silent."""
    n_fft = len(window)
    spec = torch.view_as_real(torch.stft(audio, n_fft, hop, window=window, center=False, return_complex=True))
    return 2 * spec.pow(2).sum(-1) / (n_fft * window.pow(2).sum())


def band_noise(bands: int = NOISE_BANDS, samples: int = NOTE_SAMPLES + HOP, sr: int = SAMPLE_RATE,
               seed: int = 1234) -> np.ndarray:
    """Fixed white noise split into bands by brick-wall masks in the frequency domain: [bands, samples], each band
    scaled so a magnitude of 1 in every band gives white noise of unit RMS. Nothing below LOW_CUT_HZ, so a note
    carries no DC and the bank can store it as rendered."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    freqs = np.fft.rfftfreq(samples, 1.0 / sr)
    edges = band_edges(bands, sr)
    out = np.empty((bands, samples), np.float32)
    for b in range(bands):
        mask = (freqs >= max(edges[b], LOW_CUT_HZ)) & (freqs < edges[b + 1] if b < bands - 1 else freqs <= edges[b + 1])
        out[b] = np.fft.irfft(spectrum * mask, n=samples)
    return out / out.sum(axis=0).std()


def drift_curve(frames: int = FRAMES + 1) -> np.ndarray:
    """[frames] a fixed slow wander in [-1, 1] per control frame: three sines of 0.21, 0.34 and 0.55 Hz (no common
    period within a note), as the tuning of two players or chorus voices drifts against each other."""
    t = np.arange(frames) * HOP / SAMPLE_RATE
    waves = [np.sin(2 * np.pi * f * t + p) for f, p in ((0.21, 0.4), (0.34, 2.1), (0.55, 4.0))]
    return (np.mean(waves, axis=0)).astype(np.float32)


def partial_jitter(harmonics: int = HARMONICS, frames: int = FRAMES, seed: int = 4321) -> np.ndarray:
    """[2, frames, harmonics] fixed random curves, one per harmonic, unit variance and circular in time: a slow one
    (low-passed at about 4 Hz) and a fast one (about 25 Hz). Scaled by the generator and put on each harmonic's log
    amplitude, they give every partial the slight, independent wobble a recorded note's partials have, so each is a
    narrow band rather than one exact line (the real notes' partials: harmonic-to-noise ratio 11-19 dB for reeds
    and pipes, ours 24-32 with exact lines)."""
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(frames, HOP / SAMPLE_RATE)
    out = np.empty((2, frames, harmonics), np.float32)
    for i, cutoff in enumerate((4.0, 25.0)):
        spectrum = np.fft.rfft(rng.standard_normal((harmonics, frames)), axis=1) * np.exp(-0.5 * (freqs / cutoff) ** 2)
        curves = np.fft.irfft(spectrum, n=frames, axis=1)
        out[i] = (curves / curves.std(axis=1, keepdims=True)).T
    return out


def body_weights(bands: int = BODY_BANDS, harmonics: int = HARMONICS) -> np.ndarray:
    """[pitches, harmonics, bands] linear interpolation on log frequency: where each harmonic of each MIDI pitch of
    the voice's range sits between the body filter's band centres, so a filter given in Hz reads the same gain at the
    same frequency whatever the pitch (harmonics beyond the last centre take its gain)."""
    from synth.core.notes import PITCH_MAX, PITCH_MIN

    centres = np.linspace(np.log2(30.0), np.log2(SAMPLE_RATE / 2), bands)
    pitches = torch.arange(PITCH_MIN, PITCH_MAX + 1)
    hz = midi_to_hz(pitches).double().numpy()[:, None] * np.arange(1, harmonics + 1)[None, :]
    low, frac = between((np.log2(hz) - centres[0]) / (centres[1] - centres[0]), bands)
    out = np.zeros((len(pitches), harmonics, bands), np.float32)
    np.put_along_axis(out, low[..., None], (1.0 - frac)[..., None], axis=2)
    np.put_along_axis(out, low[..., None] + 1, frac[..., None], axis=2)
    return out


class FrameNoise(torch.nn.Module):
    """Noise shaped by `bands` magnitudes per control frame at the resolution of a 2 * HOP-sample frame (100 Hz
    bins): each frame is a fixed random spectrum (unit power per bin) times the band magnitudes interpolated to its
    bins, brought to time by an inverse DFT written as two matmuls, sine-windowed and overlap-added at 50 %, so
    magnitudes of 1 everywhere give white noise of unit RMS. Finer in frequency than the brick-wall band
    recordings and 2.6 MB of constants instead of their 12 MB: spliced into rebuilt notes, the real notes' power
    between the partials in 128 bands took FID from 252 to 184, in our 32 bands to 213 (docs/models.md)."""

    real: torch.Tensor  # buffers (register_buffer), named here for the type checker
    imag: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    interp: torch.Tensor

    def __init__(self, bands: int, seed: int = 2468) -> None:
        super().__init__()
        n = 2 * HOP
        bins = n // 2 + 1
        rng = np.random.default_rng(seed)
        spectra = (rng.standard_normal((FRAMES + 1, bins)) + 1j * rng.standard_normal((FRAMES + 1, bins))) / math.sqrt(2)
        freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
        spectra[:, freqs < LOW_CUT_HZ] = 0.0
        k, t = np.arange(bins)[:, None], np.arange(n)[None, :]
        window = np.sin(np.pi * (t + 0.5) / n)  # its squares at 50 % overlap sum to 1: the noise's power is steady
        scale = np.full((bins, 1), 2.0 / math.sqrt(n))
        scale[0] = scale[-1] = 1.0 / math.sqrt(n)
        self.register_buffer("real", torch.tensor(spectra.real, dtype=torch.float32), persistent=False)
        self.register_buffer("imag", torch.tensor(spectra.imag, dtype=torch.float32), persistent=False)
        self.register_buffer("cos", torch.tensor(scale * np.cos(2 * np.pi * k * t / n) * window, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("sin", torch.tensor(-scale * np.sin(2 * np.pi * k * t / n) * window, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("interp", torch.from_numpy(band_interpolation(bands, freqs)), persistent=False)

    def forward(self, bands: torch.Tensor, start: int = 0) -> torch.Tensor:
        """bands [B, T+1, bands] (control frames start..start+T) → audio [B, T * HOP]: frame t of the noise is
        centred on control frame t, so segment t is frame t's second half and frame t+1's first."""
        batch, frames = bands.shape[0], bands.shape[1] - 1
        m = torch.matmul(bands, self.interp)                                            # [B, T+1, bins]
        sl = slice(start, start + frames + 1)
        x = torch.matmul(m * self.real[sl], self.cos) + torch.matmul(m * self.imag[sl], self.sin)
        return (x[:, 1:, :HOP] + x[:, :-1, HOP:]).reshape(batch, -1)

    def bin_power(self, edges: np.ndarray) -> np.ndarray:
        """[bins, len(edges) - 1] the share of the unit noise's power each of a frame's bins puts in each of these
        frequency ranges (its power spreads to the next bins' centres, as the window's main lobe spreads it)."""
        bins = self.interp.shape[1]
        freqs = np.fft.rfftfreq(NOTE_SAMPLES, 1.0 / SAMPLE_RATE)
        freqs = freqs[freqs >= LOW_CUT_HZ]
        low, frac = between(freqs / (SAMPLE_RATE / 2) * (bins - 1), bins)
        where = np.digitize(freqs, edges) - 1
        share = np.zeros((bins, len(edges) - 1))
        inside = (where >= 0) & (where < len(edges) - 1)
        np.add.at(share, (low[inside], where[inside]), 1.0 - frac[inside])
        np.add.at(share, (low[inside] + 1, where[inside]), frac[inside])
        return share / len(freqs)


def band_interpolation(bands: int, freqs: np.ndarray) -> np.ndarray:
    """[bands, len(freqs)] weights that interpolate band magnitudes (centres evenly spaced on the mel scale, as
    band_edges) linearly to these frequencies; below the first centre and above the last the end band holds."""
    edges = band_edges(bands)
    low, frac = between((mel(freqs) - mel(edges[0])) / (mel(edges[1]) - mel(edges[0])) - 0.5, bands)
    out = np.zeros((bands, len(freqs)), np.float32)
    cols = np.arange(len(freqs))
    out[low, cols] = 1.0 - frac
    if bands > 1:
        out[low + 1, cols] += frac
    return out


class HarmonicNoiseSynth(torch.nn.Module):
    """Controls → audio. amplitudes [B, T+1, HARMONICS] (linear, per harmonic), f0_dev [B, T+1] (semitones),
    noise [B, T+1, NOISE_BANDS] (linear band magnitudes), pitch [B] → audio [B, T * HOP]."""

    basis: torch.Tensor  # buffers (register_buffer), named here for the type checker
    noise: torch.Tensor
    ramp: torch.Tensor
    drift: torch.Tensor

    def __init__(self, harmonics: int = HARMONICS, table: int = TABLE, bands: int = NOISE_BANDS,
                 frame_noise: bool = False) -> None:
        super().__init__()
        n = torch.arange(table + 1, dtype=torch.float64)          # one guard point: reads at i + 1 need no wrap
        k = torch.arange(1, harmonics + 1, dtype=torch.float64)
        self.register_buffer("basis", torch.sin(2 * math.pi * k[:, None] * n[None, :] / table).float(),
                             persistent=False)
        self.frame_noise = FrameNoise(bands) if frame_noise else None
        if self.frame_noise is None:
            self.register_buffer("noise", torch.from_numpy(band_noise(bands)).half(), persistent=False)
        self.register_buffer("ramp", (torch.arange(HOP, dtype=torch.float32) / HOP), persistent=False)
        self.register_buffer("drift", torch.from_numpy(drift_curve()), persistent=False)
        self.harmonics, self.table = harmonics, table

    def _load_from_state_dict(self, state: dict, prefix: str, *args: object) -> None:
        state.pop(prefix + "noise", None)  # older checkpoints stored the noise; it is rebuilt from its seed
        super()._load_from_state_dict(state, prefix, *args)

    def harmonic_hz(self, pitch: torch.Tensor) -> torch.Tensor:
        """[B, 1, HARMONICS] the frequency of every harmonic of each pitch (the vibrato aside)."""
        k = torch.arange(1, self.harmonics + 1, device=pitch.device, dtype=torch.float32)
        return midi_to_hz(pitch)[:, None, None] * k

    def nyquist_mask(self, pitch: torch.Tensor) -> torch.Tensor:
        """[B, 1, HARMONICS] weights that fade harmonics out over the last 10 % below Nyquist."""
        return torch.clamp((0.5 * SAMPLE_RATE - self.harmonic_hz(pitch)) / (0.05 * SAMPLE_RATE), 0.0, 1.0)

    def forward(self, amplitudes: torch.Tensor, f0_dev: torch.Tensor, noise: torch.Tensor, pitch: torch.Tensor,
                start: int = 0, frames: int | None = None, unison: torch.Tensor | None = None) -> torch.Tensor:
        """Audio of control frames [start, start + frames) (default: all) from whole-note controls."""
        frames = amplitudes.shape[1] - 1 - start if frames is None else frames
        sl = slice(start, start + frames + 1)
        return (self.harmonic(amplitudes[:, sl], f0_dev, pitch, start, unison)
                + self.filtered_noise(noise[:, sl], start))

    def harmonic(self, amplitudes: torch.Tensor, f0_dev: torch.Tensor, pitch: torch.Tensor,
                 start: int = 0, unison: torch.Tensor | None = None) -> torch.Tensor:
        """amplitudes: the crop's frames (+1); f0_dev: the whole note's, so vibrato phase accumulates from the onset.

        unison [B, 2] (detune in semitones, mix angle θ in radians): the harmonics are read twice, a second voice
        `detune` above the first, weighted cos θ and sin θ (the power stays the note's while they beat); each is
        shifted so their power-weighted pitch is the note's, and the detune wanders along the note (UNISON_DRIFT).
        The beating and the split partials are what a soundfont's chorused and layered samples (ensembles, strings,
        reeds) have and one exact f0 cannot."""
        frames = amplitudes.shape[1] - 1
        tables = torch.matmul(amplitudes * self.nyquist_mask(pitch), self.basis)          # [B, T+1, TABLE+1]
        f0 = midi_to_hz(pitch)[:, None]                                                 # [B, 1] Hz
        # Vibrato in cycles of f0: the integral of the deviation, at frame rate (linear between frames).
        extra = (torch.pow(2.0, f0_dev / 12.0) - 1.0) * f0 * (HOP / SAMPLE_RATE)       # cycles per frame
        extra = (torch.cumsum(extra, dim=1) - extra)[:, start:start + frames + 1]      # at each frame's start
        if unison is None:
            return self._read(tables, f0, extra, start)
        detune, theta = unison[:, :1], unison[:, 1:]
        cos, sin = torch.cos(theta), torch.sin(theta)
        low, high = torch.pow(2.0, -detune * sin * sin / 12.0), torch.pow(2.0, detune * cos * cos / 12.0)
        # The detune's wander as cycles each voice gains on its mean rate (from the onset, like the vibrato).
        wander = UNISON_DRIFT * self.drift[None, :f0_dev.shape[1]] / 12.0
        def gained(share: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
            per = (torch.pow(2.0, share * wander) - 1.0) * mean * f0 * (HOP / SAMPLE_RATE)
            return (torch.cumsum(per, dim=1) - per)[:, start:start + frames + 1]
        return (cos * self._read(tables, f0 * low, extra * low + gained(-detune * sin * sin, low), start)
                + sin * self._read(tables, f0 * high, extra * high + gained(detune * cos * cos, high), start))

    def _read(self, tables: torch.Tensor, f0: torch.Tensor, extra: torch.Tensor, start: int) -> torch.Tensor:
        """The wavetables read at f0 [B, 1] Hz plus the vibrato `extra` [B, T+1] (cycles at each frame's start).

        The phase is linear within a frame, so it is found at frame rate (the onset's cycle count in float64: in
        float32 a note's last second read its tables up to 0.002 of a cycle off, a jitter heard as grain on the
        upper partials) and ramped across each frame. Four separate gathers (this frame's table and the next's, at
        i0 and i0 + 1) cost a quarter less in onnxruntime than one gather of the four indices joined."""
        batch, frames = tables.shape[0], tables.shape[1] - 1
        per_frame = f0.double() * (HOP / SAMPLE_RATE)                                    # cycles per frame
        onset = per_frame * torch.arange(start, start + frames + 1, device=tables.device,
                                         dtype=torch.float64)[None, :]
        at = onset - torch.floor(onset) + extra.double()
        at = (at - torch.floor(at)).float()                                             # [B, T+1] in [0, 1)
        step = (per_frame + (extra[:, 1:] - extra[:, :-1]).double()).float()             # [B, T] cycles
        phase = at[:, :-1, None] + step[:, :, None] * self.ramp                          # [B, T, HOP]
        pos = (phase - torch.floor(phase)) * self.table
        i0 = torch.clamp(torch.floor(pos), max=self.table - 1)
        w = (pos - i0).reshape(batch, -1)
        width = self.table + 1
        index = (i0.to(torch.int64)
                 + (torch.arange(frames, device=tables.device) * width)[None, :, None]).reshape(batch, -1)
        flat = tables.reshape(batch, -1)
        v00, v01 = torch.gather(flat, 1, index), torch.gather(flat, 1, index + 1)
        v10, v11 = torch.gather(flat, 1, index + width), torch.gather(flat, 1, index + (width + 1))
        a = self.ramp.repeat(frames)[None, :]
        this, nxt = v00 + w * (v01 - v00), v10 + w * (v11 - v10)
        return this + a * (nxt - this)

    def noise_components(self, noise: torch.Tensor) -> torch.Tensor:
        """The noise's magnitudes as parts whose powers add: the bands of the brick-wall noise, the bins of the
        frame noise (its bands overlap, so theirs do not)."""
        return noise if self.frame_noise is None else torch.matmul(noise, self.frame_noise.interp)

    def noise_band_power(self, edges: np.ndarray) -> np.ndarray:
        """[components, len(edges) - 1] the power a magnitude of 1 in each of noise_components puts in each of
        these frequency ranges."""
        if self.frame_noise is not None:
            return self.frame_noise.bin_power(edges)
        noise = self.noise.float().numpy().astype(np.float64)
        spec = np.abs(np.fft.rfft(noise, axis=1)) ** 2 * 2 / noise.shape[1] ** 2   # power per bin
        band = np.digitize(np.fft.rfftfreq(noise.shape[1], 1 / SAMPLE_RATE), edges) - 1
        return np.stack([spec[:, band == c].sum(1) for c in range(len(edges) - 1)], 1)

    def filtered_noise(self, bands: torch.Tensor, start: int = 0) -> torch.Tensor:
        if self.frame_noise is not None:
            return self.frame_noise(bands, start)
        batch, frames = bands.shape[0], bands.shape[1] - 1
        seg = self.noise[:, start * HOP:(start + frames) * HOP].float()
        seg = seg.reshape(seg.shape[0], frames, HOP).permute(1, 0, 2)                   # [T, bands, HOP]
        by_frame = bands.transpose(0, 1)                                                 # [T+1, B, bands]
        left = torch.matmul(by_frame[:-1], seg)                                         # [T, B, HOP]
        right = torch.matmul(by_frame[1:], seg)
        return (left + (right - left) * self.ramp).transpose(0, 1).reshape(batch, -1)


def exp_sigmoid(x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0, floor: float = 1e-7) -> torch.Tensor:
    """DDSP's scaled sigmoid: positive, smooth, with a wide dynamic range (about 140 dB). Written as the exp of a
    log-sigmoid, which onnxruntime computes 40 % faster than a power of a sigmoid."""
    return max_value * torch.exp(math.log(exponent) * torch.nn.functional.logsigmoid(x)) + floor


def spectral_loss(fake: torch.Tensor, real: torch.Tensor, sizes: tuple[int, ...] = (4096, 2048, 1024, 512, 256, 128),
                  log_weight: float = 1.0) -> torch.Tensor:
    """Multi-resolution STFT loss: L1 on magnitudes and on log magnitudes, averaged over the resolutions. Bins below
    LOW_CUT_HZ are left out: some soundfont notes carry DC or sub-audio drift (FluidR3: a tenth of the notes have
    more than 12 % of their energy below 20 Hz), which nobody hears and the synth should not spend itself on."""
    total = fake.new_zeros(())
    for size in sizes:
        window = torch.hann_window(size, device=fake.device)
        first = max(1, math.ceil(LOW_CUT_HZ * size / SAMPLE_RATE))
        spec = lambda x: torch.stft(x, size, size // 4, window=window,  # noqa: E731
                                    return_complex=True, center=True).abs()[:, first:]
        f, r = spec(fake), spec(real)
        total = total + (f - r).abs().mean() + log_weight * (torch.log(f + 1e-4) - torch.log(r + 1e-4)).abs().mean()
    return total / len(sizes)


def average_spectrum_loss(fake: torch.Tensor, real: torch.Tensor, smooth: int = 5, floor: float = 1e-9) -> torch.Tensor:
    """Log distance of the crops' power spectra at about 2 Hz resolution (one Hann-windowed FFT of the whole crop,
    smoothed over `smooth` bins; `floor` sits above 16-bit quantisation noise). Frame by frame, the STFT loss
    rewards a clean tone over a vibrato, chorus or bow noise whose timing it cannot predict; the crop's average
    spectrum shows how far the partials are smeared whatever their timing, so it asks for the smear."""
    n = fake.shape[-1]
    window = torch.hann_window(n, device=fake.device)
    first = max(1, math.ceil(LOW_CUT_HZ * n / SAMPLE_RATE))

    def power(x: torch.Tensor) -> torch.Tensor:
        p = torch.fft.rfft(x * window).abs().pow(2)[:, first:] / window.pow(2).sum()
        return torch.nn.functional.avg_pool1d(p[:, None], smooth, stride=1, padding=smooth // 2,
                                              count_include_pad=False)[:, 0]

    return (torch.log(power(fake) + floor) - torch.log(power(real) + floor)).abs().mean()


def mel_filters(bands: int = 192, n_fft: int = 4096, lo: float = 20.0, hi: float = 20000.0,
                average: bool = True) -> np.ndarray:
    """Triangular filters [bands, n_fft // 2 + 1], even on the mel scale from lo to hi, each averaging the
    magnitudes under it (or, `average` False, peaking at 1)."""
    edges = mel_spaced(lo, hi, bands + 2)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    fb = np.zeros((bands, len(freqs)), np.float32)
    for m in range(bands):
        a, b, c = edges[m:m + 3]
        fb[m] = np.clip(np.minimum((freqs - a) / (b - a), (c - freqs) / (c - b)), 0, None)
        if average:
            fb[m] /= max(fb[m].sum(), 1e-9)
    return fb


@functools.lru_cache(maxsize=None)
def _mel_bank(bands: int, n_fft: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(mel_filters(bands, n_fft)).to(device)


def mel_loss(fake: torch.Tensor, real: torch.Tensor, n_fft: int = 4096, bands: int = 192) -> torch.Tensor:
    """L1 between log-mel spectrograms (85 ms frames, mel bands to 20 kHz): the spectral loss's bins are even in
    Hz, so the band under 1 kHz, where a note's low partials and the dips between them are resolved, is a
    twenty-fourth of its weight; on the mel scale, as a listener (and the evaluation classifier) hears, it is about
    a quarter."""
    window = torch.hann_window(n_fft, device=fake.device)
    fb = _mel_bank(bands, n_fft, fake.device)

    def logmel(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x, n_fft, n_fft // 8, window=window, return_complex=True, center=True).abs()
        return torch.log(torch.matmul(fb, spec) + 1e-4)

    return (logmel(fake) - logmel(real)).abs().mean()


def smooth_frames(x: torch.Tensor) -> torch.Tensor:
    """Append the last frame once: the synth reads T+1 control frames for T frames of audio."""
    return torch.cat([x, x[:, -1:]], dim=1)
