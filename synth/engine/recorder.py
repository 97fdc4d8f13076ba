"""Record what the instrument plays to WAV or FLAC: the audio side copies blocks into a ring, a writer thread
drains it to a hidden part file every quarter second, and `close()` finalises and renames it into place."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from synth.engine.realtime import promote_thread
from synth.engine.ring import Ring

FORMATS = {".wav": "WAV", ".flac": "FLAC"}


class RecordingError(ValueError):
    """A recording that cannot be started: bad name, folder or an existing file."""


class Recorder:
    """A running recording; `push()` from the audio side, `close()` once at the end (idempotent)."""

    def __init__(self, path: str | os.PathLike, rate: int, channels: int, overwrite: bool = False,
                 buffer_seconds: float = 20.0) -> None:
        import soundfile as sf

        self.path = Path(path)
        fmt = FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise RecordingError(f"cannot record to '{self.path.name}': use a .wav or .flac file name")
        if not self.path.parent.is_dir():
            raise RecordingError(f"cannot record to {self.path}: folder {self.path.parent} does not exist")
        if self.path.exists() and not overwrite:
            raise RecordingError(f"{self.path} already exists; choose another name or pass --overwrite")
        self.part = self.path.with_name(f".{self.path.name}.part")
        try:
            self.file = sf.SoundFile(self.part, "w", samplerate=rate, channels=channels, format=fmt, subtype="PCM_24")
        except (sf.LibsndfileError, OSError) as e:
            raise RecordingError(f"cannot record to {self.path}: {e}") from None
        self.rate = rate
        self.ring = Ring(int(rate * buffer_seconds), channels)
        self.frames = 0
        self.dropped = 0  # frames the writer could not keep up with (ring full)
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def push(self, block: np.ndarray) -> None:
        """Called by the audio side with [frames, channels]: a copy into the ring, nothing else."""
        n = self.ring.write(block)
        if n < len(block):
            self.dropped += len(block) - n

    def _drain(self) -> None:
        n = self.ring.available()
        if n:
            chunk = np.empty((n, self.ring.buf.shape[1]), dtype=np.float32)
            self.ring.read_into(chunk)
            self.file.write(np.clip(chunk, -1.0, 1.0))
            self.frames += n

    def _run(self) -> None:
        promote_thread()  # it shares the GIL with the audio callback; its writes release it
        last_flush = time.monotonic()
        while not self._stop.wait(0.25):
            self._drain()
            if time.monotonic() - last_flush >= 1.0:
                self.file.flush()  # what was played up to the last second is on disk, even if we die now
                last_flush = time.monotonic()

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def close(self) -> Path:
        """Write what is left, finalise the file and move it into place."""
        if self._closed:
            return self.path
        self._closed = True
        self._stop.set()
        self._thread.join()
        self._drain()
        self.file.close()
        os.replace(self.part, self.path)
        return self.path
