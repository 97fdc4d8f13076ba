"""Voices: the polyphonic player that turns MIDI events and the note bank into a stereo block of samples.

`process()` is what the audio callback runs. It allocates no sample buffers (every array is made in
`__init__` and used through views), takes no lock, and its work grows only with voices × block size: all voices
are mixed at once by vectorised gathers from the shared slot pool. Events reach it through `events`, a bounded
deque that other threads append to (append/popleft are atomic under the GIL and never block).

A note plays the bank's layer nearest its velocity, or two voices (one note: same age, one of them `primary`)
blend the two layers around it; each layer's gain follows the GM curve relative to the layer's own velocity, so
the level stays continuous across layers. Per voice: linear interpolation at the pitch-bend rate, a held note
loops its stored loop region, each pass leaving it by one of the slot's jump segments picked at random
(bank.prepare_jumps; the voices of one note pick alike), so no pattern repeats pass after pass (a
percussive note's tail gain keeps it decaying at its own rate past the stored end, see synth.engine.bank), a
linear envelope makes every start and stop click-free (attack, a 5 ms fade when a voice is stolen or
retriggered), and a release follows the note's own release curve from where the voice is (the model's part
after note-off), or a fixed fade for a model without one or when a release time is given.
The release curve and tail decay are applied per block (their values at the block's ends, linear between).

Channel messages (the same code live and offline, so `render` and `play` agree):
- CC7 volume and CC11 expression follow the GM curve, 40·log10(v/127) dB each, referenced so that GM's default
  volume 100 with full expression plays at unity (the level a keyboard that sends neither always had).
- CC10 pan is constant-power (L² + R² constant), centre at unity on both sides, so a centred mix is the old mono
  signal on each channel; `spread` adds a key-tracked pan per note (low keys left, high keys right) for width.
- CC1 modulation wheel morphs the timbre: each note also plays on the channel's morph lane (a second bank, of the
  morph target's latent) and the wheel crossfades the two. Both notes have the same pitch, start on the same
  sample and, from a harmonic model, the same partial phases, so the crossfade interpolates the partials'
  amplitudes — a spectral morph, not two sounds side by side. Channel pressure adds to the wheel (press into
  the key to push the sound towards the target) and polyphonic aftertouch does so for its key alone.
  The morph voices start only once a channel has moved the wheel or sent pressure, so a player who never
  touches them pays nothing.
- Every gain that follows a controller is smoothed (a 5 ms one-pole per block, linear within the block): no
  zipper noise.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from synth.engine.bank import BankRenderer
from synth.engine.envelope import STEP_SECONDS

HELD, SUSTAINED, RELEASED, KILLED = 0, 1, 2, 3
EXTRA_VOICES = 16  # room for stolen voices to fade out while their replacements start
MAX_PENDING = 64
FALLBACK_RELEASE = 0.3  # seconds of linear fade for notes without a release curve
NO_TAIL = 1e18  # tail_from of a voice that never decays by itself
NO_JUMP = 1e18  # no second jump (then_at), and no wrapping round (jump_mod) on a jump into a segment
VOLUME_REF = 100  # GM's default CC7: plays at unity
SMOOTH_SECONDS = 0.005  # time constant of controller smoothing
SQRT2 = math.sqrt(2.0)
JUMP_ROWS = 12  # up to this many voices jumping in one block, their rows are moved one by one (cheaper than all)



def velocity_gain(velocity: int, layer_velocity: int = 127) -> float:
    """The General MIDI / DLS velocity curve, 40·log10(v/127) dB, i.e. (v/127)², here relative to the velocity a
    layer was rendered at: (v/layer)²."""
    return (max(0, min(velocity, 127)) / layer_velocity) ** 2


class Voices:
    """Voice allocation, MIDI handling and mixing for one instrument (16 channels, one bank lane per channel)."""

    def __init__(self, renderer: BankRenderer, max_block: int = 1024, polyphony: int = 32,
                 attack: float = 0.003, release: float | None = None, bend_range: float = 2.0, gain: float = 0.5,
                 channel: int | None = None, spread: float = 0.0) -> None:
        """`release`: None plays each note's own release (FALLBACK_RELEASE where it has none); seconds: a fixed
        linear fade for every note. `spread` (0-1): key-tracked pan, ±spread from the channel's pan over ±3
        octaves around middle C."""
        self.renderer = renderer
        self.pool = renderer.pool
        self.lanes = renderer.lanes
        self.rate = renderer.layout.rate
        self.max_block = max_block
        self.polyphony = polyphony
        self.channel = channel  # None = omni
        self.skip_channel = -1  # a channel another instrument plays (channel 10 when FluidSynth plays the drums)
        self.gain = gain
        # float32 as the voices' rates are stored, so a voice's rate compares exactly with it (_release)
        self.attack_rate = np.float32(1.0 / max(1.0, attack * self.rate))
        self.fixed_release = release is not None
        self.release_rate = 1.0 / max(1.0, (FALLBACK_RELEASE if release is None else release) * self.rate)
        self.curve_rate = 1.0 / (STEP_SECONDS * self.rate)  # release curve points per sample
        self.kill_rate = 1.0 / (0.005 * self.rate)
        self.events: deque[tuple[int, int, int]] = deque(maxlen=4096)

        self._layer_tables(renderer)
        self.spread = float(spread)
        # a note plays up to two layers, on its own lane and on its channel's morph lane
        v = (polyphony + EXTRA_VOICES) * (2 if len(renderer.layers) > 1 else 1) * 2
        self.n = 0
        self._voice_state(v)
        self._scratch(v, max_block)
        self._channel_state(bend_range)
        self._counters(max_block)

    def _layer_tables(self, renderer: BankRenderer) -> None:
        """Layer choice per MIDI velocity: the lower and upper layer, their gains when blended, one layer's gain."""
        layers = np.asarray(renderer.layers, dtype=np.float64)
        vel = np.arange(128, dtype=np.float64)
        self.layer_lo, self.layer_hi, self.layer_w = renderer.layer_lo, renderer.layer_hi, renderer.layer_w
        self.single_gain = (vel[None, :] / layers[:, None]) ** 2  # [layer, velocity]
        w = renderer.layer_w
        self.blend_lo = (1.0 - w) * self.single_gain[self.layer_lo, np.arange(128)]
        self.blend_hi = np.where(w > 0, w * self.single_gain[self.layer_hi, np.arange(128)], 0.0)
        self.layer_order = np.argsort(np.abs(layers[None, :] - vel[:, None]), axis=1, kind="stable")

    def _voice_state(self, v: int) -> None:
        """One entry per voice in each array: where it reads, how it loops, fades and pans."""
        self.v_slot = np.zeros(v, dtype=np.int64)
        self.v_base = np.zeros(v, dtype=np.int64)
        self.v_pos = np.zeros(v, dtype=np.float64)
        self.v_rate = np.ones(v, dtype=np.float64)
        # The voice's next jump: at position jump_at it goes on at jump_to + (pos - jump_at) % jump_mod (mod: the
        # loop's length for the wrap, NO_JUMP into a segment); then, when that is a segment, from then_at to then_to.
        self.v_jump_at = np.zeros(v, dtype=np.float64)
        self.v_jump_to = np.zeros(v, dtype=np.float64)
        self.v_jump_mod = np.ones(v, dtype=np.float64)
        self.v_then_at = np.full(v, NO_JUMP, dtype=np.float64)
        self.v_then_to = np.full(v, NO_JUMP, dtype=np.float64)
        self.v_passes = np.zeros(v, dtype=np.int64)  # jumps planned so far: with the age, seeds the next pick
        self.v_gain = np.zeros(v, dtype=np.float32)
        self.v_env = np.zeros(v, dtype=np.float32)
        self.v_env_rate = np.zeros(v, dtype=np.float32)
        self.v_state = np.zeros(v, dtype=np.int8)
        self.v_chan = np.zeros(v, dtype=np.int64)
        self.v_pitch = np.zeros(v, dtype=np.int16)
        self.v_age = np.zeros(v, dtype=np.int64)  # note number: the voices of one note share it
        self.v_primary = np.zeros(v, dtype=bool)  # the voice that stands for its note (polyphony, keys held)
        self.v_upos = np.zeros(v, dtype=np.float64)  # position without loop wraps, for the tail decay
        self.v_tail_from = np.zeros(v, dtype=np.float64)
        self.v_tail_k = np.zeros(v, dtype=np.float64)
        self.v_rel_base = np.zeros(v, dtype=np.int64)  # the slot's release curve in pool.release_flat
        self.v_rel_pos = np.zeros(v, dtype=np.float64)  # position in the curve, in points
        self.v_rel_rate = np.zeros(v, dtype=np.float64)  # points per sample: 0 until released along the curve
        self.v_rel_end = np.zeros(v, dtype=np.float64)
        self.v_side = np.zeros(v, dtype=np.float64)  # 0: the note's own lane, 1: its channel's morph lane
        self.v_paired = np.zeros(v, dtype=np.float64)  # 1 when the note also plays on the morph lane
        self.v_pan = np.zeros(v, dtype=np.float64)  # key-tracked pan offset (spread)
        self.v_touch = np.zeros(v, dtype=np.float64)  # polyphonic aftertouch, 0-1
        self.v_left = np.zeros(v, dtype=np.float32)  # the channel gains the voice had at the end of the last block
        self.v_right = np.zeros(v, dtype=np.float32)
        self._voice_arrays = (self.v_slot, self.v_base, self.v_pos, self.v_rate, self.v_jump_at, self.v_jump_to,
                              self.v_jump_mod, self.v_then_at, self.v_then_to, self.v_passes, self.v_gain, self.v_env,
                              self.v_env_rate, self.v_state, self.v_chan,
                              self.v_pitch, self.v_age, self.v_primary, self.v_upos, self.v_tail_from,
                              self.v_tail_k, self.v_rel_base, self.v_rel_pos, self.v_rel_rate, self.v_rel_end,
                              self.v_side, self.v_paired, self.v_pan, self.v_touch, self.v_left, self.v_right)
        self._age = 0

    def _scratch(self, v: int, max_block: int) -> None:
        """Per-sample scratch, flat so that every block's [voices, frames] view is contiguous: numpy then needs no
        buffer of its own (a strided `out` or a mixed-type operation makes it allocate one, every block)."""
        shape = v * max_block
        self._idx = np.zeros(shape, dtype=np.float64)
        self._tmp = np.zeros(shape, dtype=np.float64)
        self._floor = np.zeros(shape, dtype=np.float64)
        self._w = np.zeros(shape, dtype=np.float64)
        self._i0 = np.zeros(shape, dtype=np.int64)
        self._i1 = np.zeros(shape, dtype=np.int64)
        self._mask = np.zeros(shape, dtype=bool)
        self._s0 = np.zeros(shape, dtype=np.float32)
        self._s1 = np.zeros(shape, dtype=np.float32)
        self._f32 = np.zeros(shape, dtype=np.float32)
        self._env = np.zeros(shape, dtype=np.float32)
        self._ramps = np.zeros(shape, dtype=np.float64)
        self._ramps1 = np.zeros(shape, dtype=np.float32)
        self._ramp_b = -1
        self._vtmp = np.zeros(v, dtype=np.float64)
        self._vb = np.zeros((3, v), dtype=bool)  # per-voice masks for the event and bookkeeping paths
        self._vage = np.zeros(v, dtype=np.int64)
        self._vtmp32 = np.zeros((2, v), dtype=np.float32)
        self._q = np.zeros((2, v), dtype=np.float64)  # per voice, at the block's first and last sample
        self._qf = np.zeros((2, v), dtype=np.float64)
        self._qi = np.zeros((2, v), dtype=np.int64)
        self._c0 = np.zeros((2, v), dtype=np.float32)
        self._c1 = np.zeros((2, v), dtype=np.float32)
        self._m = np.zeros((2, v), dtype=np.float64)
        self._t = np.zeros((2, v), dtype=np.float64)
        self._ramp = np.arange(max_block, dtype=np.float64)
        self._ramp1 = np.arange(1, max_block + 1, dtype=np.float32)
        self._gbuf = np.zeros(max_block, dtype=np.float32)
        self._abuf = np.zeros((2, max_block), dtype=np.float32)
        self._lr0 = np.zeros((2, v), dtype=np.float32)  # channel gains per voice at the block's start and end
        self._lr1 = np.zeros((2, v), dtype=np.float32)
        self._lrd = np.zeros((2, v), dtype=np.float32)
        self._lrg = np.zeros((2, v), dtype=np.float32)
        self._cv = np.zeros((4, v), dtype=np.float64)  # per-voice scratch for the channel gains
        self._mix2 = np.zeros((2, max_block), dtype=np.float32)  # planar stereo mix
        self._mix2b = np.zeros((2, max_block), dtype=np.float32)
        self._frac2 = np.zeros((2, max_block), dtype=np.float32)  # 1/b … 1 on both rows
        self.mix = np.zeros((max_block, 2), dtype=np.float32)  # the block handed out, interleaved stereo
        for scratch in (self._idx, self._tmp, self._floor, self._w, self._i0, self._i1, self._mask, self._s0, self._s1,
                        self._f32, self._env, self._ramps, self._ramps1):
            scratch.fill(0)  # np.zeros maps pages lazily: touch them now, not in the callback's first blocks

    def _channel_state(self, bend_range: float) -> None:
        """Per MIDI channel: bend, sustain, RPN, lanes and the controllers (smoothed towards their targets)."""
        self.bend_ratio = np.ones(16, dtype=np.float64)
        self.bend_range = np.full(16, bend_range, dtype=np.float64)
        self.bend_value = np.zeros(16, dtype=np.float64)
        self.sustain = np.zeros(16, dtype=bool)
        self.rpn = np.full((16, 2), 127, dtype=np.int16)
        self.lane_of = np.zeros(16, dtype=np.int64)  # which bank lane each MIDI channel plays
        self.morph_lane_of = np.full(16, -1, dtype=np.int64)  # the lane CC1 morphs each channel towards; -1: none
        # the gain each channel's new notes start with, per key: 1 live; a render's GM program level (gm_levels)
        self.key_gain = np.ones((16, 128), dtype=np.float32)
        # and how slowly they rise, per key (seconds): 0 live; a render's GM program rise (gm_levels), of which a note
        # fades in by what it does not rise by itself
        self.key_rise = np.zeros((16, 128), dtype=np.float64)
        self.volume = np.full(16, VOLUME_REF, dtype=np.float64)  # CC7
        self.expression = np.full(16, 127, dtype=np.float64)  # CC11
        self.pan = np.full(16, 64, dtype=np.float64)  # CC10
        self.modulation = np.zeros(16, dtype=np.float64)  # CC1
        self.pressure = np.zeros(16, dtype=np.float64)  # channel pressure
        self.morphing = np.zeros(16, dtype=bool)  # the channel has moved the wheel or pressed: notes get morph voices
        self.smooth_k = math.exp(-1.0 / (SMOOTH_SECONDS * self.rate))  # one-pole coefficient per sample
        self._controls_moved = False  # a controller changed: recompute the voices' channel gains
        self._settling = False  # the voices' channel gains are still gliding to their targets

    def _counters(self, max_block: int) -> None:
        """Notes waiting for their pitch, the limiter, and what the status line counts."""
        self.p_pitch = np.zeros(MAX_PENDING, dtype=np.int16)
        self.p_chan = np.zeros(MAX_PENDING, dtype=np.int8)
        self.p_vel = np.zeros(MAX_PENDING, dtype=np.int16)
        self.p_since = np.zeros(MAX_PENDING, dtype=np.int64)
        self.p_released = np.zeros(MAX_PENDING, dtype=bool)
        self.n_pending = 0

        self.limit_ceiling = 0.98
        self.limit_gain = 1.0
        self.limited_blocks = 0
        self.nonfinite_blocks = 0  # blocks silenced because the mix was not finite
        self.waited_notes = 0
        self.max_wait_blocks = 0
        self.dropped_notes = 0
        self.stolen = 0
        self.last_block = max_block

    # -- events ----------------------------------------------------------------------------------------------
    def handle(self, status: int, d1: int = 0, d2: int = 0) -> None:
        """Apply one MIDI channel message (already parsed into status and two data bytes)."""
        kind, ch = status & 0xF0, status & 0x0F
        if (self.channel is not None and ch != self.channel) or ch == self.skip_channel:
            return
        if kind == 0x90 and d2 > 0:
            self.note_on(ch, d1, d2)
        elif kind == 0x80 or kind == 0x90:
            self.note_off(ch, d1)
        elif kind == 0xE0:
            self.bend_value[ch] = ((d2 << 7) | d1) - 8192
            self._apply_bend(ch)
        elif kind == 0xB0:
            self._control(ch, d1, d2)
        elif kind == 0xD0:
            self.pressure[ch] = d1
            self._touched(ch, d1)
        elif kind == 0xA0:
            np.copyto(self.v_touch[:self.n], d2 / 127.0, where=self._key_voices(ch, d1))
            self._touched(ch, d2)

    def _touched(self, ch: int, value: int) -> None:
        """A controller that moves voices' gains changed; a morph controller above 0 turns the channel's morph on."""
        self._controls_moved = True
        if value > 0 and self.morph_lane_of[ch] >= 0:
            self.morphing[ch] = True

    def _control(self, ch: int, cc: int, value: int) -> None:
        if cc == 7:
            self.volume[ch] = value
            self._controls_moved = True
        elif cc == 11:
            self.expression[ch] = value
            self._controls_moved = True
        elif cc == 10:
            self.pan[ch] = value
            self._controls_moved = True
        elif cc == 1:
            self.modulation[ch] = value
            self._touched(ch, value)
        elif cc == 64:
            down = value >= 64
            if self.sustain[ch] and not down:
                for i in np.flatnonzero(self._in_state(self._key_voices(ch), SUSTAINED)):
                    self._release(int(i))
            self.sustain[ch] = down
        elif cc == 123:  # all notes off: as if every key were let go
            self._let_go(ch, self._in_state(self._key_voices(ch), HELD))
            self._forget_pending(ch)
            self.lanes[self.lane_of[ch]].held[:] = 0
        elif cc == 120:  # all sound off: silence now (fast fade)
            self._kill_where(self._key_voices(ch))
            self._forget_pending(ch)
            self.lanes[self.lane_of[ch]].held[:] = 0
        elif cc == 121:  # reset all controllers (GM RP-015: not volume or pan)
            self.expression[ch] = 127
            self.modulation[ch] = 0
            self.pressure[ch] = 0
            np.copyto(self.v_touch[:self.n], 0.0, where=self._key_voices(ch))
            self._controls_moved = True
            self.bend_value[ch] = 0
            self._apply_bend(ch)
            self._control(ch, 64, 0)
        elif cc == 101:
            self.rpn[ch, 0] = value
        elif cc == 100:
            self.rpn[ch, 1] = value
        elif cc in (98, 99):  # an NRPN is selected: data entry from now on is for it (ignored), not for an RPN
            self.rpn[ch] = 127
        elif cc in (6, 38) and self.rpn[ch, 0] == 0 and self.rpn[ch, 1] == 0:  # RPN 0: pitch bend sensitivity
            semis, cents = math.modf(self.bend_range[ch])
            if cc == 6:
                self.bend_range[ch] = value + semis
            else:
                self.bend_range[ch] = cents + min(value, 99) / 100.0
            self._apply_bend(ch)

    def _apply_bend(self, ch: int) -> None:
        ratio = 2.0 ** (self.bend_value[ch] / 8192.0 * self.bend_range[ch] / 12.0)
        self.bend_ratio[ch] = ratio
        np.copyto(self.v_rate[:self.n], ratio, where=self._key_voices(ch))

    def _key_voices(self, ch: int, pitch: int = -1, but: int = -1) -> np.ndarray:
        """bool [n], a scratch view valid until the next call: the voices on channel `ch` (of key `pitch`; not in
        state `but`). Vectorised without allocating: a note-on's Python loops over 64 voices were ~8 of its 37 µs."""
        n = self.n
        on, t = self._vb[0, :n], self._vb[1, :n]
        np.equal(self.v_chan[:n], ch, out=on)
        if pitch >= 0:
            np.equal(self.v_pitch[:n], pitch, out=t)
            np.logical_and(on, t, out=on)
        return self._but(on, but)

    def _note_voices(self, i: int, but: int = -1) -> np.ndarray:
        """As _key_voices, the voices of voice i's note (its age; not in state `but`)."""
        on = self._vb[0, :self.n]
        np.equal(self.v_age[:self.n], self.v_age[i], out=on)
        return self._but(on, but)

    def _but(self, on: np.ndarray, state: int) -> np.ndarray:
        """`on` narrowed, in place, to the voices not in `state` (all of them for -1)."""
        if state >= 0:
            t = self._vb[1, :len(on)]
            np.not_equal(self.v_state[:len(on)], state, out=t)
            np.logical_and(on, t, out=on)
        return on

    def _in_state(self, on: np.ndarray, state: int) -> np.ndarray:
        """`on` (a _key_voices mask) narrowed, in place, to the voices in `state`."""
        t = self._vb[1, :len(on)]
        np.equal(self.v_state[:len(on)], state, out=t)
        np.logical_and(on, t, out=on)
        return on

    def _kill_where(self, on: np.ndarray) -> None:
        """Fade out the voices of the mask quickly (5 ms): stolen, retriggered or cut off."""
        np.copyto(self.v_state[:len(on)], KILLED, where=on)
        np.copyto(self.v_env_rate[:len(on)], -self.kill_rate, where=on)

    def _let_go(self, ch: int, on: np.ndarray) -> None:
        """The key(s) of these held voices went up: sustained while the channel's pedal is down, else released."""
        if self.sustain[ch]:
            np.copyto(self.v_state[:len(on)], SUSTAINED, where=on)
        else:
            for i in np.flatnonzero(on):
                self._release(int(i))

    def note_on(self, ch: int, pitch: int, velocity: int) -> None:
        lane = self.lanes[self.lane_of[ch]]
        self._kill_where(self._key_voices(ch, pitch, KILLED))  # retrigger: a sounding note of the key fades out
        clock = int(self.pool.clock[0]) + 1
        lane.held[pitch] += 1
        lane.last_on[pitch] = clock
        lane.velocity[pitch] = velocity
        lane.last_velocity[0] = velocity
        i = self._start_note(ch, pitch, velocity)
        if i >= 0:
            return
        if i == -2 or self.n_pending == MAX_PENDING:
            self.dropped_notes += 1
            return
        k = self.n_pending
        self.p_pitch[k], self.p_chan[k], self.p_vel[k], self.p_since[k] = pitch, ch, velocity, clock
        self.p_released[k] = False
        self.n_pending += 1
        if not lane.wanted[pitch]:
            lane.wanted[pitch] = clock
        self.waited_notes += 1

    def note_off(self, ch: int, pitch: int) -> None:
        lane = self.lanes[self.lane_of[ch]]
        if lane.held[pitch] > 0:
            lane.held[pitch] -= 1
        self._let_go(ch, self._in_state(self._key_voices(ch, pitch), HELD))
        for k in range(self.n_pending):
            if self.p_chan[k] == ch and self.p_pitch[k] == pitch:
                self.p_released[k] = True

    def _forget_pending(self, ch: int) -> None:
        k = 0
        while k < self.n_pending:
            if self.p_chan[k] == ch:
                self._drop_pending(k)
            else:
                k += 1

    def _drop_pending(self, k: int) -> None:
        last = self.n_pending - 1
        for arr in (self.p_pitch, self.p_chan, self.p_vel, self.p_since, self.p_released):
            arr[k] = arr[last]
        self.n_pending = last

    def _layer_slots(self, lane: int, pitch: int, v: int) -> tuple[int, int, float, float] | None:
        """The slots (second -1 when one layer plays) and gains for a note of velocity `v` on `lane`: the two
        layers around the velocity, or the nearest rendered layer alone while those are missing; None when no
        layer of the key is rendered on that lane yet."""
        slot_for = self.lanes[lane].slot_for
        lo, hi = self.layer_lo[v], self.layer_hi[v]
        first, second = int(slot_for[lo, pitch]), int(slot_for[hi, pitch]) if self.blend_hi[v] > 0 else -1
        g1, g2 = self.blend_lo[v], self.blend_hi[v]
        if first < 0 or second < 0:  # play one layer alone, at its own gain
            if first < 0:
                first, second = second, -1
                lo = hi
            second = -1
            if first < 0:
                for layer in self.layer_order[v]:
                    first = int(slot_for[layer, pitch])
                    if first >= 0:
                        lo = layer
                        break
                else:
                    return None
            g1 = self.single_gain[lo, v]
        else:  # two layers: as loud as either, however alike they are (Lane.blend_rho)
            w, rho = self.layer_w[v], self.lanes[lane].blend_rho[lo, pitch]
            c = 1.0 / math.sqrt(max((1.0 - w) ** 2 + w * w + 2.0 * w * (1.0 - w) * rho, 0.25))
            g1, g2 = g1 * c, g2 * c
        return first, second, g1, g2

    def _start_note(self, ch: int, pitch: int, velocity: int) -> int:
        """Start a note on the layer(s) its velocity plays (the nearest rendered layer while those are missing),
        and on the channel's morph lane too once the channel morphs (where that lane has the key rendered).
        Returns its primary voice, -1 when no layer of the key is rendered yet, -2 when there is no room."""
        v = min(max(velocity, 0), 127)
        own = self._layer_slots(int(self.lane_of[ch]), pitch, v)
        if own is None:
            return -1
        morph = None
        if self.morphing[ch] and self.morph_lane_of[ch] >= 0:
            morph = self._layer_slots(int(self.morph_lane_of[ch]), pitch, v)
        n = self.n
        notes, released = self._vb[2, :n], self._vb[1, :n]
        np.not_equal(self.v_state[:n], KILLED, out=notes)
        np.logical_and(notes, self.v_primary[:n], out=notes)
        if np.count_nonzero(notes) >= self.polyphony:  # steal: the oldest released note, else the oldest note
            np.equal(self.v_state[:n], RELEASED, out=released)
            np.logical_and(released, notes, out=released)
            ages = self._vage[:n]
            ages.fill(np.iinfo(np.int64).max)
            np.copyto(ages, self.v_age[:n], where=released if released.any() else notes)
            self._kill_note(int(np.argmin(ages)))
            self.stolen += 1
        need = (1 if own[1] < 0 else 2) + (0 if morph is None else 1 if morph[1] < 0 else 2)
        while self.n + need > len(self.v_slot):  # no room even for fading voices: drop the oldest fading one
            oldest = -1
            for i in range(self.n):
                if self.v_state[i] == KILLED and (oldest < 0 or self.v_age[i] < self.v_age[oldest]):
                    oldest = i
            if oldest < 0:
                return -2
            self._free(oldest)
        self._age += 1
        paired = morph is not None
        pan = self.spread * min(max((pitch - 60) / 36.0, -1.0), 1.0)
        k = float(self.key_gain[ch, pitch])
        fade = self.key_rise[ch, pitch] - self.pool.rise[own[0]]  # one fade-in for all the voices of the note
        rate = min(self.attack_rate, 1.0 / max(1.0, fade * self.rate))
        primary = self._start(ch, pitch, k * own[2], own[0], True, 0.0, paired, pan, rate)
        if own[1] >= 0:
            self._start(ch, pitch, k * own[3], own[1], False, 0.0, paired, pan, rate)
        if morph is not None:
            self._start(ch, pitch, k * morph[2], morph[0], False, 1.0, paired, pan, rate)
            if morph[1] >= 0:
                self._start(ch, pitch, k * morph[3], morph[1], False, 1.0, paired, pan, rate)
        return primary

    def _start(self, ch: int, pitch: int, gain: float, slot: int, primary: bool, side: float, paired: bool,
               pan: float, attack_rate: float) -> int:
        i = self.n
        self.n += 1
        self.v_slot[i] = slot
        self.v_base[i] = slot * self.pool.data.shape[1]
        self.v_pos[i] = 0.0
        self.v_upos[i] = 0.0
        self.v_rate[i] = self.bend_ratio[ch]
        self.v_passes[i] = 0
        self.v_tail_k[i] = self.pool.tail_k[slot]
        self.v_tail_from[i] = self.pool.tail_from[slot] if self.v_tail_k[i] > 0 else NO_TAIL
        self.v_rel_base[i] = slot * self.pool.release.shape[1]
        self.v_rel_pos[i] = 0.0
        self.v_rel_rate[i] = 0.0
        self.v_rel_end[i] = self.pool.release_end[slot]
        self.v_gain[i] = gain
        self.v_env[i] = 0.0
        self.v_env_rate[i] = attack_rate
        self.v_state[i] = HELD
        self.v_chan[i] = ch
        self.v_pitch[i] = pitch
        self.v_age[i] = self._age
        self._plan_jump(i)
        self.v_primary[i] = primary
        self.v_side[i] = side
        self.v_paired[i] = 1.0 if paired else 0.0
        self.v_pan[i] = pan
        self.v_touch[i] = 0.0
        self.v_left[i], self.v_right[i] = self._voice_gains(i)  # no glide at a note's start: the attack fades in
        self.pool.users[slot] += 1
        return i

    def _release(self, i: int) -> None:
        self.v_state[i] = RELEASED
        if self.fixed_release or self.v_rel_end[i] == 0:
            self.v_env_rate[i] = -self.release_rate
        else:  # along the note's own release curve, from the level the voice has now
            self.v_rel_rate[i] = self.curve_rate
            if 0.0 < self.v_env_rate[i] < self.attack_rate:  # let go while a slow program fades it in: no further
                self.v_env_rate[i] = 0.0

    def _kill_note(self, i: int) -> None:
        """Fade out voice i and the other voice of its note."""
        self._kill_where(self._note_voices(i, KILLED))

    def _free(self, i: int) -> None:
        self.pool.users[self.v_slot[i]] -= 1
        last = self.n - 1
        if i != last:
            for arr in self._voice_arrays:
                arr[i] = arr[last]
        self.n = last

    def _start_pending(self) -> None:
        k = 0
        clock = int(self.pool.clock[0])
        while k < self.n_pending:
            ch, pitch = int(self.p_chan[k]), int(self.p_pitch[k])
            i = self._start_note(ch, pitch, int(self.p_vel[k]))
            if i == -1:
                k += 1
                continue
            if i == -2:
                self.dropped_notes += 1
            if self.p_released[k] and i >= 0:  # its key went up while it waited
                self._let_go(ch, self._note_voices(i))
            self.max_wait_blocks = max(self.max_wait_blocks, clock - int(self.p_since[k]) + 1)
            self._drop_pending(k)

    # -- audio -----------------------------------------------------------------------------------------------
    def process(self, frames: int) -> np.ndarray:
        """Apply queued events, mix every voice for `frames` samples and return the stereo block, [frames, 2]
        (a view of `mix`)."""
        while self.events:
            self.handle(*self.events.popleft())
        if self.n_pending:
            self._start_pending()
        mix2 = self._mix2.reshape(-1)[:2 * frames].reshape(2, frames)
        n = self.n
        if n == 0:
            mix2.fill(0.0)
            self._controls_moved = self._settling = False
        else:
            self._mix_voices(n, frames, mix2)
        self._limit(mix2, frames)
        mix = self.mix[:frames]
        np.copyto(mix, mix2.T)
        self.pool.clock[0] += 1
        self.last_block = frames
        return mix

    def _mix_voices(self, n: int, b: int, mix2: np.ndarray) -> None:
        # Every per-sample operation is on contiguous [n, b] views of one type; per-voice values are spread over the
        # block with copyto first (numpy allocates a buffer for a broadcast, strided or mixed-type operation).
        nb = n * b
        idx, tmp, fl, w = (self._idx[:nb].reshape(n, b), self._tmp[:nb].reshape(n, b),
                           self._floor[:nb].reshape(n, b), self._w[:nb].reshape(n, b))
        i0, i1, mask = self._i0[:nb].reshape(n, b), self._i1[:nb].reshape(n, b), self._mask[:nb].reshape(n, b)
        s0, s1, f32, env = (self._s0[:nb].reshape(n, b), self._s1[:nb].reshape(n, b), self._f32[:nb].reshape(n, b),
                            self._env[:nb].reshape(n, b))
        if b != self._ramp_b:  # sample index 0..b-1 and 1..b in every row, for this block size
            np.copyto(self._ramps[:len(self.v_slot) * b].reshape(-1, b), self._ramp[None, :b])
            np.copyto(self._ramps1[:len(self.v_slot) * b].reshape(-1, b), self._ramp1[None, :b])
            self._ramp_b = b
        ramp, ramp1 = self._ramps[:nb].reshape(n, b), self._ramps1[:nb].reshape(n, b)
        np.copyto(w, self.v_rate[:n, None])
        np.multiply(ramp, w, out=idx)
        np.copyto(w, self.v_pos[:n, None])
        np.add(idx, w, out=idx)
        vt = self._vtmp[:n]
        np.multiply(self.v_rate[:n], b, out=vt)
        np.add(vt, self.v_pos[:n], out=vt)
        due = self._vb[0, :n]
        np.greater_equal(vt, self.v_jump_at[:n], out=due)
        jumping = np.count_nonzero(due)  # voices that reach their next jump in this block
        if 0 < jumping <= JUMP_ROWS:  # usually a note's one or two voices: their rows alone
            for i in np.flatnonzero(due):
                self._jump_row(int(i), idx[i], tmp[i], mask[i])
        elif jumping:
            np.copyto(w, self.v_jump_at[:n, None])
            np.greater_equal(idx, w, out=mask)
            np.subtract(idx, w, out=tmp)
            np.copyto(w, self.v_jump_mod[:n, None])
            np.remainder(tmp, w, out=tmp)
            np.copyto(w, self.v_jump_to[:n, None])
            np.add(tmp, w, out=tmp)
            np.copyto(idx, tmp, where=mask)
            np.copyto(w, self.v_then_at[:n, None])  # and out of the segment it jumped into, if in this block too
            np.greater_equal(idx, w, out=mask)
            np.subtract(idx, w, out=tmp)
            np.copyto(w, self.v_then_to[:n, None])
            np.add(tmp, w, out=tmp)
            np.copyto(idx, tmp, where=mask)
        np.floor(idx, out=fl)
        np.subtract(idx, fl, out=tmp)  # tmp = fractional position
        np.copyto(i0, fl, casting="unsafe")
        np.copyto(i1, self.v_base[:n, None])
        np.add(i0, i1, out=i0)
        np.take(self.pool.flat, i0, out=s0, mode="clip")  # indices are in range; "clip" takes no buffer
        np.add(i0, 1, out=i0)
        np.take(self.pool.flat, i0, out=s1, mode="clip")
        np.subtract(s1, s0, out=s1)
        np.copyto(f32, tmp, casting="same_kind")
        np.multiply(s1, f32, out=s1)
        np.add(s0, s1, out=s0)
        # Envelope: the linear attack/fade ramp, clipped to 0-1, times the release curve and tail decay (their
        # values at the block's ends, linear between) and the voice's gain.
        np.copyto(f32, self.v_env_rate[:n, None])
        np.multiply(ramp1, f32, out=env)
        np.copyto(f32, self.v_env[:n, None])
        np.add(env, f32, out=env)
        np.maximum(env, 0.0, out=env)
        np.minimum(env, 1.0, out=env)
        gain = self._block_gain(n, b)
        if gain is not None:
            m = self._vtmp32[:, :n]
            np.copyto(m, gain, casting="same_kind")
            np.multiply(m, self.v_gain[:n], out=m)
            np.subtract(m[1], m[0], out=m[1])
            np.multiply(m[1], 1.0 / b, out=m[1])
            np.copyto(s1, m[1][:, None])
            np.multiply(ramp1, s1, out=f32)
            np.copyto(s1, m[0][:, None])
            np.add(f32, s1, out=f32)
        else:  # no release curve or tail decay under way: the voices' gains alone
            np.copyto(f32, self.v_gain[:n, None])
        np.multiply(env, f32, out=env)
        np.multiply(s0, env, out=s0)
        self._pan_mix(n, b, s0, mix2)
        self._advance(n, b)

    def _jump_row(self, i: int, row: np.ndarray, tmp: np.ndarray, mask: np.ndarray) -> None:
        """Voice i's read positions over the block (`row`), moved past its jump as _mix_voices moves every row when
        many voices jump at once; `tmp` and `mask` are the row's scratch."""
        at = self.v_jump_at[i]
        np.greater_equal(row, at, out=mask)
        np.subtract(row, at, out=tmp)
        np.remainder(tmp, self.v_jump_mod[i], out=tmp)
        np.add(tmp, self.v_jump_to[i], out=tmp)
        np.copyto(row, tmp, where=mask)
        then = self.v_then_at[i]
        if then != NO_JUMP:  # into a segment: and out of it, if that is in this block too
            np.greater_equal(row, then, out=mask)
            np.subtract(row, then, out=tmp)
            np.add(tmp, self.v_then_to[i], out=tmp)
            np.copyto(row, tmp, where=mask)

    def _advance(self, n: int, b: int) -> None:
        """Move each voice on by the block: position (wrapped into its loop), release curve and envelope; free
        the voices that have ended."""
        vt = self._vtmp[:n]
        np.multiply(self.v_rate[:n], b, out=vt)
        np.add(self.v_pos[:n], vt, out=self.v_pos[:n])
        np.add(self.v_upos[:n], vt, out=self.v_upos[:n])
        np.multiply(self.v_rel_rate[:n], b, out=vt)
        np.add(self.v_rel_pos[:n], vt, out=self.v_rel_pos[:n])
        on, t = self._vb[0, :n], self._vb[1, :n]
        np.greater_equal(self.v_pos[:n], self.v_jump_at[:n], out=on)
        if on.any():
            for i in np.flatnonzero(on):
                self._jump(int(i))
        np.multiply(self.v_env_rate[:n], b, out=vt)
        np.add(self.v_env[:n], vt, out=vt)
        np.clip(vt, 0.0, 1.0, out=vt)
        self.v_env[:n] = vt
        np.less(self.v_env_rate[:n], 0.0, out=on)  # ended: faded out, or at the end of its release curve
        np.less_equal(self.v_env[:n], 0.0, out=t)
        np.logical_and(on, t, out=on)
        u = self._vb[2, :n]
        np.greater(self.v_rel_rate[:n], 0.0, out=t)
        np.greater_equal(self.v_rel_pos[:n], self.v_rel_end[:n], out=u)
        np.logical_and(t, u, out=t)
        np.logical_or(on, t, out=on)
        if on.any():
            for i in np.flatnonzero(on)[::-1]:  # from the last: _free moves the last voice into the gap
                self._free(int(i))

    def _jump(self, i: int) -> None:
        """Voice i has passed its jump point: move it on as _mix_voices read it, and plan what comes next."""
        pos = self.v_jump_to[i] + (self.v_pos[i] - self.v_jump_at[i]) % self.v_jump_mod[i]
        if self.v_then_at[i] == NO_JUMP:
            self.v_pos[i] = pos
            self._plan_jump(i)
        elif pos >= self.v_then_at[i]:
            self.v_pos[i] = pos - self.v_then_at[i] + self.v_then_to[i]
            self._plan_jump(i)
        else:  # inside the segment: its end is the next jump
            self.v_pos[i] = pos
            self.v_jump_at[i], self.v_jump_to[i], self.v_jump_mod[i] = self.v_then_at[i], self.v_then_to[i], NO_JUMP
            self.v_then_at[i] = self.v_then_to[i] = NO_JUMP

    def _plan_jump(self, i: int) -> None:
        """Pick voice i's way back into its loop at the next pass: one of the slot's jump segments (an exit and a
        landing) at random, or the wrap when the slot has none. Alike for every voice of the note (same age, same
        passes), so they keep their phase relation."""
        slot, pool = self.v_slot[i], self.pool
        jumps = int(pool.jumps[slot])
        if jumps == 0:
            self.v_jump_at[i] = pool.loop_start[slot] + pool.loop_len[slot]
            self.v_jump_to[i], self.v_jump_mod[i] = pool.loop_start[slot], pool.loop_len[slot]
            self.v_then_at[i] = self.v_then_to[i] = NO_JUMP
            return
        h = (int(self.v_age[i]) * 0x9E3779B1 + int(self.v_passes[i]) * 0x85EBCA77) & 0xFFFFFFFF
        h = ((h ^ (h >> 15)) * 0x2C1B3C6D) & 0xFFFFFFFF
        k = (h ^ (h >> 12)) % jumps
        self.v_passes[i] += 1
        segment = pool.layout.segment_at(k)
        self.v_jump_at[i], self.v_jump_to[i] = pool.jump_from[slot, k], segment
        self.v_jump_mod[i] = NO_JUMP
        self.v_then_at[i] = segment + pool.jump_len[slot]
        self.v_then_to[i] = pool.jump_to[slot, k]

    def _pan_mix(self, n: int, b: int, s0: np.ndarray, mix2: np.ndarray) -> None:
        """Sum the voices [n, b] into the planar stereo block [2, b] with each voice's channel gains (volume,
        expression, morph weight, pan), gliding from the last block's to the smoothed targets linearly over the
        block: one [2, n] × [n, b] product, two while a controller moves."""
        p0 = self._lr0.reshape(-1)[:2 * n].reshape(2, n)
        np.copyto(p0[0], self.v_left[:n])
        np.copyto(p0[1], self.v_right[:n])
        np.dot(p0, s0, out=mix2)
        if not (self._controls_moved or self._settling):
            return
        self._controls_moved = False
        p1 = self._lr1.reshape(-1)[:2 * n].reshape(2, n)
        self._channel_targets(0, n, p1)
        d = self._lrd.reshape(-1)[:2 * n].reshape(2, n)
        np.subtract(p0, p1, out=d)
        np.multiply(d, self.smooth_k ** b, out=d)  # one-pole towards the target, evaluated at the block's end
        gap = self._lrg.reshape(-1)[:2 * n].reshape(2, n)
        np.abs(d, out=gap)
        self._settling = bool(gap.max() > 1e-5)
        if self._settling:
            np.add(p1, d, out=p1)
        np.copyto(self.v_left[:n], p1[0])
        np.copyto(self.v_right[:n], p1[1])
        np.subtract(p1, p0, out=d)
        ramp = self._mix2b.reshape(-1)[:2 * b].reshape(2, b)
        np.dot(d, s0, out=ramp)
        frac = self._frac2.reshape(-1)[:2 * b].reshape(2, b)
        np.multiply(self._ramp1[:b], 1.0 / b, out=frac[0])
        np.copyto(frac[1], frac[0])
        np.multiply(ramp, frac, out=ramp)
        np.add(mix2, ramp, out=mix2)

    def _channel_targets(self, lo: int, hi: int, out: np.ndarray) -> None:
        """out [2, hi - lo] (float32): voices lo…hi-1's (left, right) gains from their channels' controllers now,
        without allocating: CC7 × CC11 on the GM curve (unity at volume 100, expression 127), times the morph
        weight (1 - m on the note's own lane when it is paired, m on the morph lane), panned at constant power
        by CC10 plus the key's spread (both gains 1 at the centre)."""
        c = self.v_chan[lo:hi]
        amp, m, w, t = self._cv[0, lo:hi], self._cv[1, lo:hi], self._cv[2, lo:hi], self._cv[3, lo:hi]
        np.take(self.volume, c, out=amp)
        np.multiply(amp, 1.0 / VOLUME_REF, out=amp)
        np.square(amp, out=amp)
        np.take(self.expression, c, out=m)
        np.multiply(m, 1.0 / 127.0, out=m)
        np.square(m, out=m)
        np.multiply(amp, m, out=amp)
        np.take(self.modulation, c, out=m)  # morph amount: wheel + channel pressure + the key's aftertouch
        np.take(self.pressure, c, out=t)
        np.add(m, t, out=m)
        np.multiply(m, 1.0 / 127.0, out=m)
        np.add(m, self.v_touch[lo:hi], out=m)
        np.clip(m, 0.0, 1.0, out=m)
        np.multiply(m, self.v_paired[lo:hi], out=w)  # own lane: 1 - m where the note is paired, else 1
        np.subtract(1.0, w, out=w)
        np.subtract(m, w, out=t)  # morph lane: m
        np.multiply(t, self.v_side[lo:hi], out=t)
        np.add(w, t, out=w)
        np.multiply(amp, w, out=amp)
        np.take(self.pan, c, out=t)  # pan: CC10 plus the key's spread, constant power
        np.subtract(t, 64.0, out=t)
        np.multiply(t, 1.0 / 63.0, out=t)
        np.maximum(t, -1.0, out=t)
        np.add(t, self.v_pan[lo:hi], out=t)
        np.clip(t, -1.0, 1.0, out=t)
        np.add(t, 1.0, out=t)
        np.multiply(t, math.pi / 4, out=t)
        np.cos(t, out=m)
        np.multiply(m, amp, out=m)
        np.multiply(m, SQRT2, out=m)
        np.copyto(out[0], m, casting="same_kind")
        np.sin(t, out=m)
        np.multiply(m, amp, out=m)
        np.multiply(m, SQRT2, out=m)
        np.copyto(out[1], m, casting="same_kind")

    def _voice_gains(self, i: int) -> tuple[float, float]:
        """Voice i's (left, right) gains as _channel_targets gives them, in plain floats: a note-on starts one or two
        voices, and the vectorised form's thirty numpy calls on one element cost 40 µs a voice in the callback."""
        c = int(self.v_chan[i])
        amp = (float(self.volume[c]) * (1.0 / VOLUME_REF)) ** 2 * (float(self.expression[c]) * (1.0 / 127.0)) ** 2
        m = (float(self.modulation[c]) + float(self.pressure[c])) * (1.0 / 127.0) + float(self.v_touch[i])
        m = min(max(m, 0.0), 1.0)
        w = 1.0 - m * float(self.v_paired[i])
        amp *= w + (m - w) * float(self.v_side[i])
        t = max((float(self.pan[c]) - 64.0) * (1.0 / 63.0), -1.0) + float(self.v_pan[i])
        t = (min(max(t, -1.0), 1.0) + 1.0) * (math.pi / 4)
        return math.cos(t) * amp * SQRT2, math.sin(t) * amp * SQRT2

    def _block_gain(self, n: int, b: int) -> np.ndarray | None:
        """[2, n]: each voice's release-curve gain times its tail decay at the first and the last sample of the
        block; None while no voice is releasing along a curve or past the start of its tail decay (all 1)."""
        q, qf, qi, c0, c1, m = (self._q[:, :n], self._qf[:, :n], self._qi[:, :n], self._c0[:, :n], self._c1[:, :n],
                                self._m[:, :n])
        t = self._t[:, :n]  # samples past the start of the tail decay
        np.subtract(self.v_upos[:n], self.v_tail_from[:n], out=t[0])
        np.multiply(self.v_rate[:n], b, out=t[1])
        np.add(t[1], t[0], out=t[1])
        tail = (t[1] > 0).any()
        curve = self.v_rel_rate[:n].any()
        if not (tail or curve):
            return None
        if curve:
            np.copyto(q[0], self.v_rel_pos[:n])
            np.multiply(self.v_rel_rate[:n], b, out=q[1])
            np.add(q[1], q[0], out=q[1])
            np.minimum(q, self.v_rel_end[:n], out=q)
            np.floor(q, out=qf)
            np.subtract(q, qf, out=q)  # q = fraction between curve points
            np.copyto(qi, qf, casting="unsafe")
            np.add(qi, self.v_rel_base[:n], out=qi)
            flat = self.pool.release_flat
            np.take(flat, qi, out=c0, mode="clip")
            np.add(qi, 1, out=qi)
            np.take(flat, qi, out=c1, mode="clip")  # at a curve's end the fraction is 0: c1 does not count
            np.subtract(c1, c0, out=c1)
            np.multiply(q, c1, out=m)
            np.add(m, c0, out=m)
        else:
            m.fill(1.0)
        if tail:
            np.maximum(t, 0.0, out=t)
            np.multiply(t, self.v_tail_k[:n], out=t)
            np.negative(t, out=t)
            np.exp(t, out=t)
            np.multiply(m, t, out=m)
        return m

    def _limit(self, mix2: np.ndarray, b: int) -> None:
        """Master gain and a peak limiter on the planar stereo block (both sides alike): gain falls at once to keep
        the block under the ceiling, recovers in ~0.2 s; the ramp between blocks is clipped at the ceiling where
        it would overshoot."""
        np.multiply(mix2, self.gain, out=mix2)
        a = self._abuf.reshape(-1)[:2 * b].reshape(2, b)
        np.abs(mix2, out=a)
        peak = float(a.max())
        if not math.isfinite(peak):  # NaN or Inf would reach the device and stick in limit_gain: play silence
            mix2.fill(0.0)
            self.nonfinite_blocks += 1
            return
        target = 1.0 if peak <= self.limit_ceiling else self.limit_ceiling / peak
        g0 = self.limit_gain
        if target < g0:
            g1 = target
            self.limited_blocks += 1
        else:
            g1 = min(target, g0 + (1.0 - g0) * (1.0 - math.exp(-b / (0.2 * self.rate))))
        if g0 == 1.0 and g1 == 1.0:
            return
        g = self._gbuf[:b]
        np.multiply(self._ramp1[:b], (g1 - g0) / b, out=g)
        np.add(g, g0, out=g)
        np.multiply(mix2[0], g, out=mix2[0])
        np.multiply(mix2[1], g, out=mix2[1])
        np.clip(mix2, -self.limit_ceiling, self.limit_ceiling, out=mix2)
        self.limit_gain = g1

    def reset(self) -> None:
        """Silence at once: every voice and waiting note dropped (the audio side's last resort after failed blocks)."""
        for i in range(self.n):
            self.pool.users[self.v_slot[i]] -= 1
        np.maximum(self.pool.users, 0, out=self.pool.users)
        self.n = 0
        self.n_pending = 0
        self.limit_gain = 1.0

    @property
    def sounding(self) -> int:
        """Notes sounding (a note blending two layers counts once)."""
        return int(np.count_nonzero((self.v_state[:self.n] != KILLED) & self.v_primary[:self.n]))

    def keys_held(self) -> list[int]:
        return [int(self.v_pitch[i]) for i in range(self.n) if self.v_state[i] == HELD and self.v_primary[i]]

