"""Entry point of the desktop bundle: the `gansynth-live` command, frozen by PyInstaller."""
import ctypes.util
import multiprocessing
import sys
from pathlib import Path


def _use_bundled_portaudio() -> None:
    """sounddevice finds PortAudio with ctypes.util.find_library, which does not look inside the bundle."""
    bundled = Path(getattr(sys, "_MEIPASS", "")) / "libportaudio.so.2"
    if not bundled.exists():
        return
    find = ctypes.util.find_library
    ctypes.util.find_library = lambda name: str(bundled) if name == "portaudio" else find(name)


if __name__ == "__main__":
    multiprocessing.freeze_support()  # the note-bank render worker is a spawned process of this same binary
    _use_bundled_portaudio()
    from gui.command import main

    main()
