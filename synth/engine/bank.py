"""The note bank: every pitch of the current timbre, at every velocity layer of the model, rendered ahead of playback
at the output rate.

A model may declare velocity layers (metadata `velocity_layers`, e.g. 40, 80, 120; a model without a velocity input
has one); a bank note is a (layer, pitch) pair, keyed `layer * N_KEYS + pitch`. Notes live in one preallocated pool
of slots shared by all banks, so memory is fixed up front (slots × stored length × 4 bytes; about 110 MB for the
default 170 slots of a one-layer model at 48 kHz, about 285 MB for the 446 of a three-layer one). A renderer thread
fills the newest bank of each lane (a lane is one timbre stream: the live instrument has one, an offline render one
per preset in use): waiting, held and recent pitches first at the layers their last velocities play, then outward
from them, then the other layers. Each note is levelled as it is stored: brought to one loudness at velocity 100
whatever its timbre and key, each layer to the level GM's velocity curve gives it (so presets play equally loud,
every key sounds, and a note's velocity sets its level as in any GM synthesizer; the model's layers set its
brightness). Each note is also measured as it is stored (synth.engine.envelope) and gets a loop in
its late stretch, with jump segments after the note (prepare_jumps) by which a held voice leaves the loop and
lands in it somewhere else each pass, so no pattern repeats (one loop end and one set of jumps for all layers of
a pitch, so blended voices wrap and jump together); a percussive note's
stretch is levelled first, so that the voice's tail gain gives back its decay on the first pass and carries it on
past the stored end; a note with a release segment gets the model's release as a gain curve. The audio thread only
reads `Lane.slot_for[layer, pitch]` (the newest ready slot of that note) and the pool's per-slot loop, tail and
release arrays, and marks its use in `SlotPool.users`; a slot taken from an old bank is reused only when no voice
plays it and the audio clock has moved on. Who writes each shared array: docs/architecture.md.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from synth.engine.envelope import STEP_SECONDS, analyse, steady_loop, tail_decay
from synth.engine.loudness import momentary_peak_lufs, rise_ms
from synth.engine.realtime import promote_thread
from synth.core.resample import resample
from synth.runtime.model import NoteModel

if TYPE_CHECKING:
    from synth.engine.render_worker import RenderWorker

N_KEYS = 128
FIRST_BATCH, BATCH = 4, 8
RECENT_SECONDS = 20.0
RENDER_NICE = 15
# Every note is brought to one loudness, as a player expects of an instrument's keys and presets: the bank measures
# each note as it stores it and scales it so that at velocity 100 it stores at REFERENCE_LUFS, i.e. plays, after the
# voices' gain of 0.5 (-6 dB), at -35.7 LUFS on each side: FluidSynth's default output for middle C (gain 0.2,
# reverb and chorus off; median over FluidR3_GM's 112 melodic programs of the two sides' mean power, the
# reference_lufs of synth/assets/gm_levels.json). A layer of velocity v stores 40·log10(v/100) dB from that:
# FluidSynth's velocity curve, measured to 0.1 dB from 16 to 127. The model's own balance is not kept: its keys
# strayed up to 10 dB from the soundfont's (the Guitar preset's bass keys 7 dB under its middle C where FluidR3's
# guitars are 3 dB over it) and its layers up to 4 dB (Synth Lead 80 → 120: +10.8 dB, FluidR3 +7.0), which left
# GM files' guitar and lead channels 6-11 dB under FluidSynth's.
REFERENCE_VELOCITY, REFERENCE_LUFS = 100, -29.6
MAX_NOTE_GAIN_DB = 30.0  # a near-silent note is not pulled up into its own noise floor
# Per stored note: exits from its loop and landings in it, every pair a jump segment, and their crossfade
# (prepare_jumps). With 4 × 4 a held wandering level's period (sound_metrics.loop_periodicity) came out as low as
# an unlooped note's in a simulation, 0.17 ± 0.08 against 0.13 ± 0.04 (3 × 3: 0.27, 8 × 8: 0.16; one landing per
# exit: 0.29; the wrap alone ~0.9).
EXITS = LANDINGS = 4
JUMPS, JUMP_SECONDS = EXITS * LANDINGS, 0.03
IDLE_WAIT_S = 0.5  # an idle renderer sleeps; set_timbre() and wake() rouse it at once


@dataclass(frozen=True)
class NoteLayout:
    """Where a stored note loops for long holds, at the output rate (for a note at its own pitch)."""

    rate: int
    full: int  # samples of a whole model note at the output rate
    hold: int  # samples before note-off at the output rate
    loop_start: int
    loop_end: int
    xfade: int
    jump: int  # crossfade of a jump segment (prepare_jumps)

    @property
    def body(self) -> int:
        """Samples of the note itself in a slot; the jump segments follow."""
        return self.loop_end + 2

    @property
    def stored(self) -> int:
        return self.body + JUMPS * (self.jump + 2)

    def segment_at(self, k: int) -> int:
        """Where jump segment k starts in a slot."""
        return self.body + k * (self.jump + 2)

    @staticmethod
    def for_model(model_rate: int, note_samples: int, hold_seconds: float, rate: int) -> "NoteLayout":
        full = int(round(note_samples * rate / model_rate))
        end = int(0.95 * hold_seconds * rate)
        start = int(0.6 * hold_seconds * rate)
        return NoteLayout(rate, full, int(round(hold_seconds * rate)), start, end,
                          min(int(0.25 * rate), (end - start) // 2), int(JUMP_SECONDS * rate))

    @property
    def release_points(self) -> int:
        """Room for a release curve (10 ms points), two octaves' transposition down included."""
        return 4 * max(self.full - self.hold, 0) // int(STEP_SECONDS * self.rate) + 2

    def scaled(self, ratio: float) -> tuple[int, int, int, int]:
        """Loop start, end, crossfade and jump crossfade for a note transposed up by `ratio` (time shrinks by it),
        kept in storage."""
        end = min(int(self.loop_end / ratio), self.loop_end)
        length = max(int((self.loop_end - self.loop_start) / ratio), 64)
        xf = max(min(int(self.xfade / ratio), length // 2), 16)
        start = max(end - length, xf + 1)
        return start, end, xf, max(min(int(self.jump / ratio), self.jump), 16)


Jumps = tuple[tuple[int, int], ...]  # (where a voice leaves the loop, where it lands) per jump segment
Loop = tuple[int, Jumps]  # a pitch's loop end and jumps, shared by its layers; (0, ()): to be chosen


def _match_scores(xs: list[np.ndarray], leads: list[np.ndarray], search: int) -> np.ndarray:
    """[leads, xs, search + 1]: how well the samples of each x from each offset 0 … search match each lead (all
    leads one length, all xs that length + search; normalised cross-correlation), each transform taken once."""
    m = len(leads[0])
    n = 1 << int(len(xs[0]) + m).bit_length()
    spectra = np.stack([np.fft.rfft(x, n) for x in xs])
    cs = np.stack([np.concatenate([[0.0], np.cumsum(x ** 2)]) for x in xs])
    windows = np.sqrt(np.maximum(cs[:, m:m + search + 1] - cs[:, :search + 1], 0.0))
    return np.stack([np.fft.irfft(spectra * np.conj(np.fft.rfft(lead, n)), n)[:, :search + 1]
                     / (windows * np.sqrt((lead ** 2).sum()) + 1e-12) for lead in leads])


def prepare_loop(note: np.ndarray, start: int, end: int, xfade: int, search: int = 0) -> int:
    """Make note[start:e] loop seamlessly and return e, the loop end.

    e is picked within `search` samples before `end` where the waveform best matches the one before `start`
    (normalised cross-correlation; search 0 keeps e = end), so the crossfade joins material in phase; the last
    `xfade` samples before e
    then fade into those before `start` (linearly when they match well, at equal power when not), and note[e]
    becomes note[start], so a jump from e back to start continues the waveform without a step or a dip.
    """
    lead = note[start - xfade:start].astype(np.float64)
    r = None
    if search > 0:
        score = _match_scores([note[end - search - xfade:end].astype(np.float64)], [lead], search)[0, 0]
        j = int(np.argmax(score))
        end, r = end - search + j, float(score[j])
    note[end - xfade:end] = _join(note[end - xfade:end].astype(np.float64), lead, r)
    note[end] = note[start]
    return end


def _join(leave: np.ndarray, lead: np.ndarray, r: float | None = None) -> np.ndarray:
    """`leave` faded into `lead` (one length, float64): linearly when they match well (normalised correlation r
    over 0.5; computed when not given), at equal power when not, so the join neither steps nor dips."""
    if r is None:  # einsum, not BLAS: OpenBLAS wakes a second thread for a dot this long, which stalled a busy core
        r = float(np.einsum("i,i->", leave, lead)) / (
            float(np.sqrt(np.einsum("i,i->", leave, leave) * np.einsum("i,i->", lead, lead))) + 1e-12)
    theta = np.linspace(0.0, 1.0, len(leave), endpoint=False)
    if r > 0.5:
        return (1.0 - theta) * leave + theta * lead
    return np.cos(theta * np.pi / 2) * leave + np.sin(theta * np.pi / 2) * lead


def prepare_jumps(row: np.ndarray, layout: NoteLayout, start: int, end: int, xfade: int, jump: int,
                  period: float, jumps: Jumps | None = None) -> Jumps:
    """Write the slot's jump segments and return, for each, where a voice leaves the loop and where it lands.

    A loop that always wraps from its end to its start repeats its level pattern once a pass, which a held note
    makes audible as a beat about once a second. So a voice instead leaves the loop at one of EXITS points in its
    second half for one of LANDINGS points in its first 40 %, picked at random each pass (Voices._plan_jump),
    through a segment: a `jump`-long crossfade from the material at the exit to the material before the landing.
    The passes then differ in length and in what they play. Each landing (chosen unless `jumps` gives those of
    the pitch's other layers) is where, within a period of its evenly spread point, the material before it best
    matches the material at the exit, so the partials join in phase and the level does not dip. Returns () when
    the loop is too short for them: the voice then only wraps (prepare_loop)."""
    span = end - xfade - jump - start  # the last exit ends where the wrap's crossfade begins
    if span < 4 * jump or span < 20 * period:  # the shortest pass, a tenth of span, outlasts two periods
        return ()
    if jumps is None:
        search = max(int(period), 1)
        exits = [int(start + span * (0.5 + 0.5 * e / (EXITS - 1))) for e in range(EXITS)]
        lows = [int(start + 0.4 * span * land / (LANDINGS - 1)) for land in range(LANDINGS)]
        best = _match_scores([row[lo - jump:lo + search].astype(np.float64) for lo in lows],
                             [row[e:e + jump].astype(np.float64) for e in exits], search).argmax(-1)
        jumps = tuple((e, lo + int(best[i, j])) for i, e in enumerate(exits) for j, lo in enumerate(lows))
    for k, (exit_at, t) in enumerate(jumps):
        at = layout.segment_at(k)
        row[at:at + jump] = _join(row[exit_at:exit_at + jump].astype(np.float64), row[t - jump:t].astype(np.float64))
        row[at + jump] = row[t]
    return jumps


MAX_TAIL_DB_PER_SECOND = 100.0  # levelling gain stays inside float32's range


@dataclass(frozen=True)
class NoteShape:
    """How a stored note plays: its loop, its tail decay past tail_from (natural-log gain per sample, 0 for a
    sustained note), its release curve (None: the voices' fixed fade) and its rise in seconds (loudness.rise_ms:
    a render's slower GM program fades in only by what the note does not rise by itself)."""

    loop_start: int
    loop_len: int
    tail_from: int
    tail_k: float
    release: np.ndarray | None
    rise: float = 0.0
    jump_len: int = 0  # prepare_jumps: the segments' crossfade, and where each leaves the loop and lands
    jumps: Jumps = ()


def layer_table(layers: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each MIDI velocity 0-127: the two nearest layers (indices lo <= hi) and the weight of hi (0 when one
    layer serves: at or outside the outer layers, or exactly on one)."""
    v = np.arange(128, dtype=np.float64)
    at = np.asarray(layers, dtype=np.float64)
    hi = np.clip(np.searchsorted(at, v, side="right"), 1, max(len(at) - 1, 1))
    lo = hi - 1
    if len(at) == 1:
        return np.zeros(128, np.int64), np.zeros(128, np.int64), np.zeros(128)
    w = np.clip((v - at[lo]) / (at[hi] - at[lo]), 0.0, 1.0)
    lo = np.where(w >= 1.0, hi, lo)
    return lo.astype(np.int64), hi.astype(np.int64), np.where(w >= 1.0, 0.0, w)


def note_gain(note: np.ndarray, rate: int, layer_velocity: int) -> float:
    """The gain that brings a note rendered at `layer_velocity` to REFERENCE_LUFS at velocity 100 (the voices play a
    layer at (velocity / layer)^2, so the note's level is carried over to velocity 100)."""
    lufs = momentary_peak_lufs(note, rate) + 40.0 * math.log10(REFERENCE_VELOCITY / layer_velocity)
    return 10.0 ** (min(REFERENCE_LUFS - lufs, MAX_NOTE_GAIN_DB) / 20.0)


Blend = tuple[int, int, int, int]  # two stored notes of one key, layers i and i + 1: (slot, slot, velocity, velocity)


def blend_likeness(data: np.ndarray, layout: NoteLayout, blend: Blend, levelled: bool) -> float:
    """How alike the two stored notes of a key's adjacent layers are: the correlation that makes the voices' gain
    law, (1-w)² + w² + 2w(1-w)ρ, give the half-and-half blend's measured loudness (the loudest 400 ms, K-weighted,
    as the notes were levelled; likeness varies along a note, so a correlation over the whole note does not
    predict its loudest stretch). `levelled`: the notes were stored at their layers' GM levels (unless
    near-silent); 1.0 where a loudness cannot be measured."""
    a, b, va, vb = blend
    x = data[a, :layout.hold] / va ** 2  # each at the level the voices give it at one velocity
    y = data[b, :layout.hold] / vb ** 2
    if levelled:
        alone = REFERENCE_LUFS - 40.0 * math.log10(REFERENCE_VELOCITY)
    else:
        alone = 0.5 * (momentary_peak_lufs(x, layout.rate) + momentary_peak_lufs(y, layout.rate))
    both = momentary_peak_lufs(0.5 * (x + y), layout.rate)
    if not (np.isfinite(alone) and np.isfinite(both)):
        return 1.0
    return min(max(2.0 * 10.0 ** ((both - alone) / 10.0) - 1.0, -1.0), 1.0)


def render_into(model: NoteModel, data: np.ndarray, layout: NoteLayout, z: np.ndarray, pitches: list[int],
                velocities: list[int], slots: list[int], loops: list[Loop] | None = None,
                gain: float | None = 1.0) -> list[NoteShape]:
    """Render `pitches` of timbre z at MIDI `velocities` (the layers') into pool rows `slots` at the output rate,
    scaled by `gain` (None: each note levelled by note_gain), measured and with their loops prepared; keys outside
    the model's range are their nearest pitch transposed.

    The layers of one pitch share their loop end and jump targets (`loops`: those already chosen for the pitch,
    (0, ()) = search; else the first of the batch's), so the two voices of a blended note wrap and jump together
    and keep their phase relation."""
    info = model.info
    sources = [min(max(p, info.pitch_min), info.pitch_max) for p in pitches]
    audio = model.render(np.repeat(np.asarray(z, np.float32)[None], len(pitches), axis=0), sources,
                         np.asarray(velocities, np.float32) / 127.0)
    shapes = []
    chosen = {p: loop for p, loop in zip(pitches, loops or []) if loop[0] > 0}
    for p, q, v, note, slot in zip(pitches, sources, velocities, audio, slots):
        ratio = 2.0 ** ((p - q) / 12.0)
        hz = 440.0 * 2.0 ** ((p - 69) / 12.0)
        n_out = max(int(round(layout.full / ratio)), 64)
        # a note at the output rate and its own pitch is stored as rendered (models at that rate carry no DC)
        out = note if n_out == len(note) else resample(note, n_out, info.sample_rate)
        start, end, xf, jump = ((layout.loop_start, layout.loop_end, layout.xfade, layout.jump) if p == q
                                else layout.scaled(ratio))
        held = min(int(round(layout.hold / ratio)), len(out))
        env = analyse(out, layout.rate, held, hz)
        tail_from, k, rise = start - xf, 0.0, rise_ms(out[:held], layout.rate) / 1e3
        if not env.percussive:  # the loop and the stretch its end fades into at one level, before it is measured
            steady_loop(out, layout.rate, tail_from, end)
        g = note_gain(out[:layout.hold], layout.rate, v) if gain is None else gain
        row = data[slot]
        n = min(len(out), layout.body)
        np.multiply(out[:n], g, out=row[:n])
        row[n:] = 0.0
        if env.percussive:  # level the loop stretch; the voice's tail gain puts the decay back and carries it on
            k = min(tail_decay(row, layout.rate, tail_from, end, hz),
                    MAX_TAIL_DB_PER_SECOND * math.log(10) / 20 / layout.rate)
            row[tail_from:] *= np.exp(k * np.arange(len(row) - tail_from))
        if p in chosen:
            end = prepare_loop(row, start, chosen[p][0], xf)
            jumps = prepare_jumps(row, layout, start, end, xf, jump, layout.rate / hz, chosen[p][1])
        else:
            end = prepare_loop(row, start, end, xf, search=min(layout.rate // 20, (end - start) // 4))
            jumps = prepare_jumps(row, layout, start, end, xf, jump, layout.rate / hz)
            chosen[p] = (end, jumps)
        release = env.release if info.release_seconds > 0 else None
        shapes.append(NoteShape(start, end - start, tail_from, k, release, rise, jump, jumps))
    return shapes


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
        self.tail_from = np.zeros(slots, dtype=np.float64)
        self.tail_k = np.zeros(slots, dtype=np.float64)
        self.rise = np.zeros(slots, dtype=np.float64)
        self.jump_len = np.zeros(slots, dtype=np.float64)
        self.jump_from = np.zeros((slots, JUMPS), dtype=np.float64)
        self.jump_to = np.zeros((slots, JUMPS), dtype=np.float64)
        self.jumps = np.zeros(slots, dtype=np.int64)  # how many jump segments the slot has (0 or JUMPS)
        # Release curves, 10 ms a point, 1 at note-off; release_end is each curve's last point (0: none, fixed fade).
        self.release = np.zeros((slots, layout.release_points), dtype=np.float32)
        self.release[:, 0] = 1.0
        self.release_flat = self.release.reshape(-1)
        self.release_end = np.zeros(slots, dtype=np.float64)
        self.users = np.zeros(slots, dtype=np.int32)
        self.clock = np.zeros(1, dtype=np.int64)  # audio blocks processed; advanced by the audio thread
        self.live = False  # True while an audio thread may read the pool concurrently
        self.free = list(range(slots - 1, -1, -1))
        self.retired: list[tuple[int, int]] = []

    def store(self, slot: int, shape: NoteShape) -> None:
        """Record how the note in `slot` plays (renderer side, before any voice can reach the slot)."""
        self.loop_start[slot] = shape.loop_start
        self.loop_len[slot] = shape.loop_len
        self.tail_from[slot] = shape.tail_from
        self.tail_k[slot] = shape.tail_k
        self.rise[slot] = shape.rise
        self.jump_len[slot] = shape.jump_len
        for k, (exit_at, land) in enumerate(shape.jumps):
            self.jump_from[slot, k] = exit_at
            self.jump_to[slot, k] = land
        self.jumps[slot] = len(shape.jumps)
        row = self.release[slot]
        row[1:] = 0.0
        self.release_end[slot] = 0.0
        if shape.release is not None:
            curve = shape.release[:len(row)]
            row[:len(curve)] = curve
            row[len(curve) - 1] = 0.0  # a curve cut short still ends in silence
            self.release_end[slot] = len(curve) - 1

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
    """One timbre's rendered notes (layer * N_KEYS + pitch → slot) and when it started and became ready."""

    z: np.ndarray
    generation: int
    slot_of: dict[int, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    first_ready: float | None = None
    complete: float | None = None


class Lane:
    """One timbre stream: its target latent, its banks (oldest first) and the slot each layer of each key plays now."""

    def __init__(self, layers: int = 1) -> None:
        self.slot_for = np.full((layers, N_KEYS), -1, dtype=np.int32)
        # how alike each key's stored notes of layers i and i + 1 are (slot_for's; bank.blend_likeness): a
        # voice blending the two scales them so the blend is as loud as each layer (unlike layers summed half and
        # half lose up to 3 dB, partly cancelling ones more)
        self.blend_rho = np.ones((max(layers - 1, 1), N_KEYS), dtype=np.float64)
        self.banks: list[Bank] = []
        self.target: np.ndarray | None = None
        self.generation = 0
        # Read by the renderer to choose what to render first. held, last_on, last_velocity: written by the mixing
        # thread only. velocity: also by Engine.send for a pitch not rendered yet; wanted: by Engine.send, the mixing
        # thread and the renderer (which clears it). Single int stores under the GIL; a race only reorders renders
        # (docs/architecture.md, "Shared buffers").
        self.held = np.zeros(N_KEYS, dtype=np.int32)
        self.last_on = np.zeros(N_KEYS, dtype=np.int64)  # audio clock at the last note-on, 0 = never
        self.wanted = np.zeros(N_KEYS, dtype=np.int64)  # audio clock + 1 when a note waits for this pitch
        self.velocity = np.zeros(N_KEYS, dtype=np.int64)  # each key's last note-on velocity, 0 = never
        self.last_velocity = np.full(1, 100, dtype=np.int64)  # the last note-on velocity of any key


def render_order(missing: list[int], held: np.ndarray, last_on: np.ndarray, wanted: np.ndarray,
                 centre: int = 60, needed: np.ndarray | None = None) -> list[int]:
    """Waiting notes first, then held keys, then recently played ones (newest first), then outward from them; the
    layers each key's velocity plays (`needed`: bool [layers, N_KEYS]) before the other layers. Notes are keys
    layer * N_KEYS + pitch.

    Vectorised: this runs in the audio process, where Python loops would hold the GIL the callback needs."""
    k = np.asarray(missing, dtype=np.int64)
    if k.size == 0:
        return []
    p, layer = k % N_KEYS, k // N_KEYS
    anchors = np.flatnonzero((held > 0) | (last_on > 0))
    if anchors.size == 0:
        anchors = np.array([centre])
    w, h, t = wanted[p], held[p], last_on[p]
    group = np.where(w > 0, 0, np.where(h > 0, 1, np.where(t > 0, 2, 3)))
    if needed is not None:
        group = group + 4 * ~needed[layer, p]
    distance = np.abs(p[:, None] - anchors[None, :]).min(1)
    second = np.where(group % 4 == 0, w, np.where(group % 4 == 2, -t, np.where(group % 4 == 3, distance, 0)))
    return k[np.lexsort((k, second, group))].tolist()


class BankRenderer:
    """Fills the newest bank of each lane from the model: in the background once started (the inference in a
    worker process when the pool is shared, else on the thread), or synchronously (offline, tests)."""

    def __init__(self, model: NoteModel, rate: int, lanes: int = 1, polyphony: int = 32, slots: int = 0,
                 process: bool = False, match_loudness: bool = True) -> None:
        self.model = model
        self.match_loudness = match_loudness  # False: notes keep the model's own level (tests of the layer maths)
        info = model.info
        self.pmin, self.pmax = info.pitch_min, info.pitch_max
        self.layout = NoteLayout.for_model(info.sample_rate, model.note_samples,
                                           info.note_seconds - info.release_seconds, rate)
        self.layers = tuple(info.velocity_layers)
        self.layer_lo, self.layer_hi, self.layer_w = layer_table(self.layers)
        n_model, n_layers = self.pmax - self.pmin + 1, len(self.layers)
        self.bank_notes = n_model * n_layers  # notes in a whole bank
        voices = polyphony * (2 if n_layers > 1 else 1)  # a note between two layers plays both
        self.pool = SlotPool(slots or (2 * self.bank_notes + voices + 16) * max(1, lanes), self.layout,
                             shared=process)
        self._worker: RenderWorker | None = None
        self._unlinked = False
        self.lanes = [Lane(n_layers) for _ in range(lanes)]
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
        """How many of the bank's notes (model pitches × layers; out of bank_notes) the newest bank of the lane has."""
        banks = self.lanes[lane].banks
        if not banks:
            return 0
        return sum(1 for k in banks[-1].slot_of if self.pmin <= k % N_KEYS <= self.pmax)

    def layers_for(self, velocity: int) -> list[int]:
        """The layers (indices) a note of this MIDI velocity plays: one, or the two it blends."""
        v = min(max(int(velocity), 0), 127)
        lo, hi = int(self.layer_lo[v]), int(self.layer_hi[v])
        return [lo, hi] if self.layer_w[v] > 0 else [lo]

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

    def render_notes(self, lane: int, notes: list[tuple[int, int]], batch: int = 16) -> None:
        """Synchronously render the layers that these (pitch, velocity) notes play into the lane's newest bank
        (offline: only what a file plays)."""
        ln = self.lanes[lane]
        if not ln.banks or ln.banks[-1].generation != ln.generation:
            assert ln.target is not None, "render_notes before the lane has a timbre"
            ln.banks.append(Bank(ln.target, ln.generation))
        bank = ln.banks[-1]
        keys = {layer * N_KEYS + p for p, v in notes for layer in self.layers_for(v)}
        todo = [k for k in sorted(keys) if k not in bank.slot_of]
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
                if bank.complete is None and self.ready(index) == self.bank_notes:
                    bank.complete = time.monotonic()
                    self.last_bank_seconds = bank.complete - bank.started
                    self._retire_old(ln)
                continue
            order = render_order(missing, ln.held, ln.last_on, ln.wanted, (self.pmin + self.pmax) // 2,
                                 self._needed(ln))
            first = order[0] % N_KEYS
            urgent = bool(ln.wanted[first] or ln.held[first])
            size = FIRST_BATCH if (not bank.slot_of or urgent) else BATCH
            self._render(ln, bank, order[:size])
            return True
        return False

    def _missing(self, ln: Lane, bank: Bank) -> list[int]:
        """Notes (every layer) of the model pitches the bank lacks, plus of keys outside the range that are waited
        for, held or recent."""
        now = int(self.pool.clock[0])
        recent = max(1, int(RECENT_SECONDS * self.blocks_per_second))
        keys = np.arange(N_KEYS)
        need = (keys >= self.pmin) & (keys <= self.pmax)
        need |= (ln.wanted > 0) | (ln.held > 0) | ((ln.last_on > 0) & (now - ln.last_on < recent))
        need = np.tile(need, len(self.layers))
        if bank.slot_of:
            need[list(bank.slot_of)] = False
        return np.flatnonzero(need).tolist()

    def _needed(self, ln: Lane) -> np.ndarray:
        """bool [layers, N_KEYS]: the layers each key's last velocity (or the lane's last one) plays."""
        v = np.where(ln.velocity > 0, ln.velocity, ln.last_velocity[0]).clip(0, 127)
        needed = np.zeros((len(self.layers), N_KEYS), dtype=bool)
        keys = np.arange(N_KEYS)
        needed[self.layer_lo[v], keys] = True
        blend = self.layer_w[v] > 0
        needed[self.layer_hi[v][blend], keys[blend]] = True
        return needed

    def _render(self, ln: Lane, bank: Bank, keys: list[int]) -> None:
        pitches = [k % N_KEYS for k in keys]
        velocities = [self.layers[k // N_KEYS] for k in keys]
        loops = [self._loop(bank, p) for p in pitches]
        slots = [self._take_slot() for _ in keys]
        gain = None if self.match_loudness else 1.0
        newest = ln.banks[-1] is bank  # else a newer bank has these keys: this one's notes change no blend
        pairs = self._blends(ln, keys, slots) if newest else []
        blends = [(a, b, self.layers[lo], self.layers[lo + 1]) for lo, _, a, b in pairs]
        try:
            if self._worker is not None:  # the worker measures the blends too: no numpy work for the audio process
                shapes, rhos = self._worker.render(bank.z, pitches, velocities, slots, loops, gain, blends)
            else:
                shapes = render_into(self.model, self.pool.data, self.layout, bank.z, pitches, velocities, slots,
                                     loops, gain)
                rhos = [blend_likeness(self.pool.data, self.layout, b, self.match_loudness) for b in blends]
        except Exception:
            self.pool.free.extend(slots)
            raise
        for k, slot, shape in zip(keys, slots, shapes):
            self.pool.store(slot, shape)
            bank.slot_of[k] = slot
            if newest:
                ln.slot_for[k // N_KEYS, k % N_KEYS] = slot
            ln.wanted[k % N_KEYS] = 0
        for (lo, pitch, _, _), rho in zip(pairs, rhos):
            ln.blend_rho[lo, pitch] = rho
        if bank.first_ready is None:
            bank.first_ready = time.monotonic()
            self.last_first_note_seconds = bank.first_ready - bank.started

    def _blends(self, ln: Lane, keys: list[int], slots: list[int]) -> list[tuple[int, int, int, int]]:
        """(lower layer, pitch, its slot, the upper layer's slot) of each key's layer pair that these notes
        (`keys` into `slots`) change, with the slot each layer will play once they are stored: a pair whose both
        notes the batch holds is measured once (Lane.blend_rho, blend_likeness)."""
        new = dict(zip(keys, slots))
        pairs = set()
        for k in keys:
            layer, pitch = divmod(k, N_KEYS)
            for lo in (layer - 1, layer):
                if 0 <= lo < len(self.layers) - 1:
                    a = new.get(lo * N_KEYS + pitch, int(ln.slot_for[lo, pitch]))
                    b = new.get((lo + 1) * N_KEYS + pitch, int(ln.slot_for[lo + 1, pitch]))
                    if a >= 0 and b >= 0:
                        pairs.add((lo, pitch, a, b))
        return sorted(pairs)

    def _loop(self, bank: Bank, pitch: int) -> Loop:
        """The loop end and jump targets the bank's other layers of this pitch have, else those the other lanes'
        newest banks have for it ((0, ()): none rendered yet): a note and its morph partner on the other lane wrap
        and jump together, so a long held morph keeps its phase relation instead of drifting into comb filtering."""
        others = [ln.banks[-1] for ln in self.lanes if ln.banks and ln.banks[-1] is not bank]
        for b in [bank] + others:
            for layer in range(len(self.layers)):
                slot = b.slot_of.get(layer * N_KEYS + pitch)
                if slot is not None:
                    k = int(self.pool.jumps[slot])
                    jumps = tuple(zip(self.pool.jump_from[slot, :k].astype(int).tolist(),
                                      self.pool.jump_to[slot, :k].astype(int).tolist()))
                    return int(self.pool.loop_start[slot] + self.pool.loop_len[slot]), jumps
        return 0, ()

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

    def _retire(self, ln: Lane, bank: Bank, key: int) -> None:
        slot = bank.slot_of.pop(key)
        layer, pitch = divmod(key, N_KEYS)
        if ln.slot_for[layer, pitch] == slot:
            newer = [b for b in ln.banks if b is not bank and key in b.slot_of]
            ln.slot_for[layer, pitch] = newer[-1].slot_of[key] if newer else -1
        self.pool.retired.append((slot, int(self.pool.clock[0])))

    def _retire_old(self, ln: Lane) -> None:
        """Once the newest bank is complete, the older ones of its lane go, except keys only they still have."""
        newest = ln.banks[-1]
        for bank in ln.banks[:-1]:
            for k in [k for k in bank.slot_of if k in newest.slot_of or self.pmin <= k % N_KEYS <= self.pmax]:
                self._retire(ln, bank, k)
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

