"""The note bank: every pitch of the current timbre rendered ahead of playback, at the output rate.

Notes live in one preallocated pool of slots shared by all banks, so memory is fixed up front
(slots × stored length × 4 bytes; about 95 MB for the default 170 slots at 48 kHz). A renderer thread fills the
newest bank of each lane (a lane is one timbre stream: the live instrument has one, an offline render one per
preset in use), held and recent pitches first, then outward from them. The audio thread only reads
`Lane.slot_for[pitch]` (the newest ready slot of that pitch) and marks its use in `SlotPool.users`; a slot taken
from an old bank is reused only when no voice plays it and the audio clock has moved on.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from synth.engine.realtime import promote_thread
from synth.engine.resample import resample
from synth.runtime.model import NoteModel

N_KEYS = 128
FIRST_BATCH, BATCH = 4, 8
RECENT_SECONDS = 20.0
RENDER_NICE = 15
IDLE_WAIT_S = 0.5  # an idle renderer sleeps; set_timbre() and wake() rouse it at once


@dataclass(frozen=True)
class NoteLayout:
    """Where a stored note loops for long holds, at the output rate (for a note at its own pitch)."""

    rate: int
    full: int  # samples of a whole model note at the output rate
    loop_start: int
    loop_end: int
    xfade: int

    @property
    def stored(self) -> int:
        return self.loop_end + 2

    @staticmethod
    def for_model(model_rate: int, note_samples: int, hold_seconds: float, rate: int) -> "NoteLayout":
        full = int(round(note_samples * rate / model_rate))
        end = int(0.95 * hold_seconds * rate)
        start = int(0.6 * hold_seconds * rate)
        return NoteLayout(rate, full, start, end, min(int(0.25 * rate), (end - start) // 2))

    def scaled(self, ratio: float) -> tuple[int, int, int]:
        """Loop start, end and crossfade for a note transposed up by `ratio` (time shrinks by it), kept in storage."""
        end = min(int(self.loop_end / ratio), self.loop_end)
        length = max(int((self.loop_end - self.loop_start) / ratio), 64)
        xf = max(min(int(self.xfade / ratio), length // 2), 16)
        start = max(end - length, xf + 1)
        return start, end, xf


def prepare_loop(note: np.ndarray, start: int, end: int, xfade: int, search: int = 0) -> int:
    """Make note[start:e] loop seamlessly and return e, the loop end.

    e is picked within `search` samples before `end` where the waveform best matches the one before `start`
    (normalised cross-correlation), so the crossfade joins material in phase; the last `xfade` samples before e
    then fade into those before `start` (linearly when they match well, at equal power when not), and note[e]
    becomes note[start], so a jump from e back to start continues the waveform without a step or a dip.
    """
    lead = note[start - xfade:start].astype(np.float64)
    r = 0.0
    if search > 0:
        seg = note[end - search - xfade:end].astype(np.float64)
        n = 1 << int(len(seg) + xfade).bit_length()
        corr = np.fft.irfft(np.fft.rfft(seg, n) * np.conj(np.fft.rfft(lead, n)), n)[:search + 1]
        cs = np.concatenate([[0.0], np.cumsum(seg ** 2)])
        energy = np.sqrt((cs[xfade:xfade + search + 1] - cs[:search + 1]) * (lead ** 2).sum()) + 1e-12
        score = corr / energy
        j = int(np.argmax(score))
        end, r = end - search + j, float(score[j])
    theta = np.linspace(0.0, 1.0, xfade, endpoint=False)
    fade_in = theta if r > 0.5 else np.sin(theta * np.pi / 2)
    fade_out = 1.0 - theta if r > 0.5 else np.cos(theta * np.pi / 2)
    note[end - xfade:end] = fade_out * note[end - xfade:end] + fade_in * lead
    note[end] = note[start]
    return end


def render_into(model: NoteModel, data: np.ndarray, layout: NoteLayout, z: np.ndarray, pitches: list[int],
                slots: list[int]) -> list[tuple[int, int]]:
    """Render `pitches` of timbre z into pool rows `slots` at the output rate with their loops prepared; keys
    outside the model's range are its nearest pitch transposed. Returns each note's (loop start, loop length)."""
    info = model.info
    sources = [min(max(p, info.pitch_min), info.pitch_max) for p in pitches]
    audio = model.render(np.repeat(np.asarray(z, np.float32)[None], len(pitches), axis=0), sources)
    loops = []
    for p, q, note, slot in zip(pitches, sources, audio, slots):
        ratio = 2.0 ** ((p - q) / 12.0)
        out = resample(note, max(int(round(layout.full / ratio)), 64), info.sample_rate)
        start, end, xf = (layout.loop_start, layout.loop_end, layout.xfade) if p == q else layout.scaled(ratio)
        row = data[slot]
        n = min(len(out), layout.stored)
        row[:n] = out[:n]
        row[n:] = 0.0
        end = prepare_loop(row, start, end, xf, search=min(layout.rate // 20, (end - start) // 4))
        loops.append((start, end - start))
    return loops


class SlotPool:
    """Fixed storage for rendered notes; users is written by the audio thread only, the rest by the renderer."""

    def __init__(self, slots: int, layout: NoteLayout, shared: bool = False) -> None:
        self.layout = layout
        self.shm = None
        if shared:  # visible to a render worker process
            from multiprocessing import shared_memory

            self.shm = shared_memory.SharedMemory(create=True, size=slots * layout.stored * 4)
            self.data = np.ndarray((slots, layout.stored), dtype=np.float32, buffer=self.shm.buf)
            self.data.fill(0.0)  # map every page now, so the audio thread never takes a page fault on a new note
        else:
            self.data = np.zeros((slots, layout.stored), dtype=np.float32)
        self.flat = self.data.reshape(-1)
        self.loop_start = np.zeros(slots, dtype=np.float64)
        self.loop_len = np.ones(slots, dtype=np.float64)
        self.users = np.zeros(slots, dtype=np.int32)
        self.clock = np.zeros(1, dtype=np.int64)  # audio blocks processed; advanced by the audio thread
        self.live = False  # True while an audio thread may read the pool concurrently
        self.free = list(range(slots - 1, -1, -1))
        self.retired: list[tuple[int, int]] = []

    def reclaim(self) -> None:
        now = int(self.clock[0])
        keep = []
        for slot, when in self.retired:
            if self.users[slot] == 0 and (not self.live or now > when + 1):
                self.free.append(slot)
            else:
                keep.append((slot, when))
        self.retired = keep


@dataclass
class Bank:
    """One timbre's rendered pitches (pitch → slot) and when it started and became ready."""

    z: np.ndarray
    generation: int
    slot_of: dict[int, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    first_ready: float | None = None
    complete: float | None = None


class Lane:
    """One timbre stream: its target latent, its banks (oldest first) and the slot each key plays now."""

    def __init__(self) -> None:
        self.slot_for = np.full(N_KEYS, -1, dtype=np.int32)
        self.banks: list[Bank] = []
        self.target: np.ndarray | None = None
        self.generation = 0
        # Written by the audio thread, read by the renderer to choose what to render first.
        self.held = np.zeros(N_KEYS, dtype=np.int32)
        self.last_on = np.zeros(N_KEYS, dtype=np.int64)  # audio clock at the last note-on, 0 = never
        self.wanted = np.zeros(N_KEYS, dtype=np.int64)  # audio clock + 1 when a note waits for this pitch


def render_order(missing: list[int], held: np.ndarray, last_on: np.ndarray, wanted: np.ndarray,
                 centre: int = 60) -> list[int]:
    """Waiting notes first, then held keys, then recently played ones (newest first), then outward from them.

    Vectorised: this runs in the audio process, where Python loops would hold the GIL the callback needs."""
    p = np.asarray(missing, dtype=np.int64)
    if p.size == 0:
        return []
    anchors = np.flatnonzero((held > 0) | (last_on > 0))
    if anchors.size == 0:
        anchors = np.array([centre])
    w, h, t = wanted[p], held[p], last_on[p]
    group = np.where(w > 0, 0, np.where(h > 0, 1, np.where(t > 0, 2, 3)))
    distance = np.abs(p[:, None] - anchors[None, :]).min(1)
    second = np.where(group == 0, w, np.where(group == 2, -t, np.where(group == 3, distance, 0)))
    return p[np.lexsort((p, second, group))].tolist()


class BankRenderer:
    """Fills the newest bank of each lane from the model: in the background once started (the inference in a
    worker process when the pool is shared, else on the thread), or synchronously (offline, tests)."""

    def __init__(self, model: NoteModel, rate: int, lanes: int = 1, polyphony: int = 32, slots: int = 0,
                 process: bool = False) -> None:
        self.model = model
        info = model.info
        self.pmin, self.pmax = info.pitch_min, info.pitch_max
        self.layout = NoteLayout.for_model(info.sample_rate, model.note_samples,
                                           info.note_seconds - info.release_seconds, rate)
        n_model = self.pmax - self.pmin + 1
        self.pool = SlotPool(slots or (2 * n_model + polyphony + 16) * max(1, lanes), self.layout, shared=process)
        self._worker = None
        self._unlinked = False
        self.lanes = [Lane() for _ in range(lanes)]
        self.blocks_per_second = 1.0
        self.error: str | None = None
        self.last_bank_seconds: float | None = None
        self.last_first_note_seconds: float | None = None
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- control side --------------------------------------------------------------------------------------
    def set_timbre(self, z: np.ndarray, lane: int = 0) -> None:
        """Start a new bank for this latent (the renderer abandons a half-done older one at its next batch)."""
        ln = self.lanes[lane]
        ln.target = np.asarray(z, dtype=np.float32).copy()
        ln.generation += 1
        self._wake.set()

    def wake(self) -> None:
        """Have the background renderer look for work now (e.g. a note is waiting for its pitch)."""
        self._wake.set()

    def start(self) -> None:
        """Render in the background: in a worker process when the pool is shared, else on a thread."""
        if self.pool.shm is not None:
            from synth.engine.render_worker import RenderWorker

            self._worker = RenderWorker(str(self.model.path), self.model.provider, self.model.threads,
                                        self.pool.shm.name, self.pool.data.shape, self.layout)
        self._thread = threading.Thread(target=self._run, name="bank-renderer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self.pool.shm is not None and not self._unlinked:
            self.pool.shm.unlink()  # the mapping itself lives on until the pool is collected
            self._unlinked = True

    def ready(self, lane: int = 0) -> int:
        """How many of the model's pitches the newest bank of the lane has."""
        banks = self.lanes[lane].banks
        if not banks:
            return 0
        return sum(1 for p in banks[-1].slot_of if self.pmin <= p <= self.pmax)

    def complete(self, lane: int = 0) -> bool:
        ln = self.lanes[lane]
        return bool(ln.banks) and ln.banks[-1].generation == ln.generation and ln.banks[-1].complete is not None

    def wait_complete(self, lane: int = 0, timeout: float = 60.0) -> bool:
        end = time.monotonic() + timeout
        while not self.complete(lane):
            if self.error or time.monotonic() > end:
                return False
            time.sleep(0.005)
        return True

    # -- rendering -------------------------------------------------------------------------------------------
    def _run(self) -> None:
        # Linux: when inference runs on this thread, nice it below the audio. With a worker process (itself
        # niced) this thread only does bookkeeping and must not be niced: it may hold the GIL the callback needs.
        if self._worker is None and hasattr(os, "setpriority"):
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), RENDER_NICE)
            except OSError:
                pass
        elif self._worker is not None:
            promote_thread()  # bookkeeping only: short, and it must not be preempted while holding the GIL
        while not self._stop:
            try:
                worked = self.step()
            except Exception as e:  # reported in the status line; the audio keeps playing what it has
                self.error = f"note rendering failed: {e}"
                worked = False
                time.sleep(0.5)
            if not worked:  # idle: no polling, so no Python work competes with the callback for the GIL
                self._wake.wait(IDLE_WAIT_S)
                self._wake.clear()

    def render_all(self, lane: int = 0) -> None:
        """Synchronously render the lane's whole bank (benchmarks, tests)."""
        while self.step(lane_only=lane):
            pass

    def render_pitches(self, lane: int, pitches: list[int], batch: int = 16) -> None:
        """Synchronously render just these pitches into the lane's newest bank (offline: only what a file plays)."""
        ln = self.lanes[lane]
        if not ln.banks or ln.banks[-1].generation != ln.generation:
            ln.banks.append(Bank(ln.target, ln.generation))
        bank = ln.banks[-1]
        todo = [p for p in sorted(set(pitches)) if p not in bank.slot_of]
        for i in range(0, len(todo), batch):
            self._render(ln, bank, todo[i:i + batch])

    def step(self, lane_only: int | None = None) -> bool:
        """Render one batch for the first lane that needs it; False when there is nothing to do."""
        self.pool.reclaim()
        for index, ln in enumerate(self.lanes):
            if (lane_only is not None and index != lane_only) or ln.target is None:
                continue
            if not ln.banks or ln.banks[-1].generation != ln.generation:
                ln.banks.append(Bank(ln.target, ln.generation))
            bank = ln.banks[-1]
            missing = self._missing(ln, bank)
            if not missing:
                if bank.complete is None and all(p in bank.slot_of for p in range(self.pmin, self.pmax + 1)):
                    bank.complete = time.monotonic()
                    self.last_bank_seconds = bank.complete - bank.started
                    self._retire_old(ln)
                continue
            order = render_order(missing, ln.held, ln.last_on, ln.wanted, (self.pmin + self.pmax) // 2)
            urgent = bool(ln.wanted[order[0]] or ln.held[order[0]])
            size = FIRST_BATCH if (not bank.slot_of or urgent) else BATCH
            self._render(ln, bank, order[:size])
            return True
        return False

    def _missing(self, ln: Lane, bank: Bank) -> list[int]:
        """Model pitches the bank lacks, plus keys outside the range that are waited for, held or recent."""
        now = int(self.pool.clock[0])
        recent = max(1, int(RECENT_SECONDS * self.blocks_per_second))
        keys = np.arange(N_KEYS)
        need = (keys >= self.pmin) & (keys <= self.pmax)
        need |= (ln.wanted > 0) | (ln.held > 0) | ((ln.last_on > 0) & (now - ln.last_on < recent))
        if bank.slot_of:
            need[list(bank.slot_of)] = False
        return np.flatnonzero(need).tolist()

    def _render(self, ln: Lane, bank: Bank, pitches: list[int]) -> None:
        slots = [self._take_slot() for _ in pitches]
        try:
            if self._worker is not None:
                loops = self._worker.render(bank.z, pitches, slots)
            else:
                loops = render_into(self.model, self.pool.data, self.layout, bank.z, pitches, slots)
        except Exception:
            self.pool.free.extend(slots)
            raise
        for p, slot, (start, length) in zip(pitches, slots, loops):
            self.pool.loop_start[slot] = start
            self.pool.loop_len[slot] = length
            bank.slot_of[p] = slot
            if ln.banks[-1] is bank:  # a newer bank may have started meanwhile; it wins the key
                ln.slot_for[p] = slot
            ln.wanted[p] = 0
        if bank.first_ready is None:
            bank.first_ready = time.monotonic()
            self.last_first_note_seconds = bank.first_ready - bank.started

    def _take_slot(self) -> int:
        while True:
            if self.pool.free:
                return self.pool.free.pop()
            self.pool.reclaim()
            if self.pool.free:
                continue
            if not self._retire_oldest():
                if self._stop:
                    raise RuntimeError("renderer stopped")
                time.sleep(0.002)  # every spare slot is still sounding; voices end within their release

    def _retire(self, ln: Lane, bank: Bank, pitch: int) -> None:
        slot = bank.slot_of.pop(pitch)
        if ln.slot_for[pitch] == slot:
            newer = [b for b in ln.banks if b is not bank and pitch in b.slot_of]
            ln.slot_for[pitch] = newer[-1].slot_of[pitch] if newer else -1
        self.pool.retired.append((slot, int(self.pool.clock[0])))

    def _retire_old(self, ln: Lane) -> None:
        """Once the newest bank is complete, the older ones of its lane go, except keys only they still have."""
        newest = ln.banks[-1]
        for bank in ln.banks[:-1]:
            for p in [p for p in bank.slot_of if p in newest.slot_of or self.pmin <= p <= self.pmax]:
                self._retire(ln, bank, p)
        ln.banks = [b for b in ln.banks if b is newest or b.slot_of]

    def _retire_oldest(self) -> bool:
        """Free some slots from the oldest bank that is not the newest of its lane; False if there is none."""
        candidates = [(b.started, i, b) for i, ln in enumerate(self.lanes) for b in ln.banks[:-1] if b.slot_of]
        if not candidates:
            return False
        _, i, bank = min(candidates, key=lambda c: c[0])
        ln = self.lanes[i]
        for p in list(bank.slot_of):
            self._retire(ln, bank, p)
        ln.banks = [b for b in ln.banks if b is ln.banks[-1] or b.slot_of]
        return True

