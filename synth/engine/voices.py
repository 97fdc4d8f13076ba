"""Voices: the polyphonic player that turns MIDI events and the note bank into a mono block of samples.

`process()` is what the audio callback runs. It allocates no sample buffers (every array is made in
`__init__` and used through views), takes no lock, and its work grows only with voices × block size: all voices
are mixed at once by vectorised gathers from the shared slot pool. Events reach it through `events`, a bounded
deque that other threads append to (append/popleft are atomic under the GIL and never block).

Per voice: linear interpolation at the pitch-bend rate, a held note loops its stored loop region, and a linear
envelope makes every start and stop click-free (attack, release, a 5 ms fade when a voice is stolen or retriggered).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from synth.engine.bank import BankRenderer

HELD, SUSTAINED, RELEASED, KILLED = 0, 1, 2, 3
EXTRA_VOICES = 16  # room for stolen voices to fade out while their replacements start
MAX_PENDING = 64


def velocity_gain(velocity: int) -> float:
    """The General MIDI / DLS velocity curve: 40·log10(v/127) dB, i.e. (v/127)²."""
    return (max(0, min(velocity, 127)) / 127.0) ** 2


class Voices:
    """Voice allocation, MIDI handling and mixing for one instrument (16 channels, one bank lane per channel)."""

    def __init__(self, renderer: BankRenderer, max_block: int = 1024, polyphony: int = 32,
                 attack: float = 0.003, release: float = 0.3, bend_range: float = 2.0, gain: float = 0.5,
                 channel: int | None = None) -> None:
        self.renderer = renderer
        self.pool = renderer.pool
        self.lanes = renderer.lanes
        self.rate = renderer.layout.rate
        self.max_block = max_block
        self.polyphony = polyphony
        self.channel = channel  # None = omni
        self.gain = gain
        self.attack_rate = 1.0 / max(1.0, attack * self.rate)
        self.release_rate = 1.0 / max(1.0, release * self.rate)
        self.kill_rate = 1.0 / (0.005 * self.rate)
        self.events: deque[tuple[int, int, int]] = deque(maxlen=4096)

        v = polyphony + EXTRA_VOICES
        self.n = 0
        self.v_slot = np.zeros(v, dtype=np.int64)
        self.v_base = np.zeros(v, dtype=np.int64)
        self.v_pos = np.zeros(v, dtype=np.float64)
        self.v_rate = np.ones(v, dtype=np.float64)
        self.v_loop_start = np.zeros(v, dtype=np.float64)
        self.v_loop_end = np.zeros(v, dtype=np.float64)
        self.v_loop_len = np.ones(v, dtype=np.float64)
        self.v_gain = np.zeros(v, dtype=np.float32)
        self.v_env = np.zeros(v, dtype=np.float32)
        self.v_env_rate = np.zeros(v, dtype=np.float32)
        self.v_state = np.zeros(v, dtype=np.int8)
        self.v_chan = np.zeros(v, dtype=np.int8)
        self.v_pitch = np.zeros(v, dtype=np.int16)
        self.v_age = np.zeros(v, dtype=np.int64)
        self._voice_arrays = (self.v_slot, self.v_base, self.v_pos, self.v_rate, self.v_loop_start, self.v_loop_end,
                              self.v_loop_len, self.v_gain, self.v_env, self.v_env_rate, self.v_state, self.v_chan,
                              self.v_pitch, self.v_age)
        self._age = 0

        shape = (v, max_block)
        self._idx = np.zeros(shape, dtype=np.float64)
        self._tmp = np.zeros(shape, dtype=np.float64)
        self._floor = np.zeros(shape, dtype=np.float64)
        self._i0 = np.zeros(shape, dtype=np.int64)
        self._mask = np.zeros(shape, dtype=bool)
        self._s0 = np.zeros(shape, dtype=np.float32)
        self._s1 = np.zeros(shape, dtype=np.float32)
        self._env = np.zeros(shape, dtype=np.float32)
        self._vtmp = np.zeros(v, dtype=np.float64)
        self._ramp = np.arange(max_block, dtype=np.float64)
        self._ramp1 = np.arange(1, max_block + 1, dtype=np.float32)
        self._gbuf = np.zeros(max_block, dtype=np.float32)
        self.mix = np.zeros(max_block, dtype=np.float32)
        for scratch in (self._idx, self._tmp, self._floor, self._i0, self._mask, self._s0, self._s1, self._env):
            scratch.fill(0)  # np.zeros maps pages lazily: touch them now, not in the callback's first blocks

        self.bend_ratio = np.ones(16, dtype=np.float64)
        self.bend_range = np.full(16, bend_range, dtype=np.float64)
        self.bend_value = np.zeros(16, dtype=np.float64)
        self.sustain = np.zeros(16, dtype=bool)
        self.rpn = np.full((16, 2), 127, dtype=np.int16)
        self.lane_of = np.zeros(16, dtype=np.int64)  # which bank lane each MIDI channel plays

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
        if self.channel is not None and ch != self.channel:
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

    def _control(self, ch: int, cc: int, value: int) -> None:
        if cc == 64:
            down = value >= 64
            if self.sustain[ch] and not down:
                for i in range(self.n):
                    if self.v_chan[i] == ch and self.v_state[i] == SUSTAINED:
                        self._release(i)
            self.sustain[ch] = down
        elif cc == 123:  # all notes off: as if every key were let go
            for i in range(self.n):
                if self.v_chan[i] == ch and self.v_state[i] == HELD:
                    if self.sustain[ch]:
                        self.v_state[i] = SUSTAINED
                    else:
                        self._release(i)
            self._forget_pending(ch)
            self.lanes[self.lane_of[ch]].held[:] = 0
        elif cc == 120:  # all sound off: silence now (fast fade)
            for i in range(self.n):
                if self.v_chan[i] == ch:
                    self._kill(i)
            self._forget_pending(ch)
            self.lanes[self.lane_of[ch]].held[:] = 0
        elif cc == 121:  # reset all controllers
            self.bend_value[ch] = 0
            self._apply_bend(ch)
            self._control(ch, 64, 0)
        elif cc == 101:
            self.rpn[ch, 0] = value
        elif cc == 100:
            self.rpn[ch, 1] = value
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
        for i in range(self.n):
            if self.v_chan[i] == ch:
                self.v_rate[i] = ratio

    def note_on(self, ch: int, pitch: int, velocity: int) -> None:
        lane = self.lanes[self.lane_of[ch]]
        for i in range(self.n):  # retrigger: a sounding note of the same key fades out quickly
            if self.v_chan[i] == ch and self.v_pitch[i] == pitch and self.v_state[i] != KILLED:
                self._kill(i)
        clock = int(self.pool.clock[0]) + 1
        lane.held[pitch] += 1
        lane.last_on[pitch] = clock
        slot = int(lane.slot_for[pitch])
        if slot >= 0:
            self._start(ch, pitch, velocity, slot)
            return
        if self.n_pending == MAX_PENDING:
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
        for i in range(self.n):
            if self.v_chan[i] == ch and self.v_pitch[i] == pitch and self.v_state[i] == HELD:
                if self.sustain[ch]:
                    self.v_state[i] = SUSTAINED
                else:
                    self._release(i)
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

    def _start(self, ch: int, pitch: int, velocity: int, slot: int) -> int:
        sounding = 0
        for i in range(self.n):
            if self.v_state[i] != KILLED:
                sounding += 1
        if sounding >= self.polyphony:  # steal: the oldest released voice, else the oldest voice
            best, best_key = -1, None
            for i in range(self.n):
                if self.v_state[i] == KILLED:
                    continue
                key = (self.v_state[i] != RELEASED, self.v_age[i])
                if best_key is None or key < best_key:
                    best, best_key = i, key
            self._kill(best)
            self.stolen += 1
        if self.n == len(self.v_slot):  # no room even for fading voices: drop the oldest fading one outright
            oldest = -1
            for i in range(self.n):
                if self.v_state[i] == KILLED and (oldest < 0 or self.v_age[i] < self.v_age[oldest]):
                    oldest = i
            self._free(oldest)
        i = self.n
        self.n += 1
        self.v_slot[i] = slot
        self.v_base[i] = slot * self.pool.data.shape[1]
        self.v_pos[i] = 0.0
        self.v_rate[i] = self.bend_ratio[ch]
        self.v_loop_start[i] = self.pool.loop_start[slot]
        self.v_loop_len[i] = self.pool.loop_len[slot]
        self.v_loop_end[i] = self.pool.loop_start[slot] + self.pool.loop_len[slot]
        self.v_gain[i] = velocity_gain(velocity)
        self.v_env[i] = 0.0
        self.v_env_rate[i] = self.attack_rate
        self.v_state[i] = HELD
        self.v_chan[i] = ch
        self.v_pitch[i] = pitch
        self._age += 1
        self.v_age[i] = self._age
        self.pool.users[slot] += 1
        return i

    def _release(self, i: int) -> None:
        self.v_state[i] = RELEASED
        self.v_env_rate[i] = -self.release_rate

    def _kill(self, i: int) -> None:
        self.v_state[i] = KILLED
        self.v_env_rate[i] = -self.kill_rate

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
            slot = int(self.lanes[self.lane_of[ch]].slot_for[pitch])
            if slot < 0:
                k += 1
                continue
            i = self._start(ch, pitch, int(self.p_vel[k]), slot)
            if self.p_released[k]:
                if self.sustain[ch]:
                    self.v_state[i] = SUSTAINED
                else:
                    self._release(i)
            self.max_wait_blocks = max(self.max_wait_blocks, clock - int(self.p_since[k]) + 1)
            self._drop_pending(k)

    # -- audio -----------------------------------------------------------------------------------------------
    def process(self, frames: int) -> np.ndarray:
        """Apply queued events, mix every voice for `frames` samples and return the mono block (a view of `mix`)."""
        while self.events:
            self.handle(*self.events.popleft())
        if self.n_pending:
            self._start_pending()
        mix = self.mix[:frames]
        n = self.n
        if n == 0:
            mix.fill(0.0)
        else:
            self._mix_voices(n, frames, mix)
        self._limit(mix, frames)
        self.pool.clock[0] += 1
        self.last_block = frames
        return mix

    def _mix_voices(self, n: int, b: int, mix: np.ndarray) -> None:
        idx, tmp, fl, i0 = self._idx[:n, :b], self._tmp[:n, :b], self._floor[:n, :b], self._i0[:n, :b]
        mask, s0, s1, env = self._mask[:n, :b], self._s0[:n, :b], self._s1[:n, :b], self._env[:n, :b]
        start, length = self.v_loop_start[:n, None], self.v_loop_len[:n, None]
        np.multiply(self.v_rate[:n, None], self._ramp[None, :b], out=idx)
        np.add(idx, self.v_pos[:n, None], out=idx)
        np.greater_equal(idx, self.v_loop_end[:n, None], out=mask)  # held notes loop their stored loop region
        np.subtract(idx, start, out=tmp)
        np.remainder(tmp, length, out=tmp)
        np.add(tmp, start, out=tmp)
        np.copyto(idx, tmp, where=mask)
        np.floor(idx, out=fl)
        np.subtract(idx, fl, out=tmp)  # tmp = fractional position
        np.copyto(i0, fl, casting="unsafe")
        np.add(i0, self.v_base[:n, None], out=i0)
        np.take(self.pool.flat, i0, out=s0)
        np.add(i0, 1, out=i0)
        np.take(self.pool.flat, i0, out=s1)
        np.subtract(s1, s0, out=s1)
        np.multiply(s1, tmp, out=s1, casting="same_kind")
        np.add(s0, s1, out=s0)
        np.multiply(self.v_env_rate[:n, None], self._ramp1[None, :b], out=env)
        np.add(env, self.v_env[:n, None], out=env)
        np.clip(env, 0.0, 1.0, out=env)
        np.multiply(env, self.v_gain[:n, None], out=env)
        np.multiply(s0, env, out=s0)
        np.sum(s0, axis=0, out=mix)
        # Advance each voice by the block: position (wrapped into its loop) and envelope.
        vt = self._vtmp[:n]
        np.multiply(self.v_rate[:n], b, out=vt)
        np.add(self.v_pos[:n], vt, out=self.v_pos[:n])
        pos = self.v_pos
        for i in range(n):
            if pos[i] >= self.v_loop_end[i]:
                pos[i] = self.v_loop_start[i] + (pos[i] - self.v_loop_start[i]) % self.v_loop_len[i]
        np.multiply(self.v_env_rate[:n], b, out=vt)
        np.add(self.v_env[:n], vt, out=vt)
        np.clip(vt, 0.0, 1.0, out=vt)
        self.v_env[:n] = vt
        i = n - 1
        while i >= 0:
            if self.v_env_rate[i] < 0 and self.v_env[i] <= 0.0:
                self._free(i)
            i -= 1

    def _limit(self, mix: np.ndarray, b: int) -> None:
        """Master gain and a peak limiter: gain falls at once to keep the block under the ceiling, recovers in ~0.2 s;
        the ramp between blocks is clipped at the ceiling where it would overshoot."""
        np.multiply(mix, self.gain, out=mix)
        g = self._gbuf[:b]
        np.abs(mix, out=g)
        peak = float(g.max())
        if not math.isfinite(peak):  # NaN or Inf would reach the device and stick in limit_gain: play silence
            mix.fill(0.0)
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
        np.multiply(self._ramp1[:b], (g1 - g0) / b, out=g)
        np.add(g, g0, out=g)
        np.multiply(mix, g, out=mix)
        np.clip(mix, -self.limit_ceiling, self.limit_ceiling, out=mix)
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
        return int(np.count_nonzero(self.v_state[:self.n] != KILLED))

    def keys_held(self) -> list[int]:
        return [int(self.v_pitch[i]) for i in range(self.n) if self.v_state[i] == HELD]

