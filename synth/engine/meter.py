"""What the output looks like, for a window's meter and scope: per side, the peak and RMS since the last look, a
clip count, and the latest frames in a ring.

The audio side calls `push()` with every block it plays: a handful of numpy calls into preallocated buffers, no
allocation, no lock (a read that races a push loses at most that block's share of one reading). A front end calls
`read()` a few times a second, off the audio thread."""
from __future__ import annotations

import math

import numpy as np

CLIP_LEVEL = 0.98  # the voices' limiter ceiling: a sample there means the limiter is holding the mix down
SCOPE_FRAMES = 2048


class Meter:
    """Stereo peak/RMS accumulators and a scope ring, fed with [frames, 2] float32 blocks."""

    def __init__(self, max_block: int = 8192, scope_frames: int = SCOPE_FRAMES) -> None:
        self.peak = np.zeros(2, dtype=np.float32)  # largest |sample| since the last read
        self.square = np.zeros(2, dtype=np.float64)  # sum of squares since the last read
        self.frames = 0
        self.clips = np.zeros(2, dtype=np.int64)  # blocks that reached the clip level since the last read
        self.scope = np.zeros((scope_frames, 2), dtype=np.float32)
        self.at = 0  # where the next frame goes in the scope ring
        # scratch, each of one dtype: numpy allocates a buffer for an operation that casts (bool → int sums,
        # float32 × float32 → float64)
        self._abs = np.zeros((max_block, 2), dtype=np.float32)
        self._sq = np.zeros((max_block, 2), dtype=np.float32)
        self._p = np.zeros(2, dtype=np.float32)
        self._s = np.zeros(2, dtype=np.float32)

    def push(self, block: np.ndarray) -> None:
        """Account one played block ([frames, 2] float32)."""
        step = len(self._abs)
        for i in range(0, len(block), step):
            self._push(block[i:i + step])

    def _push(self, block: np.ndarray) -> None:
        n = len(block)
        a = self._abs[:n]
        np.abs(block, out=a)
        np.max(a, axis=0, out=self._p)
        np.maximum(self.peak, self._p, out=self.peak)
        for side in (0, 1):
            if self._p[side] >= CLIP_LEVEL:
                self.clips[side] += 1
        sq = self._sq[:n]
        np.multiply(block, block, out=sq)
        np.sum(sq, axis=0, out=self._s)
        np.add(self.square, self._s, out=self.square)
        self.frames += n
        size = len(self.scope)
        start = self.at
        first = min(n, size - start)
        self.scope[start:start + first] = block[:first]
        rest = min(n - first, size)
        if rest > 0:
            self.scope[:rest] = block[n - rest:n] if n - first > size else block[first:n]
        self.at = (start + n) % size

    def read(self) -> dict:
        """Peak and RMS per side in dBFS since the last read (-120 for silence), whether either side reached the
        clip level, and the scope's frames oldest first ([SCOPE_FRAMES, 2] float32, a copy); resets the
        accumulators. The scope stays an array: as lists it took 0.3 ms of the sound process's GIL a status."""
        frames = max(self.frames, 1)
        peak = [_db(float(p)) for p in self.peak]
        rms = [_db(math.sqrt(float(s) / frames)) for s in self.square]
        clipped = [bool(c) for c in self.clips]
        self.peak.fill(0.0)
        self.square.fill(0.0)
        self.clips.fill(0)
        self.frames = 0
        scope = np.roll(self.scope, -self.at, axis=0)
        return {"peak_db": peak, "rms_db": rms, "clipped": clipped, "scope": scope}


def _db(x: float) -> float:
    return 20 * math.log10(x) if x > 1e-6 else -120.0
