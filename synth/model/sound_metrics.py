"""What a listener hears in one note, measured the same way on generated and real notes (numpy only).

Each function takes one mono note (float, the note-on at sample 0, note-off at `hold` seconds) and returns one
number; `note_metrics` returns them all. The held part analysed is 0.5 s after the onset to just before note-off.
"""
from __future__ import annotations

from typing import overload

import numpy as np

HOLD_SECONDS = 3.0
SILENCE_DB = -80.0
AUDIBLE_LEVEL_DB = 0.1  # level changes smaller than this (RMS over a held note) go unheard


def _frames_rms(x: np.ndarray, size: int) -> np.ndarray:
    n = len(x) // size
    return np.sqrt(np.mean(x[:n * size].reshape(n, size) ** 2, axis=1) + 1e-20)


@overload
def _db(x: np.ndarray) -> np.ndarray: ...
@overload
def _db(x: float | np.floating) -> float: ...


def _db(x: np.ndarray | float | np.floating) -> np.ndarray | float:
    return 20.0 * np.log10(np.maximum(x, 1e-10))


def held(audio: np.ndarray, sr: int, start: float = 0.5, hold: float = HOLD_SECONDS) -> np.ndarray:
    return audio[int(start * sr):int((hold - 0.05) * sr)]


def envelope_ripple(audio: np.ndarray, sr: int) -> float:
    """Std (dB) of the 10 ms RMS envelope of the held part around its own 100 ms moving average."""
    env = _db(_frames_rms(held(audio, sr), int(0.01 * sr)))
    smooth = np.convolve(env, np.ones(10) / 10, mode="valid")
    return float(np.std(env[4:4 + len(smooth)] - smooth))


def _spectrum(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    return np.fft.rfftfreq(len(x), 1.0 / sr), spec


def _partials(freqs: np.ndarray, power: np.ndarray, f0: float, sr: int,
              limit: float | None = None) -> list[tuple[int, float]]:
    """(bin, power) of each partial's peak, searched within ±3 % of k·f0 (finds slightly stretched partials)."""
    out = []
    df = freqs[1]
    for k in range(1, int(min(limit or sr / 2, sr / 2 - 0.03 * sr / 2) / f0) + 1):
        lo, hi = int(k * f0 * 0.97 / df), int(np.ceil(k * f0 * 1.03 / df)) + 1
        if hi >= len(power):
            break
        i = lo + int(np.argmax(power[lo:hi]))
        out.append((i, float(power[i])))
    return out


def harmonic_to_noise(audio: np.ndarray, sr: int, f0: float) -> float:
    """HNR (dB) of a 1 s held stretch: energy within ±4 bins (±4 Hz) of each partial's peak over the rest."""
    x = audio[int(1.0 * sr):int(2.0 * sr)]
    freqs, power = _spectrum(x, sr)
    mask = np.zeros(len(power), bool)
    for i, _ in _partials(freqs, power, f0, sr):
        mask[max(0, i - 4):i + 5] = True
    mask[:int(20.0 / freqs[1])] = False                  # DC and rumble are neither
    total_h, total_n = power[mask].sum(), power[~mask][int(20.0 / freqs[1]):].sum()
    return float(10.0 * np.log10((total_h + 1e-20) / (total_n + 1e-20)))


def peak_cents(power: np.ndarray, lo: int, hi: int, f: float, df: float) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of `power` [frames, bins] (bins `df` Hz apart): the pitch, in cents about `f`, of the peak within
    bins lo..hi-1, read between bins by a parabola on the log power; and the peak's log power."""
    i = np.clip(lo + np.argmax(power[:, lo:hi], axis=1), 1, power.shape[1] - 2)
    rows = np.arange(len(i))
    a, b, c = (np.log(power[rows, j] + 1e-20) for j in (i - 1, i, i + 1))
    peak = (i + 0.5 * (a - c) / np.minimum(a - 2 * b + c, -1e-6)) * df
    return 1200.0 * np.log2(np.maximum(peak, 1e-3) / f), b


def vibrato_depth(audio: np.ndarray, sr: int, f0: float) -> float:
    """Std (cents) of the held pitch: the strongest of the first 8 partials within 150 Hz-6 kHz (below, a 12 Hz
    bin is too coarse to read cents from) followed over 0.5-2.5 s in 4096-point frames every 10 ms, its peak read
    between bins by a parabola. A vibrato or a slow drift reads as a few cents or more, a steady tone as well
    under one; NaN where no partial is there to follow."""
    x = audio[int(0.5 * sr):int(2.5 * sr)]
    size, hop = 4096, int(0.01 * sr)
    if len(x) < size:
        return float("nan")
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::hop] * np.hanning(size)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    found = [(p, k) for k, (_, p) in enumerate(_partials(freqs, power.mean(axis=0), f0, sr, limit=6000.0)[:8], 1)
             if k * f0 >= 150.0]
    best, k = max(found, default=(0.0, 0))
    if best <= 0.0:
        return float("nan")
    f = k * f0
    cents, _ = peak_cents(power, max(1, int(f * 0.95 / freqs[1])), int(f * 1.05 / freqs[1]) + 1, f, freqs[1])
    return float(np.std(cents - np.median(cents)))


def sideband_level(audio: np.ndarray, sr: int, f0: float, rate: float) -> float:
    """Level (dB re partial) of sidebands at ±`rate` Hz around the strongest partials of a 1 s held stretch: the
    trace a frame-rate control signal leaves. Partials whose sideband falls within 8 Hz of another partial are
    skipped; NaN if every one is."""
    x = audio[int(1.0 * sr):int(2.0 * sr)]
    freqs, power = _spectrum(x, sr)
    partials = _partials(freqs, power, f0, sr, limit=8000.0)
    if not partials:
        return float("nan")
    strongest = sorted(partials, key=lambda p: -p[1])[:6]
    df = freqs[1]
    levels = []
    for i, p in strongest:
        f = freqs[i]
        side = []
        for s in (f - rate, f + rate):
            if s <= 20 or s >= sr / 2:
                continue
            if abs(s / f0 - round(s / f0)) * f0 < 8.0:
                continue
            j = int(round(s / df))
            side.append(power[max(0, j - 2):j + 3].max())
        if side:
            levels.append(10 * np.log10(max(side) / (p + 1e-30) + 1e-30))
    return float(np.median(levels)) if levels else float("nan")


def attack_time(audio: np.ndarray, sr: int) -> float:
    """Seconds from 10 % to 90 % of the peak of the 1 ms RMS envelope."""
    env = _frames_rms(audio[:int(HOLD_SECONDS * sr)], int(0.001 * sr))
    peak = env.max()
    t10 = int(np.argmax(env >= 0.1 * peak))
    t90 = int(np.argmax(env >= 0.9 * peak))
    return max(0, t90 - t10) * 0.001


def decay_2s(audio: np.ndarray, sr: int) -> float:
    """dB the 50 ms RMS falls from its peak to 2 s after the onset (positive = decays)."""
    env = _db(_frames_rms(audio[:int(2.05 * sr)], int(0.05 * sr)))
    return float(env.max() - env[-1])


def high_band(audio: np.ndarray, sr: int, cutoff: float = 8000.0) -> float:
    """Energy above `cutoff` Hz relative to the total, dB, over the held part."""
    freqs, power = _spectrum(held(audio, sr), sr)
    return float(10.0 * np.log10((power[freqs >= cutoff].sum() + 1e-20) / (power.sum() + 1e-20)))


def centroid(audio: np.ndarray, sr: int) -> float:
    """Spectral centroid (Hz) of the held part."""
    freqs, power = _spectrum(held(audio, sr), sr)
    return float((freqs * power).sum() / (power.sum() + 1e-20))


def loop_periodicity(audio: np.ndarray, sr: int, start: float = 0.5, end: float | None = None) -> float:
    """Largest autocorrelation of the detrended 100 ms RMS envelope (dB, every 10 ms) at a lag of 0.3-2 s where it
    peaks: a loop's repeating level pattern. For notes held longer than the model's note (rendered through the
    engine). The lag moves in 10 ms steps: in 100 ms steps a loop of 1.05 s fell between two lags, and a held note
    that repeated one stretch exactly scored 0.3-0.9 by what the stretch held. A correlation that only falls with
    the lag is a slow trend, not a period (an attack that settles over a second scored 0.6-0.9 when any lag
    counted, FluidSynth's own notes too): 0. A peak counts only when the part of the detrended envelope that repeats
    at its lag (sqrt(r) of its RMS) moves by AUDIBLE_LEVEL_DB or more: a pattern nobody hears is no loop to hear
    (a held brass note's 0.07 dB flicker every 25 ms scored 0.44 otherwise)."""
    x = np.asarray(audio[int(start * sr):int((end or len(audio) / sr) * sr)], np.float64)
    window, hop = int(0.1 * sr), int(0.01 * sr)
    if len(x) < 8 * window:
        return float("nan")
    energy = np.concatenate([[0.0], np.cumsum(x ** 2)])
    at = np.arange(0, len(x) - window + 1, hop)
    env = _db(np.sqrt((energy[at + window] - energy[at]) / window + 1e-20))
    t = np.arange(len(env))
    env = env - np.polyval(np.polyfit(t, env, 2), t)
    env = env - env.mean()
    denom = (env ** 2).sum()
    heard = (AUDIBLE_LEVEL_DB ** 2) / (denom / len(env))  # the least r whose repeating part is heard
    lo, hi = 30, min(200, len(env) - 31)  # lags in hops: 0.3-2 s, each with at least 30 hops of overlap
    r = np.array([(env[:-lag] * env[lag:]).sum() / denom for lag in range(lo - 1, hi + 2)])
    peaks = r[1:-1][(r[:-2] < r[1:-1]) & (r[1:-1] >= r[2:]) & (r[1:-1] >= heard)]
    return float(peaks.max()) if peaks.size else 0.0


def level_db(audio: np.ndarray, sr: int) -> float:
    """RMS level (dBFS) of the first 3 s."""
    return float(_db(np.sqrt(np.mean(audio[:int(HOLD_SECONDS * sr)] ** 2) + 1e-20)))


def note_metrics(audio: np.ndarray, sr: int, pitch: int, frame_rate: float) -> dict[str, float]:
    """Every measure of one note; `frame_rate` is the control rate whose sidebands are looked for."""
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    audio = np.asarray(audio, np.float64)
    return {"ripple_db": envelope_ripple(audio, sr), "sideband_db": sideband_level(audio, sr, f0, frame_rate),
            "hnr_db": harmonic_to_noise(audio, sr, f0), "attack_ms": 1000 * attack_time(audio, sr),
            "decay_db": decay_2s(audio, sr), "above8k_db": high_band(audio, sr), "centroid_hz": centroid(audio, sr),
            "level_db": level_db(audio, sr), "vibrato_cents": vibrato_depth(audio, sr, f0)}
