"""Files written whole: a temp file of this run's own beside the target, renamed over it when complete, so a reader
never sees half a file and two writers never share a temp name (one scheme for every file the package writes:
text, checkpoints, ONNX models, audio, pictures)."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_UMASK = os.umask(0o022)  # read once, at import: os.umask can only be read by setting it
os.umask(_UMASK)


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temp file beside `path` (`.NAME.xxxx.part`) for a writer that wants a file name (torch.save,
    soundfile, onnx, PIL); it replaces `path` when the block ends and is removed if the block raises."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would make it: mkstemp's files are private (0600)
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically; the temp file is removed on any error."""
    path = Path(path)
    with replacing(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path
