"""Pictures of the output: a stereo peak/RMS meter with a clip light that holds, and a scope with a spectrum.

Both are plain QPainter widgets fed with what synth.engine.meter's `read()` returns (the sound process's status
carries it); they never touch audio buffers. A meter shows, per side, the RMS as a bar and the peak as a line on a
dB scale from FLOOR_DB to 0 dBFS; the clip light turns red when a side reached the limiter's ceiling and stays
lit for CLIP_HOLD_S, so a one-block overload is not missed between two looks."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QPainter, QPen, QPolygonF
from PyQt6.QtWidgets import QWidget

FLOOR_DB = -60.0
CLIP_HOLD_S = 2.0
PEAK_FALL_DB_PER_S = 20.0  # the peak line falls back this fast after a louder block


class LevelMeter(QWidget):
    """Two horizontal bars (left, right): RMS filled, peak as a line that falls slowly, and a clip light."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.rms_db = [FLOOR_DB, FLOOR_DB]
        self.peak_db = [FLOOR_DB, FLOOR_DB]
        self.clip_until = [0.0, 0.0]
        self._last = clock()
        self.setMinimumHeight(36)
        self.setToolTip("output level: RMS bar, peak line; red light = reached the limiter (held 2 s)")

    def set_levels(self, levels: dict | None) -> None:
        """Take a Meter.read() result (None: no audio, the bars fall to the floor)."""
        now = self.clock()
        fall = PEAK_FALL_DB_PER_S * (now - self._last)
        self._last = now
        for side in (0, 1):
            if levels is None:
                self.rms_db[side], self.peak_db[side] = FLOOR_DB, FLOOR_DB
                continue
            self.rms_db[side] = max(FLOOR_DB, float(levels["rms_db"][side]))
            self.peak_db[side] = max(FLOOR_DB, float(levels["peak_db"][side]), self.peak_db[side] - fall)
            if levels["clipped"][side]:
                self.clip_until[side] = now + CLIP_HOLD_S
        self.update()

    def clipped(self, side: int) -> bool:
        """Whether the clip light of a side (0 left, 1 right) is lit now."""
        return self.clock() < self.clip_until[side]

    @staticmethod
    def fraction(db: float) -> float:
        """Where a level sits along the bar, 0 at FLOOR_DB and 1 at 0 dBFS."""
        return min(max((db - FLOOR_DB) / -FLOOR_DB, 0.0), 1.0)

    def paintEvent(self, event: object) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        light = 14
        bar_w = w - light - 6
        row = (h - 2) / 2
        for side in (0, 1):
            y = 1 + side * row
            p.fillRect(QRectF(0, y, bar_w, row - 2), QColor(30, 30, 30))
            rms = self.fraction(self.rms_db[side])
            colour = QColor(70, 190, 90) if self.rms_db[side] < -12 else QColor(230, 190, 60)
            p.fillRect(QRectF(0, y, bar_w * rms, row - 2), colour)
            x = bar_w * self.fraction(self.peak_db[side])
            p.setPen(QPen(QColor(240, 240, 240), 2))
            p.drawLine(QPointF(x, y), QPointF(x, y + row - 2))
            lit = self.clipped(side)
            p.fillRect(QRectF(w - light, y, light, row - 2), QColor(230, 40, 40) if lit else QColor(70, 20, 20))
        p.setPen(QColor(120, 120, 120))
        for db in (-48, -36, -24, -12, -6):  # scale ticks
            x = bar_w * self.fraction(db)
            p.drawLine(QPointF(x, h - 4), QPointF(x, h))
        p.end()


class Scope(QWidget):
    """The latest output frames as a waveform (left + right over two, scaled to its own peak, which is printed),
    beside their spectrum (dB over log frequency, Hann-windowed)."""

    def __init__(self, rate: int = 48000) -> None:
        super().__init__()
        self.rate = rate
        self.wave: np.ndarray = np.zeros(0, dtype=np.float32)
        self.spectrum_db: np.ndarray = np.zeros(0, dtype=np.float64)
        self.freqs: np.ndarray = np.zeros(0, dtype=np.float64)
        self.setMinimumHeight(90)
        self.setToolTip("the output: waveform (left) and spectrum, 20 Hz to 20 kHz (right)")

    def set_frames(self, frames: list | np.ndarray | None) -> None:
        """Take the scope's frames ([n, 2]) from a Meter.read()."""
        if frames is None or len(frames) == 0:
            self.wave = np.zeros(0, dtype=np.float32)
            self.spectrum_db = np.zeros(0)
        else:
            x = np.asarray(frames, dtype=np.float64).mean(axis=1)
            self.wave = x.astype(np.float32)
            w = np.hanning(len(x))
            mag = np.abs(np.fft.rfft(x * w)) * 2 / w.sum()
            self.freqs = np.fft.rfftfreq(len(x), 1 / self.rate)
            self.spectrum_db = 20 * np.log10(np.maximum(mag, 1e-6))
        self.update()

    def paintEvent(self, event: object) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        half = w // 2 - 3
        p.fillRect(0, 0, w, h, QColor(20, 22, 26))
        scale = 1.0
        if len(self.wave):
            n = len(self.wave)
            scale = max(float(np.abs(self.wave).max()), 0.01)  # the waveform fills the height: its peak says how loud
            xs = np.linspace(0, half, n)
            ys = h / 2 - np.clip(self.wave / scale, -1, 1) * (h / 2 - 2)
            p.setPen(QPen(QColor(90, 200, 255), 1))
            p.drawPolyline(QPolygonF([QPointF(float(a), float(b)) for a, b in zip(xs[::2], ys[::2])]))
        if len(self.spectrum_db) > 1:
            keep = (self.freqs >= 20) & (self.freqs <= 20000)
            f, db = self.freqs[keep], self.spectrum_db[keep]
            xs = half + 6 + (np.log10(f) - np.log10(20)) / 3 * (w - half - 6)
            ys = h - 2 - (np.clip(db, FLOOR_DB - 30, 0) - (FLOOR_DB - 30)) / -(FLOOR_DB - 30) * (h - 4)
            p.setPen(QPen(QColor(255, 170, 70), 1))
            p.drawPolyline(QPolygonF([QPointF(float(a), float(b)) for a, b in zip(xs, ys)]))
        p.setPen(QColor(60, 60, 60))
        p.drawLine(half + 3, 0, half + 3, h)
        p.setPen(Qt.GlobalColor.gray)
        p.drawText(4, 12, f"scope (±{scale:.2f})" if len(self.wave) else "scope")
        p.drawText(half + 9, 12, "spectrum")
        p.end()
