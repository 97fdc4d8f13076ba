"""Band-limited resampling of whole notes by FFT, done once per note at bank time, never in the audio callback.

A rendered note starts and ends in silence, so treating it as one period of a periodic signal (what the FFT
assumes) costs nothing audible, and any length ratio (16 kHz → 44.1 or 48 kHz, pitch transposition) is exact.
"""
from __future__ import annotations

import numpy as np

DC_CUT_HZ = 15.0


def resample(x: np.ndarray, n_out: int, rate_in: float = 0.0) -> np.ndarray:
    """x [..., n] → [..., n_out] float32. With rate_in given, content below DC_CUT_HZ is removed too."""
    n_in = x.shape[-1]
    spec = np.fft.rfft(x.astype(np.float64), axis=-1)
    if rate_in:
        spec[..., : int(np.ceil(DC_CUT_HZ * n_in / rate_in))] = 0
    bins = min(spec.shape[-1], n_out // 2 + 1)
    out = np.zeros(spec.shape[:-1] + (n_out // 2 + 1,), dtype=np.complex128)
    out[..., :bins] = spec[..., :bins]
    if n_out < n_in and n_out % 2 == 0:
        out[..., -1] = out[..., -1].real  # the new Nyquist bin of a shorter real signal is real
    return (np.fft.irfft(out, n_out, axis=-1) * (n_out / n_in)).astype(np.float32)
