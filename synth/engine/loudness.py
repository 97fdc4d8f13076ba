"""How loud a sound is, by ITU-R BS.1770's K-weighting: a note's loudest 400 ms (the momentary loudness a meter
shows while it plays; the bank brings every note to one loudness with it) and a render's integrated loudness
(`render --normalize`).

Numpy only: the filter's response is applied to each 400 ms block's spectrum, not run sample by sample.
"""
from __future__ import annotations

import functools

import numpy as np

WINDOW_SECONDS = 0.4
MAX_RISE_MS = 3000.0
# BS.1770's two K-weighting biquads (a high shelf of about +4 dB above 1.5 kHz, then a high-pass near 40 Hz),
# defined at 48 kHz; their response is evaluated at each bin's frequency, so any rate up to 48 kHz works.
_SHELF = ((1.53512485958697, -2.69169618940638, 1.19839281085285), (1.0, -1.69065929318241, 0.73248077421585))
_HIGHPASS = ((1.0, -2.0, 1.0), (1.0, -1.99004745483398, 0.99007225036621))


def k_weighting(freqs: np.ndarray) -> np.ndarray:
    """Power gain of the K-weighting filter at these frequencies (Hz)."""
    zi = np.exp(-2j * np.pi * np.asarray(freqs, np.float64) / 48000.0)  # z^-1 on the unit circle
    gain = np.ones(zi.shape)
    for b, a in (_SHELF, _HIGHPASS):
        gain *= np.abs((b[0] + b[1] * zi + b[2] * zi**2) / (a[0] + a[1] * zi + a[2] * zi**2)) ** 2
    return gain


@functools.lru_cache(maxsize=8)
def _bin_weights(win: int, rate: int) -> np.ndarray:
    """K-weighting per rfft bin of a `win`-sample block, doubled where a bin stands for two (read-only: cached, as
    the bank measures every note it stores with the same block)."""
    weights = k_weighting(np.fft.rfftfreq(win, 1.0 / rate))
    weights[1:(win + 1) // 2] *= 2.0
    weights.flags.writeable = False
    return weights


def k_weighted_power(blocks: np.ndarray, rate: int) -> np.ndarray:
    """Mean square of each K-weighted block (blocks along axis 0, samples along axis 1, any trailing channels),
    summed over channels, from the blocks' spectra (Parseval: every bin but DC and Nyquist stands for two)."""
    win = blocks.shape[1]
    weights = _bin_weights(win, rate)
    spec = np.abs(np.fft.rfft(blocks, axis=1)) ** 2
    weights = weights.reshape((1, -1) + (1,) * (spec.ndim - 2))
    return (spec * weights).reshape(len(blocks), -1).sum(axis=1) / win**2


def momentary_peak_lufs(x: np.ndarray, rate: int) -> float:
    """Loudness (LUFS) of the loudest 400 ms of x (a mono note, -1..1): found by plain energy, then K-weighted."""
    x = np.asarray(x)
    win = min(int(WINDOW_SECONDS * rate), len(x))
    if win == 0:
        return -np.inf
    start = _loudest(x, win, max(rate // 100, 1))
    power = float(k_weighted_power(np.asarray(x[None, start:start + win], np.float64), rate)[0])
    return -0.691 + 10.0 * np.log10(max(power, 1e-20))


def _loudest(x: np.ndarray, win: int, hop: int) -> int:
    """Where the `win` samples of x with the most energy start: looked for every `hop` samples, then to the sample
    around the best of those (the bank measures every note it stores; a cumulative sum of every sample of a note
    cost five times as much)."""
    blocks = len(x) // hop
    if blocks > win // hop:
        chunks = x[:blocks * hop].reshape(blocks, hop)
        cs = np.concatenate([[0.0], np.cumsum(np.einsum("ij,ij->i", chunks, chunks, dtype=np.float64))])
        near = int(np.argmax(cs[win // hop:] - cs[:-(win // hop)])) * hop
    else:
        near = 0
    lo, hi = max(near - hop, 0), min(near + hop, len(x) - win)
    part = np.asarray(x[lo:hi + win], np.float64)
    cs = np.concatenate([[0.0], np.cumsum(part * part)])
    return lo + int(np.argmax(cs[win:] - cs[:-win]))


def integrated_lufs(audio: np.ndarray, rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4) of a render ([frames] or [frames, channels]), in LUFS: K-weighted
    mean square per 400 ms block (75 % overlap), summed over channels, gated at -70 LUFS and then 10 LU under the
    mean of the blocks that pass; -inf for silence."""
    x = np.asarray(audio, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    win, hop = int(WINDOW_SECONDS * rate), int(0.1 * rate)
    if len(x) < win:
        x = np.concatenate([x, np.zeros((win - len(x), x.shape[1]))])
    starts = range(0, len(x) - win + 1, hop)
    z = np.concatenate([k_weighted_power(np.stack([x[s:s + win] for s in starts[i:i + 64]]), rate)
                        for i in range(0, len(starts), 64)])  # 64 blocks at a time: a long render fits in memory
    with np.errstate(divide="ignore"):
        blocks = -0.691 + 10 * np.log10(z)
    kept = z[blocks > -70.0]
    if not len(kept):
        return float("-inf")
    relative = -0.691 + 10 * np.log10(kept.mean()) - 10.0
    kept = z[(blocks > -70.0) & (blocks > relative)]
    return float(-0.691 + 10 * np.log10(kept.mean()))


def rise_ms(note: np.ndarray, rate: int) -> float:
    """Twice the time (ms) a note ([samples] or [samples, channels]: the mean power of the channels) takes until
    its 10 ms RMS first reaches half of its loudest 400 ms RMS: the linear fade-in that reaches half level when the
    note does (unweighted; 0 for silence, at most MAX_RISE_MS)."""
    frame = rate // 100
    power = np.asarray(note, np.float64) ** 2
    power = power.mean(axis=1) if power.ndim == 2 else power
    n = len(power) // frame
    frames = power[:n * frame].reshape(n, frame).mean(axis=1)
    if n < 40 or frames.max() <= 0.0:
        return 0.0
    loudest = np.convolve(frames, np.ones(40) / 40, mode="valid").max()
    return float(min(MAX_RISE_MS, 2 * 10.0 * np.argmax(np.sqrt(frames) >= 0.5 * np.sqrt(loudest))))
