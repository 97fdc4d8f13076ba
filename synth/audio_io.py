"""WAV writing with the standard library: 16-bit PCM, written atomically so a render is never half a file."""
from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio in [-1, 1] ([frames] or [frames, channels]) as 16-bit PCM via a temp file and rename."""
    path = Path(path)
    data = np.asarray(audio, dtype=np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = (np.clip(data, -1.0, 1.0) * 32767).astype("<i2")
    tmp = path.with_name(f".{path.name}.part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    os.replace(tmp, path)


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read 16-bit PCM WAV → (float32 [frames, channels], sample rate)."""
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
        return pcm.astype(np.float32) / 32768.0, w.getframerate()


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write a render atomically by extension: .wav (16-bit, standard library) or .flac/.aiff/.ogg (pedalboard)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".wav":
        write_wav(path, audio, sample_rate)
        return
    if suffix not in (".flac", ".aiff", ".aif", ".ogg"):
        raise ValueError(f"cannot write '{path.name}': use a .wav, .flac, .aiff or .ogg file name")
    from pedalboard.io import AudioFile

    data = np.asarray(audio, dtype=np.float32)
    data = data[None] if data.ndim == 1 else data.T
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as f, AudioFile(f, "w", sample_rate, data.shape[0], bit_depth=16,
                                         format=suffix.lstrip(".")) as out:
        out.write(np.clip(data, -1.0, 1.0))
    os.replace(tmp, path)
