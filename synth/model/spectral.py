"""IF-Mel spectral representation (GANSynth's best): log-magnitude and instantaneous frequency on a mel-warped axis.

Reduced from GANSynth's 2048/512 STFT to n_fft 1024, hop 512, so a 4 s note at 16 kHz is 128 frames x 512 bins
(DC dropped). Both directions are plain tensor maths (matmul, cumsum, pad) so the inverse exports to ONNX and runs
inside the model graph.
"""
from __future__ import annotations

import math

import numpy as np
import torch

SAMPLE_RATE = 16000
NOTE_SAMPLES = 64000
N_FFT = 1024
HOP = 512
N_FRAMES = 128
N_BINS = N_FFT // 2  # bins 1..512: DC dropped, Nyquist kept
LOG_EPS = 1e-6
# Version of the feature definition stored in checkpoints: 2 measures phase against the Hann window's alternation.
FEATURES_VERSION = 2
# Enough padding that frame t is centred on sample t*HOP and there are exactly N_FRAMES frames.
_PAD_LEFT = N_FFT // 2
_PADDED = (N_FRAMES - 1) * HOP + N_FFT
# A note is held 3 s, then released (NSynth's layout); from this frame on the note may only fade.
RELEASE_FRAME = math.ceil(3.0 * SAMPLE_RATE / HOP)
# How far a release frame may rise above the quietest release frame before it (beating partials, reverb tails).
RELEASE_RISE_DB = 6.0


def check_features(version: int, source: object) -> None:
    """Refuse a checkpoint whose features this version would decode differently (its "features" entry)."""
    if version != FEATURES_VERSION:
        raise ValueError(f"{source} was trained on an older feature definition (phase without the Hann window's "
                         "alternation); fine-tune it in a new --out directory with train --init-from")


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """HTK mel scale."""
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def mel_matrix(n_bins: int = N_BINS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Linear→mel weights [n_bins, n_bins]: each mel column is a triangle over linear bins, normalised to sum 1.

    Columns are averages (not sums) so mel IF stays in [-1, 1] and needs no re-wrapping, which keeps the warp
    linear and invertible by a pseudo-inverse.
    """
    lin_hz = np.arange(1, n_bins + 1) * (sample_rate / 2) / n_bins
    lin_mel = hz_to_mel(lin_hz)
    edges = np.linspace(0.0, hz_to_mel(sample_rate / 2), n_bins + 2)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    up = (lin_mel[:, None] - lo[None, :]) / (mid - lo)[None, :]
    down = (hi[None, :] - lin_mel[:, None]) / (hi - mid)[None, :]
    w = np.maximum(0.0, np.minimum(up, down))
    # Mel bands narrower than a linear bin catch no bin centre: give them the nearest linear bin.
    empty = w.sum(axis=0) == 0
    nearest = np.abs(lin_mel[:, None] - mid[None, empty]).argmin(axis=0)
    w[nearest, np.flatnonzero(empty)] = 1.0
    return w / w.sum(axis=0, keepdims=True)


class IFMel(torch.nn.Module):
    """Audio [B, 64000] ⇄ features [B, 2, 128, 512]: channel 0 log mel magnitude, channel 1 mel IF in [-1, 1].

    With mel=False the frequency axis stays linear (GANSynth's plain "IF"), which inverts losslessly; the square
    mel warp has rank 363 of 512, so it smears detail above ~2 kHz (see tests/test_spectral.py for the numbers).

    Phase is measured against pi * k for bin k: a Hann window starting at the frame's first sample turns one
    sinusoid into bins of alternating sign, so without that offset a partial's bins would need opposite phases.
    With it they share one phase and one IF, and a constant IF over time is a steady tone at the right pitch (the
    first frame's "IF" is its phase). Encoding and decoding both apply it, so the round trip stays exact.
    """

    def __init__(self, mel: bool = True) -> None:
        super().__init__()
        self.mel = mel
        w = mel_matrix() if mel else np.eye(N_BINS)
        self.register_buffer("to_mel", torch.tensor(w, dtype=torch.float32))
        self.register_buffer("from_mel", torch.tensor(np.linalg.pinv(w, rcond=1e-6), dtype=torch.float32))
        window = torch.hann_window(N_FFT, periodic=True)
        self.register_buffer("window", window)
        self.register_buffer("alternation", math.pi * (torch.arange(1, N_BINS + 1) % 2).float(),
                             persistent=False)
        k = torch.arange(N_BINS + 1, dtype=torch.float64)[:, None]
        n = torch.arange(N_FFT, dtype=torch.float64)[None, :]
        scale = torch.full((N_BINS + 1, 1), 2.0, dtype=torch.float64)
        scale[0] = scale[-1] = 1.0
        ang = 2 * math.pi * k * n / N_FFT
        self.register_buffer("idft_cos", (scale * torch.cos(ang) / N_FFT).float())
        self.register_buffer("idft_sin", (-scale * torch.sin(ang) / N_FFT).float())
        env = torch.zeros(_PADDED + HOP, dtype=torch.float64)
        w2 = window.double() ** 2
        for t in range(N_FRAMES):
            env[t * HOP:t * HOP + N_FFT] += w2
        self.register_buffer("inv_envelope", (1.0 / env[_PAD_LEFT:_PAD_LEFT + NOTE_SAMPLES]).float())
        # Log-magnitude range mapped to [-1, 1] for the generator's tanh output; set from data by set_range.
        self.register_buffer("mag_range", torch.tensor([math.log(LOG_EPS), 3.0]))

    def set_range(self, lo: float, hi: float) -> None:
        self.mag_range.copy_(torch.tensor([lo, hi]))

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio → features scaled to [-1, 1] (the generator's output space)."""
        f = self.forward(audio)
        lo, hi = self.mag_range[0], self.mag_range[1]
        mag = torch.clamp((f[:, 0] - lo) / (hi - lo) * 2 - 1, -1.0, 1.0)
        return torch.stack([mag, f[:, 1]], dim=1)

    def decode(self, feats: torch.Tensor, phase: torch.Tensor | None = None) -> torch.Tensor:
        """Generator-space features → audio; with `phase` [B, 128, 512] (linear bins) the IF channel is unused."""
        lo, hi = self.mag_range[0], self.mag_range[1]
        mag = (feats[:, 0] + 1) * 0.5 * (hi - lo) + lo
        return self.inverse(torch.stack([mag, feats[:, 1]], dim=1), phase)

    def fading_release(self, feats: torch.Tensor) -> torch.Tensor:
        """Generator-space features with a release that cannot swell back: after note-off no frame is louder than
        the quietest release frame before it plus RELEASE_RISE_DB.

        The generator's convolutions leave a burst of energy in the last frames before the note's edge (measured
        up to 85 dB above the release it follows); a released note only fades, so that burst is cut. On real notes
        the rule moves 3 % of notes by more than 1 dB in frames within 60 dB of their peak.
        """
        lo, hi = self.mag_range[0], self.mag_range[1]
        logmag = (feats[:, 0] + 1) * 0.5 * (hi - lo) + lo
        level = torch.logsumexp(2 * logmag[:, RELEASE_FRAME:], dim=2) / 2                      # [B, frames]
        n = level.shape[1]
        quietest = -torch.nn.functional.max_pool1d(
            torch.nn.functional.pad(-level, (n - 1, 0), value=-1e4)[:, None], n, stride=1)[:, 0]
        cut = torch.clamp(quietest + RELEASE_RISE_DB / 20 * math.log(10) - level, max=0.0) * (2 / (hi - lo))
        mag = torch.cat([feats[:, 0, :RELEASE_FRAME], feats[:, 0, RELEASE_FRAME:] + cut[:, :, None]], dim=1)
        return torch.stack([mag, feats[:, 1]], dim=1)

    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """Complex STFT [B, 128, 512] of 4 s notes, DC bin dropped."""
        x = torch.nn.functional.pad(audio, (_PAD_LEFT, _PADDED - _PAD_LEFT - audio.shape[-1]))
        spec = torch.stft(x, N_FFT, HOP, window=self.window, center=False, return_complex=True)
        return spec[:, 1:, :].transpose(1, 2)

    def harmonic_phase(self, pitch: torch.Tensor) -> torch.Tensor:
        """[B] MIDI pitches → [B, 128, 512] phase of a steady harmonic tone, for `inverse` in place of the IF's.

        Every bin turns at the frequency of the harmonic of the equal-tempered (A = 440 Hz) fundamental nearest to
        it, so the bins a partial spreads over share one phase and the inverse STFT makes one sinusoid per harmonic.
        Each harmonic h of H starts at Schroeder's phase pi * h^2 / H, which keeps the waveform's crest factor low.
        """
        f0 = 440.0 * torch.pow(2.0, (pitch.to(torch.float32) - 69.0) / 12.0)[:, None]           # [B, 1]
        bin_hz = torch.arange(1, N_BINS + 1, dtype=torch.float32, device=pitch.device)[None] * (SAMPLE_RATE / N_FFT)
        h = torch.clamp(torch.round(bin_hz / f0), min=1.0)                                        # [B, K]
        count = torch.floor(SAMPLE_RATE / 2 / f0)
        cycles = h * f0 * (HOP / SAMPLE_RATE)          # cycles per hop; only the fraction matters
        advance = 2 * math.pi * (cycles - torch.floor(cycles))
        start = math.pi * h * h / count
        frames = torch.arange(N_FRAMES, dtype=torch.float32, device=pitch.device)[None, :, None]
        return start[:, None] + advance[:, None] * frames + self.alternation

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio → IF-Mel features."""
        spec = self.stft(audio)
        logmag = 0.5 * torch.log(spec.abs().square() @ self.to_mel + LOG_EPS**2)
        phase = torch.angle(spec) - self.alternation
        dphase = torch.diff(phase, dim=1, prepend=torch.zeros_like(phase[:, :1]))
        dphase = torch.remainder(dphase + math.pi, 2 * math.pi) - math.pi  # wrap to [-π, π)
        mel_if = (dphase / math.pi) @ self.to_mel
        return torch.stack([logmag, mel_if], dim=1)

    def inverse(self, feats: torch.Tensor, phase: torch.Tensor | None = None) -> torch.Tensor:
        """IF-Mel features → audio [B, 64000]: phase is the cumulative sum of IF (unless given), then a matmul
        inverse STFT."""
        mag2 = torch.exp(2.0 * feats[:, 0]) @ self.from_mel
        mag = torch.sqrt(torch.clamp(mag2 - LOG_EPS**2, min=0.0))
        if phase is None:
            phase = torch.cumsum((feats[:, 1] @ self.from_mel) * math.pi, dim=1) + self.alternation
        zero = torch.zeros_like(mag[:, :, :1])
        re = torch.cat([zero, mag * torch.cos(phase)], dim=2)
        im = torch.cat([zero, mag * torch.sin(phase)], dim=2)
        frames = (re @ self.idft_cos + im @ self.idft_sin) * self.window  # [B, T, N_FFT]
        # Overlap-add with hop = N_FFT/2: output block t is the first half of frame t plus the second half of t-1.
        first, second = frames[:, :, :HOP], frames[:, :, HOP:]
        blocks = torch.nn.functional.pad(first, (0, 0, 0, 1)) + torch.nn.functional.pad(second, (0, 0, 1, 0))
        audio = blocks.flatten(1)
        return audio[:, _PAD_LEFT:_PAD_LEFT + NOTE_SAMPLES] * self.inv_envelope


def log_spectral_distance(a: torch.Tensor, b: torch.Tensor, floor_db: float = -80.0) -> float:
    """Mean RMS difference in dB between the STFT magnitudes of two batches of notes (0 = identical)."""
    ifmel = IFMel(mel=False)
    ma, mb = ifmel.stft(a).abs(), ifmel.stft(b).abs()
    ref = ma.amax(dim=(1, 2), keepdim=True)
    da = 20 * torch.log10(torch.clamp(ma / ref, min=10 ** (floor_db / 20)))
    db = 20 * torch.log10(torch.clamp(mb / ref, min=10 ** (floor_db / 20)))
    return float(torch.sqrt(((da - db) ** 2).mean(dim=2)).mean())
