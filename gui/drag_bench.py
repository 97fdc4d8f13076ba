"""`gansynth-live gui --drag-bench SECONDS`: how the window and the sound hold up while the pad is dragged.

A measurement, not part of playing: it drags the pad in circles at 60 frames per second while a chord sounds and
prints the GUI's frame times, its handler's cost, and the underruns (and JACK's own xruns) meanwhile.
"""
from __future__ import annotations

import math
import time

import numpy as np
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from gui.main_window import MainWindow
from synth.engine.routing import XrunWatch

CHORD = [48, 55, 60, 64, 67, 72, 76, 79]


class DragBench:
    """Drags the pad in circles at 60 frames per second while a chord sounds; prints what it measured."""

    def __init__(self, win: MainWindow, seconds: float, app: QApplication) -> None:
        self.win, self.seconds, self.app = win, seconds, app
        self.ticks: list[float] = []
        self.handler: list[float] = []
        self.per_second: list[int] = []  # underrun count at each whole second
        self.xruns: XrunWatch | None = None  # the JACK server's own stalls, when the sound goes to JACK
        self.timer = QTimer(win)
        self.timer.timeout.connect(self.tick)

    def start(self) -> None:
        for pitch in CHORD:
            self.win.inst.note_on(pitch, 90)
        st = self.win.inst.status()
        self.underruns0, self.late0 = st.underruns, st.late_blocks
        if st.audio and "JACK" in st.audio:
            self.xruns = XrunWatch("drag-bench-xruns")
        self.t0, self.t0_monotonic = time.perf_counter(), time.monotonic()
        self.timer.start(16)

    def tick(self) -> None:
        now = time.perf_counter()
        self.ticks.append(now)
        t = now - self.t0
        self.win.pad.set_position(0.5 + 0.45 * math.cos(t), 0.5 + 0.45 * math.sin(1.3 * t))
        self.win.pad.repaint()  # paint now, inside the measured handler
        self.handler.append(time.perf_counter() - now)
        if int(t) > len(self.per_second):
            self.per_second.append(self.win.inst.status().underruns)
        if t >= self.seconds:
            self.timer.stop()
            self.report()
            self.app.quit()

    def report(self) -> None:
        gaps = np.diff(self.ticks) * 1000
        handler = np.array(self.handler) * 1000
        st = self.win.inst.status()
        counts = np.diff([self.underruns0] + self.per_second)  # underruns in each second of the drag
        print(f"drag bench: {len(self.ticks)} pad moves in {self.seconds:.0f} s with {len(CHORD)} notes held")
        print(f"GUI frame interval ms: p50 {np.percentile(gaps, 50):.1f}  p99 {np.percentile(gaps, 99):.1f}  "
              f"max {gaps.max():.1f} (timer asks 16)")
        print(f"GUI handler (morph + post timbre + paint) ms: p50 {np.percentile(handler, 50):.2f}  "
              f"p99 {np.percentile(handler, 99):.2f}  max {handler.max():.2f}")
        if st.audio is None:
            print(f"audio: off ({self.win.inst.audio_error})")
        else:
            print(f"audio (its own process): {st.audio}; underruns during the drag "
                  f"{st.underruns - self.underruns0} ({st.late_blocks - self.late0} of them blocks the "
                  "effects stage had not made in time); "
                  f"callback p99 {st.callback_p99_us:.0f} us; voices {st.voices}; "
                  f"bank {st.bank_ready}/{st.bank_size}")
            if counts.any():
                print("seconds with underruns (second: count): " +
                      ", ".join(f"{i}: {c}" for i, c in enumerate(counts) if c))
        if self.xruns is not None:
            stalls = {int(t - self.t0_monotonic) for t in self.xruns.times if t >= self.t0_monotonic}
            self.xruns.close()
            ours = sum(int(c) for i, c in enumerate(counts) if c and not {i - 1, i, i + 1} & stalls)
            print(f"JACK server xruns during the drag (they stall every client): {len(stalls)} seconds with one "
                  f"({', '.join(map(str, sorted(stalls))) or 'none'}); underruns in no second next to one: {ours}")
