"""How loud a note sounds: the K-weighted level (ITU-R BS.1770) of its loudest 400 ms, the momentary loudness a
meter shows while the note plays. Used to bring every timbre to one loudness, as a player expects of presets.

Numpy only: the filter's response is applied to a spectrum of that one window, not run sample by sample.
"""
from __future__ import annotations

import numpy as np

WINDOW_SECONDS = 0.4
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


def momentary_peak_lufs(x: np.ndarray, rate: int) -> float:
    """Loudness (LUFS) of the loudest 400 ms of x (a mono note, -1..1): found by plain energy, then K-weighted."""
    x = np.asarray(x, np.float64)
    win = min(int(WINDOW_SECONDS * rate), len(x))
    if win == 0:
        return -np.inf
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    start = int(np.argmax(cs[win:] - cs[:-win]))
    seg = x[start:start + win]
    spec = np.abs(np.fft.rfft(seg)) ** 2
    weighted = spec * k_weighting(np.fft.rfftfreq(win, 1.0 / rate))
    # Parseval: mean square = (|X0|^2 + 2 sum |Xk|^2 (+|X_N/2|^2)) / N^2; the doubling is what the sum below does.
    power = (2.0 * weighted.sum() - weighted[0] - (weighted[-1] if win % 2 == 0 else 0.0)) / win**2
    return -0.691 + 10.0 * np.log10(max(power, 1e-20))
