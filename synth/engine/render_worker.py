"""A separate process that renders notes into the shared slot pool.

Inference and the per-note numpy work (resampling, loop preparation) then never hold the audio process's GIL;
the bank renderer's thread only sends a job (latent, pitches, layer velocities, slots) and waits for each note's
loop, tail and release (a NoteShape) back.
The process runs niced a little below the audio callback: enough that a callback thread without real-time
priority still wins the core, not so much that other busy programs starve the bank (see docs/measurements.md).
"""
from __future__ import annotations

import multiprocessing as mp
import os
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from synth.engine.bank import Blend, Loop, NoteLayout

NICE = 5


class RenderError(ValueError):
    """The note renderer failed (could not start, or a render failed), worded for the user."""


class RenderWorker:
    """Start the worker, which opens the model and attaches the pool; `render()` runs one batch there."""

    def __init__(self, model_path: str, provider: str, threads: int, shm_name: str, shape: tuple[int, int],
                 layout: NoteLayout) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that holds audio and inference threads
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, model_path, provider, threads, shm_name, shape, layout),
                                   name="gansynth-renderer", daemon=True)
        self.process.start()
        child.close()
        kind, message = self._conn.recv()
        if kind != "ready":
            self.close()
            raise RenderError(message)

    def render(self, z: np.ndarray, pitches: list[int], velocities: list[int], slots: list[int],
               loops: list[Loop], gain: float | None, blends: list[Blend]) -> tuple[list, list[float]]:
        """Render the notes (pitch, layer velocity) into these slots (see bank.render_into), then measure how alike
        each of `blends` is (bank.blend_likeness; levelled when `gain` is None); returns the notes' NoteShapes and
        the blends' likenesses."""
        self._conn.send((np.asarray(z, np.float32), list(pitches), list(velocities), list(slots), list(loops),
                         gain, list(blends)))
        kind, value = self._conn.recv()
        if kind != "ok":
            raise RenderError(value)
        return value

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        self._conn.close()


def _serve(conn: Connection, model_path: str, provider: str, threads: int, shm_name: str,
           shape: tuple[int, int], layout: NoteLayout) -> None:
    try:
        if hasattr(os, "nice"):
            os.nice(NICE)
        from synth.engine.bank import blend_likeness, render_into
        from synth.runtime.model import NoteModel

        model = NoteModel(model_path, provider=provider, threads=threads)
        shm = shared_memory.SharedMemory(name=shm_name)
        data = np.ndarray(shape, dtype=np.float32, buffer=shm.buf)
        conn.send(("ready", None))
    except Exception as e:  # reported to the parent as one line
        conn.send(("error", f"note renderer could not start: {e}"))
        return
    while True:
        try:
            job = conn.recv()
        except EOFError:
            break
        if job is None:
            break
        try:
            z, pitches, velocities, slots, loops, gain, blends = job
            shapes = render_into(model, data, layout, z, pitches, velocities, slots, loops, gain)
            conn.send(("ok", (shapes, [blend_likeness(data, layout, b, gain is None) for b in blends])))
        except Exception as e:
            conn.send(("error", str(e)))
    del data
    shm.close()
