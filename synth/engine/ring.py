"""A single-producer, single-consumer ring of audio frames: one thread writes, one reads, no lock.

Each side only advances its own counter (a Python int, assigned atomically under the GIL), and a write never
overtakes unread frames, so the two sides never touch the same frames at once.
"""
from __future__ import annotations

import numpy as np


class Ring:
    """`frames` x `channels` float32 samples; `write` and `read_into` copy without allocating sample buffers."""

    def __init__(self, frames: int, channels: int) -> None:
        self.buf = np.zeros((frames, channels), dtype=np.float32)
        self.size = frames
        self.written = 0
        self.read = 0

    def available(self) -> int:
        return self.written - self.read

    def space(self) -> int:
        return self.size - (self.written - self.read)

    def write(self, x: np.ndarray) -> int:
        """Append frames [n, channels]; returns how many fitted (the rest are dropped)."""
        n = min(len(x), self.space())
        i = self.written % self.size
        a = min(n, self.size - i)
        self.buf[i:i + a] = x[:a]
        if n > a:
            self.buf[:n - a] = x[a:n]
        self.written += n
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Move up to len(out) frames into `out`; returns how many there were."""
        n = min(len(out), self.written - self.read)
        i = self.read % self.size
        a = min(n, self.size - i)
        out[:a] = self.buf[i:i + a]
        if n > a:
            out[a:n] = self.buf[:n - a]
        self.read += n
        return n
