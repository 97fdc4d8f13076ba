"""Record what the instrument plays to WAV or FLAC: the audio side copies blocks into a ring, a writer thread
drains it four times a second into a hidden part file of this take's own, and `close()` finalises it into place.

The part file is a WAV (24-bit, or the take's bit depth) whose header libsndfile rewrites after every write, so it
is a valid file at any moment: after a crash `recover()` (`gansynth-live recover FILE.part`) turns it into the
take. A full disk stops the writing at once (`error` says so) and the take keeps what was written."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from synth.audio_io import OutputError, check_output, disk_full, final_name, part_path, subtype_for
from synth.engine.realtime import promote_thread
from synth.engine.ring import Ring

TAKE_FORMATS = (".wav", ".flac")
SUBTYPE = "PCM_24"
_SFC_SET_UPDATE_HEADER_AUTO = 0x1061  # libsndfile's sndfile.h: rewrite the header after every write


class Recorder:
    """A running recording; `push()` from the audio side, `close()` once at the end (idempotent)."""

    def __init__(self, path: str | os.PathLike, rate: int, channels: int, overwrite: bool = False,
                 buffer_seconds: float = 20.0, bit_depth: int = 24) -> None:
        """`bit_depth`: 16 or 24-bit PCM, or 32 (32-bit float, WAV only)."""
        import soundfile as sf

        self.path = check_output(path, TAKE_FORMATS, overwrite, what="record to")
        self.subtype = subtype_for(self.path, bit_depth)
        self.part = part_path(self.path)
        try:
            self.file = sf.SoundFile(self.part, "w", samplerate=rate, channels=channels, format="WAV",
                                     subtype=self.subtype)
        except (sf.LibsndfileError, OSError) as e:
            self.part.unlink(missing_ok=True)
            raise OutputError(f"cannot record to {self.path}: {e}") from None
        sf._snd.sf_command(self.file._file, _SFC_SET_UPDATE_HEADER_AUTO, sf._ffi.NULL, sf._snd.SF_TRUE)
        self.rate = rate
        self.ring = Ring(int(rate * buffer_seconds), channels)
        self.frames = 0
        self.dropped = 0  # frames the writer could not keep up with (ring full)
        self.error: str | None = None  # set once by the writer when the disk fails; the take keeps what was written
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def push(self, block: np.ndarray) -> None:
        """Called by the audio side with [frames, channels]: a copy into the ring, nothing else."""
        n = self.ring.write(block)
        if n < len(block) and self.error is None:
            self.dropped += len(block) - n

    def _drain(self) -> None:
        n = self.ring.available()
        if not n:
            return
        chunk = np.empty((n, self.ring.buf.shape[1]), dtype=np.float32)
        self.ring.read_into(chunk)
        if self.error is not None:
            return  # the disk failed: keep emptying the ring so the audio side never notices
        try:
            self.file.write(chunk if self.subtype == "FLOAT" else np.clip(chunk, -1.0, 1.0))
            self.frames += n
        except Exception as e:  # noqa: BLE001 - libsndfile reports a full disk only as "System error"
            try:
                self.frames = self.file.tell()  # part of the block may have gone in
            except Exception:  # noqa: BLE001
                pass
            why = (f"the disk holding {self.path.parent} is full" if disk_full(e, self.path.parent)
                   else f"writing {self.part.name} failed ({e})")
            self.error = f"recording stopped: {why}; the take keeps its first {self.seconds:.1f} s"

    def _run(self) -> None:
        promote_thread()  # it shares the GIL with the audio callback; its writes release it
        last_flush = time.monotonic()
        while not self._stop.wait(0.25):
            self._drain()
            if self.error is None and time.monotonic() - last_flush >= 1.0:
                try:
                    self.file.flush()  # on disk, not only in the page cache, up to the last second
                except Exception:  # noqa: BLE001 - the next write reports the disk
                    pass
                last_flush = time.monotonic()

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def close(self) -> Path | None:
        """Write what is left and move the take into place (None when nothing was recorded: no file is made).
        OutputError if it could not be finalised; the part file then stays for `recover`."""
        if self._closed:
            return None if self.frames == 0 else self.path
        self._closed = True
        self._stop.set()
        self._thread.join()
        self._drain()
        try:
            self.file.close()
        except Exception:  # noqa: BLE001 - a full disk: the header written after the last good write stands
            pass
        if self.frames == 0:
            self.part.unlink(missing_ok=True)
            return None
        if self.path.suffix.lower() == ".wav":
            os.replace(self.part, self.path)
        else:
            finalise(self.part, self.path, subtype=self.subtype)
        return self.path


def finalise(part: Path, path: Path, block: int = 1 << 16, subtype: str | None = None) -> float:
    """Copy a part file's audio into `path` (format by extension; the part's own sample format unless `subtype`,
    and never float in FLAC) through a temp file, then remove the part; returns the seconds copied. On failure the
    part stays and OutputError says how to recover it."""
    import soundfile as sf

    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    tmp = part_path(path)
    try:
        with sf.SoundFile(part) as src:
            kind = subtype or src.subtype
            if fmt == "FLAC" and kind not in ("PCM_16", "PCM_24"):
                kind = SUBTYPE
            with sf.SoundFile(tmp, "w", samplerate=src.samplerate, channels=src.channels, format=fmt,
                              subtype=kind) as dst:
                for chunk in src.blocks(block, dtype="float32", always_2d=True):
                    dst.write(chunk)
            seconds = src.frames / src.samplerate
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if not isinstance(e, (sf.LibsndfileError, OSError)):
            raise
        why = f"the disk holding {path.parent} is full" if disk_full(e, path.parent) else str(e)
        raise OutputError(f"{path.name} not finished ({why}); what was played is kept in {part}: free space and "
                          f"run 'gansynth-live recover {part}'") from None
    part.unlink()
    return seconds


def recover(part: str | os.PathLike, out: str | os.PathLike | None = None) -> tuple[Path, float]:
    """Finalise the part file a stopped or killed recording left; returns (the take, its seconds)."""
    import soundfile as sf

    part = Path(part)
    if not part.is_file():
        raise OutputError(f"no part file at {part}")
    path = check_output(out or final_name(part), TAKE_FORMATS, overwrite=False, what="recover to")
    try:
        info = sf.info(str(part))
    except (sf.LibsndfileError, OSError) as e:
        raise OutputError(f"{part} holds no audio that can be read ({e})") from None
    if info.frames == 0:
        raise OutputError(f"{part} holds no audio (it was stopped before its first second)")
    return path, finalise(part, path)
