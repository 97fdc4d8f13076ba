"""Audio files out: the output path checked before any work, a temp file of this run's own in the target folder,
removed on every error (and Ctrl-C/SIGTERM), and an atomic rename once the file is complete, so a render or a
take is never half a file and two runs writing one name never share a temp file."""
from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from synth.core.files import replacing

FORMATS = {".wav": "WAV", ".flac": "FLAC", ".aiff": "AIFF", ".aif": "AIFF", ".ogg": "OGG"}
_PART = re.compile(r"^\.(?P<name>.+?\.(?:wav|flac|aiff|aif|ogg))(?:\.[A-Za-z0-9_]+)?\.part$", re.IGNORECASE)


class OutputError(ValueError):
    """An output file that cannot be written (or finished), said in one line."""


def check_output(path: str | os.PathLike, formats: tuple[str, ...] = tuple(FORMATS), overwrite: bool = True,
                 what: str = "write") -> Path:
    """The output path if it can be written: a known extension, an existing writable folder, and (unless
    overwrite) no file there yet. Creates and removes a probe file, so a read-only disk is caught now."""
    path = Path(path)
    if path.suffix.lower() not in formats:
        names = ", ".join(formats[:-1]) + " or " + formats[-1] if len(formats) > 1 else formats[0]
        raise OutputError(f"cannot {what} '{path.name}': use a {names} file name")
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"cannot {what} {path}: folder {folder} does not exist")
    if path.is_dir():
        raise OutputError(f"cannot {what} {path}: it is a folder")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; choose another name or pass --overwrite")
    try:
        temp_path(path).unlink()
    except OSError as e:
        raise OutputError(f"cannot {what} {path}: folder {folder} is not writable ({e.strerror})") from None
    return path


def temp_path(path: Path, suffix: str = ".probe") -> Path:
    """A new, empty file of this run's own beside `path`: hidden, named after it, unique (created exclusively)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


def part_path(path: Path) -> Path:
    """The hidden part file a run writes before renaming it to `path` (`recover` knows the name back)."""
    return temp_path(path, ".part")


def final_name(part: str | os.PathLike) -> Path:
    """The file a part file was meant to become: `.take.wav.k3j2_a9.part` → `take.wav`."""
    part = Path(part)
    m = _PART.match(part.name)
    if m is None:
        raise OutputError(f"{part.name} is not a part file of ours (.NAME.wav….part or .NAME.flac….part)")
    return part.with_name(m["name"])


def disk_full(error: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of space (libsndfile says only "System error")."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


BIT_DEPTHS = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}  # --bit-depth: 32 is 32-bit float


def subtype_for(path: str | os.PathLike, bit_depth: int) -> str:
    """libsndfile's subtype for a bit depth in this file's format; OutputError for a pair the format lacks."""
    fmt = FORMATS.get(Path(path).suffix.lower(), "WAV")
    if bit_depth not in BIT_DEPTHS:
        raise OutputError(f"--bit-depth {bit_depth} is not one of 16, 24 or 32 (32-bit float)")
    if fmt == "FLAC" and bit_depth == 32:
        raise OutputError("FLAC holds 16 or 24 bits, not 32-bit float: use --bit-depth 16 or 24, or a .wav file")
    if fmt == "OGG":
        return "VORBIS"
    return BIT_DEPTHS[bit_depth]


def normalize_peak(audio: np.ndarray, dbfs: float) -> float:
    """Scale `audio` in place so its peak is `dbfs` (e.g. -1.0); returns the gain applied in dB (0 for
    silence)."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak <= 0.0 or not np.isfinite(peak):
        return 0.0
    gain = 10 ** (dbfs / 20) / peak
    audio *= gain
    return 20 * float(np.log10(gain))


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write float audio ([frames] or [frames, channels]) by extension through soundfile (libsndfile),
    atomically: 16-bit PCM unless `subtype` says otherwise (.ogg is Vorbis); PCM is clipped to [-1, 1], 32-bit
    float keeps what lies beyond."""
    import soundfile as sf

    path = check_output(path)
    fmt = FORMATS[path.suffix.lower()]
    subtype = subtype or ("VORBIS" if fmt == "OGG" else "PCM_16")
    data = np.asarray(audio, dtype=np.float32)
    if subtype not in ("FLOAT", "DOUBLE"):
        data = np.clip(data, -1.0, 1.0)
    try:
        with replacing(path) as tmp:
            try:
                sf.write(tmp, data, sample_rate, format=fmt, subtype=subtype)
            except (sf.LibsndfileError, OSError) as e:
                raise _write_error(e, path, data.nbytes) from None  # asked while the part file holds its space
    except OSError as e:  # the part file could not be made or renamed
        raise _write_error(e, path, data.nbytes) from None


def _write_error(error: BaseException, path: Path, nbytes: int) -> OutputError:
    """A failed write in one line, a full disk said as such (the part file is removed as the error leaves)."""
    if disk_full(error, path.parent):
        return OutputError(f"the disk holding {path.parent} is full: {path.name} (about {nbytes / 2 / 1e6:.0f} MB) "
                           "was not written, nothing was left behind")
    return OutputError(f"cannot write {path}: {error}")


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a WAV file → (float32 [frames, channels], sample rate)."""
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio, rate
