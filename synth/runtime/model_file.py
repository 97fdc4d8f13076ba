"""A model file's metadata, read without loading the model.

The window needs only the latent size and the pitch range; the sound process loads the model and checks all of it
(synth.runtime.model.NoteModel: an onnxruntime session holds the whole graph and renders a probe note), so the
window reads the ONNX file's `metadata_props` straight from its protobuf bytes instead of opening a second session.
"""
from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from synth.runtime.model import DEFAULT_MODEL, ModelError, ModelInfo, _parse_metadata

METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {key = 1, value = 2}


def _varint(buf: bytes | mmap.mmap, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes | mmap.mmap, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field of the message in buf[start:end]; the others
    are stepped over."""
    i = start
    while i < end:
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > end:
                raise ValueError("a field runs past the end")
            yield field, i, i + size
            i += size
        else:
            raise ValueError(f"wire type {wire}")
    if i != end:
        raise ValueError("the last field runs past the end")


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The file's metadata (key → value), or a one-line ModelError for a file that is missing or not ONNX."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} not found")
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            meta = {}
            for field, start, end in _fields(buf, 0, len(buf)):
                if field == METADATA_PROPS:
                    entry = {k: bytes(buf[s:e]).decode("utf-8") for k, s, e in _fields(buf, start, end)}
                    meta[entry.get(1, "")] = entry.get(2, "")
            return meta
    except (ValueError, IndexError, OSError) as e:  # a truncated or foreign file; an empty one cannot be mapped
        raise ModelError(f"model file {path} is not a readable ONNX model ({e})") from None


@dataclass(frozen=True)
class ModelFile:
    """What a front end knows of a model it does not run: its path and checked metadata (`provider` is empty:
    the model runs elsewhere)."""

    path: Path
    info: ModelInfo
    provider: str = ""

    @classmethod
    def read(cls, path: str | os.PathLike = DEFAULT_MODEL) -> ModelFile:
        meta = read_metadata(path)
        info = _parse_metadata(Path(path), meta)
        try:  # checked for real where the model is loaded; here only the bank's size depends on it
            layers = tuple(int(v) for v in json.loads(meta.get("velocity_layers", "[127]"))) or (127,)
        except (ValueError, TypeError):
            layers = (127,)
        return cls(Path(path), ModelInfo(**{**info.__dict__, "velocity_layers": layers}))
