"""Measuring what a render or a recording played: a note's onset time and its pitch in cents, near a known time."""
import numpy as np


def hz(pitch: float) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def band_amplitude(audio: np.ndarray, rate: int, f: float, times: np.ndarray, window: float = 0.02) -> np.ndarray:
    """Amplitude at frequency f in a Hann window centred at each time."""
    n = int(window * rate)
    w = np.hanning(n)
    phasor = np.exp(-2j * np.pi * f * np.arange(n) / rate) * w
    out = []
    for t in times:
        i = int(t * rate) - n // 2
        seg = np.zeros(n)
        lo, hi = max(i, 0), min(i + n, len(audio))
        if hi > lo:
            seg[lo - i:hi - i] = audio[lo:hi]
        out.append(abs(np.dot(seg, phasor)) * 2 / w.sum())
    return np.asarray(out)


def cents(audio: np.ndarray, rate: int, t: float, pitch: int, length: float = 0.12) -> float:
    """Cents from the asked pitch of the spectral peak within a semitone of it, shortly after t."""
    seg = audio[int((t + 0.03) * rate):int((t + 0.03 + length) * rate)]
    n = 1 << 19
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    f = hz(pitch)
    band = np.flatnonzero((freqs > f * 2 ** (-1 / 12)) & (freqs < f * 2 ** (1 / 12)))
    k = band[np.argmax(spec[band])]
    a, b, c = np.log(spec[k - 1:k + 2] + 1e-12)
    peak = (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / n
    return float(1200 * np.log2(peak / f))
