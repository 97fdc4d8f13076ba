"""Starting the window: the model, the instrument and the session; the screenshot mode (the drag bench is in
gui.drag_bench)."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from PyQt6.QtCore import QBuffer, QIODevice, QTimer
from PyQt6.QtWidgets import QApplication

from gui.instrument import Instrument
from gui.main_window import MainWindow
from synth.core.config import config_dir
from synth.core.files import write_atomic
from synth.runtime.model import DEFAULT_MODEL
from synth.runtime.model_file import ModelFile


def build_window(a: argparse.Namespace) -> MainWindow:
    config = Path(a.config) if a.config else config_dir()
    model = ModelFile.read(a.model or DEFAULT_MODEL)  # its metadata: the sound process loads and runs it
    inst = Instrument(model, user_presets=config / "presets", provider=a.provider,
                      shipped_presets=Path(a.presets) if getattr(a, "presets", None) else None)
    return MainWindow(inst, config / "session.json", audio=not a.no_audio, midi=not a.no_midi,
                      model_given=a.model is not None)


def _application() -> QApplication:
    app = QApplication.instance()
    return app if isinstance(app, QApplication) else QApplication([sys.argv[0]])


def run(a: argparse.Namespace) -> None:
    app = _application()
    win = build_window(a)
    app.aboutToQuit.connect(win.close)
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C and kill close the window cleanly (session saved)
        signal.signal(sig, lambda *_: app.quit())
    pulse = QTimer()
    pulse.timeout.connect(lambda: None)  # lets Python run its signal handlers while Qt waits
    pulse.start(200)
    win.show()
    if a.screenshot:
        settle(win, lambda: play_then_screenshot(win, a.screenshot, app))
    if a.drag_bench:
        from gui.drag_bench import DragBench

        bench = DragBench(win, a.drag_bench, app)
        settle(win, bench.start)
    app.exec()


def settle(win: MainWindow, then, timeout: float = 30.0) -> None:
    """Call `then` once the first bank is rendered (or after `timeout`), without blocking the GUI thread."""
    end = time.monotonic() + timeout
    timer = QTimer(win)

    def check() -> None:
        st = win.inst.status()
        if st.bank_ready == st.bank_size or time.monotonic() > end:
            timer.stop()
            win.refresh_status()
            QTimer.singleShot(300, then)

    timer.timeout.connect(check)
    timer.start(100)


def play_then_screenshot(win: MainWindow, path: str, app: QApplication) -> None:
    """Hold a chord for a second so the meter, scope and keyboard show it, then take the screenshot."""
    for pitch, velocity in zip((48, 55, 60, 64), (127, 100, 70, 40)):
        win.inst.note_on(pitch, velocity)

    def shoot() -> None:
        win.refresh_status()
        screenshot(win, path, app)

    QTimer.singleShot(1000, shoot)


def screenshot(win: MainWindow, path: str, app: QApplication) -> None:
    """Save a PNG of the window (atomically) and quit."""
    png = QBuffer()
    png.open(QIODevice.OpenModeFlag.WriteOnly)
    try:
        if not win.grab().save(png, "PNG"):
            raise OSError("Qt could not encode the picture")
        write_atomic(path, bytes(png.data().data()))
        print(f"wrote {path} ({win.width()}x{win.height()})")
    except OSError as e:
        print(f"gansynth-live: could not write {path} ({e})", file=sys.stderr)
    app.quit()
