"""The engine's note bank and voices, driven through the real ONNX loader with the analytic tone model."""
import os

import numpy as np
import pytest

from synth.engine.bank import BankRenderer, NoteLayout, prepare_loop, render_order
from synth.engine.render_worker import NICE
from synth.engine.voices import Voices, velocity_gain
from synth.runtime.model import NoteModel

RATE = 48000
BLOCK = 256


@pytest.fixture(scope="module")
def model(tone_model):
    return NoteModel(tone_model, provider="cpu")


def make_voices(model, z=None, polyphony=8, **kw):
    renderer = BankRenderer(model, RATE, polyphony=polyphony, match_loudness=False)
    renderer.set_timbre(np.zeros(model.info.z_dim, np.float32) if z is None else z)
    renderer.render_all()
    return Voices(renderer, max_block=BLOCK, polyphony=polyphony, **kw)


def run(voices, seconds):
    blocks = int(seconds * RATE / BLOCK)
    return np.concatenate([voices.process(BLOCK)[:, 0].copy() for _ in range(blocks)])  # centred: left = mono


def freq(x, lo=20.0, hi=5000.0):
    """Peak frequency of x by a zero-padded FFT with parabolic interpolation."""
    n = 1 << 18
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    band = (f > lo) & (f < hi)
    k = np.flatnonzero(band)[np.argmax(spec[band])]
    a, b, c = np.log(spec[k - 1:k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / n


def cents(f, pitch):
    return 1200 * np.log2(f / (440 * 2 ** ((pitch - 69) / 12)))


def test_render_order_puts_waiting_held_and_recent_keys_first():
    held, last, wanted = np.zeros(128, int), np.zeros(128, int), np.zeros(128, int)
    held[40], last[70], last[50], wanted[30] = 1, 5, 9, 3
    order = render_order(list(range(24, 85)), held, last, wanted)
    assert order[:4] == [30, 40, 50, 70]
    assert set(order[4:6]) <= {39, 41, 49, 51, 69, 71}


def test_loop_preparation_is_continuous():
    lay = NoteLayout.for_model(16000, 64000, 3.0, RATE)
    t = np.arange(lay.stored + 10) / RATE
    note = np.sin(2 * np.pi * 261.3 * t).astype(np.float32)
    end = prepare_loop(note, lay.loop_start, lay.loop_end, lay.xfade, search=RATE // 20)
    assert lay.loop_end - RATE // 20 <= end <= lay.loop_end
    looped = np.concatenate([note[:end], note[lay.loop_start:end],
                             note[lay.loop_start:end + 1]])
    step = np.abs(np.diff(looped)).max()
    assert step < 1.5 * np.abs(np.diff(note[:lay.loop_start])).max()


def test_bank_renders_every_pitch_at_the_output_rate(model):
    renderer = BankRenderer(model, RATE)
    renderer.set_timbre(np.zeros(8, np.float32))
    renderer.render_all()
    assert renderer.complete() and renderer.ready() == 61
    for pitch in (24, 60, 84):
        slot = renderer.lanes[0].slot_for[0, pitch]
        note = renderer.pool.data[slot, int(0.5 * RATE):int(1.5 * RATE)]
        assert abs(cents(freq(note), pitch)) < 5
    assert renderer.lanes[0].slot_for[0, 100] == -1  # outside the model's range: only on demand


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="process priorities are a POSIX call")
def test_render_worker_runs_niced_a_little_below_the_audio(model):
    own = os.getpriority(os.PRIO_PROCESS, 0)
    if own >= 19:
        pytest.skip("the tests run at the lowest priority already: nothing can be niced under them")
    renderer = BankRenderer(model, RATE, process=True)
    renderer.start()
    try:
        assert os.getpriority(os.PRIO_PROCESS, renderer._worker.process.pid) == min(own + NICE, 19) > own
    finally:
        renderer.stop()


def test_note_plays_its_pitch_and_velocity(model):
    v = make_voices(model)
    v.handle(0x90, 60, 127)
    loud = run(v, 0.5)
    v.handle(0x80, 60, 0)
    run(v, 0.5)
    v.handle(0x90, 60, 64)
    soft = run(v, 0.5)
    assert abs(cents(freq(loud[RATE // 10:]), 60)) < 5
    ratio = np.abs(soft[RATE // 10:]).max() / np.abs(loud[RATE // 10:]).max()
    assert ratio == pytest.approx(velocity_gain(64) / velocity_gain(127), rel=0.02)


def test_keys_outside_the_model_range_sound_transposed(model):
    v = make_voices(model)
    v.handle(0x90, 96, 100)  # model stops at 84: waits for a transposed render of 84
    assert v.n == 0 and v.n_pending == 1
    v.renderer.step()
    out = run(v, 0.4)
    assert v.waited_notes == 1 and v.n == 1
    assert abs(cents(freq(out[RATE // 10:], hi=8000), 96)) < 5


def test_release_fades_to_exact_silence_and_frees_the_voice(model):
    v = make_voices(model, release=0.2)
    v.handle(0x90, 57, 100)
    run(v, 0.3)
    v.handle(0x90, 57, 0)  # note-on with velocity 0 is a note-off
    out = run(v, 0.3)
    assert v.n == 0
    assert np.all(out[int(0.21 * RATE):] == 0)
    step = np.abs(np.diff(out)).max()
    assert step < 0.1  # no click at release


def test_start_has_no_click(model):
    v = make_voices(model)
    v.handle(0x90, 84, 127)
    out = run(v, 0.05)
    assert abs(out[0]) < 1e-3 and np.abs(np.diff(out[:200])).max() < 0.1


def test_long_hold_loops_without_discontinuity(model):
    v = make_voices(model, z=np.full(8, 2.0, np.float32))
    v.handle(0x90, 45, 127)
    out = run(v, 8.0)
    steady = out[RATE // 2:]
    assert np.abs(steady).min() >= 0 and np.abs(steady).max() > 0.05
    # The whole hold, across many loop wraps, never steps further than the tone itself does between samples.
    assert np.abs(np.diff(steady)).max() < 1.2 * np.abs(np.diff(out[RATE // 2:RATE])).max()
    # Level stays steady: 100 ms RMS windows within 1 dB of each other.
    rms = np.sqrt((steady[:len(steady) // 4800 * 4800].reshape(-1, 4800) ** 2).mean(1))
    assert 20 * np.log10(rms.max() / rms.min()) < 1.0


def test_sustain_pedal_holds_released_notes(model):
    v = make_voices(model, release=0.1)
    v.handle(0xB0, 64, 127)
    v.handle(0x90, 60, 100)
    run(v, 0.1)
    v.handle(0x80, 60, 0)
    held = run(v, 0.5)
    assert v.n == 1 and np.abs(held[-RATE // 10:]).max() > 0.05
    v.handle(0xB0, 64, 0)
    run(v, 0.2)
    assert v.n == 0


def test_voice_stealing_takes_released_voices_first_then_the_oldest(model):
    v = make_voices(model, polyphony=4)
    for p in (48, 50, 52, 53):
        v.handle(0x90, p, 100)
        run(v, 0.01)
    v.handle(0x80, 52, 0)
    v.handle(0x90, 55, 100)
    run(v, 0.02)
    assert sorted(v.keys_held()) == [48, 50, 53, 55]  # the released 52 went first
    v.handle(0x90, 57, 100)
    run(v, 0.02)
    assert sorted(v.keys_held()) == [50, 53, 55, 57]  # then the oldest, 48
    assert v.sounding == 4 and v.stolen == 2


def test_retrigger_replaces_the_sounding_note(model):
    v = make_voices(model)
    v.handle(0x90, 60, 100)
    run(v, 0.1)
    v.handle(0x90, 60, 100)
    run(v, 0.1)
    assert v.sounding == 1 and v.n == 1


def test_pitch_bend_and_rpn_bend_range(model):
    v = make_voices(model)
    v.handle(0xE0, 0x7F, 0x7F)  # full up, default ±2 semitones
    v.handle(0x90, 60, 100)
    out = run(v, 0.5)
    assert cents(freq(out[RATE // 10:]), 60) == pytest.approx(200 * 8191 / 8192, abs=3)
    for cc, val in ((101, 0), (100, 0), (6, 12), (38, 0)):  # RPN 0: bend range 12 semitones
        v.handle(0xB0, cc, val)
    out = run(v, 0.5)
    assert cents(freq(out[RATE // 10:]), 60) == pytest.approx(1200 * 8191 / 8192, abs=3)
    v.handle(0xE0, 0x00, 0x40)  # centre
    out = run(v, 0.5)
    assert abs(cents(freq(out[RATE // 10:]), 60)) < 3


def test_all_notes_off_and_all_sound_off(model):
    v = make_voices(model, release=0.1)
    for p in (60, 64, 67):
        v.handle(0x90, p, 100)
    run(v, 0.1)
    v.handle(0xB0, 123, 0)
    assert v.keys_held() == []
    run(v, 0.2)
    assert v.n == 0
    for p in (60, 64):
        v.handle(0x90, p, 100)
    run(v, 0.1)
    v.handle(0xB0, 120, 0)
    out = run(v, 0.02)
    assert v.n == 0 and np.all(out[int(0.006 * RATE):] == 0)


def test_limiter_keeps_a_dense_chord_under_full_scale(model):
    v = make_voices(model, polyphony=32, gain=1.0)
    for p in range(36, 84, 2):
        v.handle(0x90, p, 127)
    out = run(v, 1.0)
    assert np.abs(out).max() <= v.limit_ceiling and v.limited_blocks > 0


def test_channel_filter(model):
    v = make_voices(model, channel=1)
    v.handle(0x90, 60, 100)
    v.handle(0x91, 62, 100)
    run(v, 0.05)
    assert v.keys_held() == [62]


def test_timbre_change_keeps_playing_voices_on_their_bank(model):
    v = make_voices(model, z=np.full(8, -4.0, np.float32))
    renderer = v.renderer
    v.handle(0x90, 60, 100)
    run(v, 0.05)
    old_slot = int(v.v_slot[0])
    renderer.set_timbre(np.full(8, 4.0, np.float32))
    renderer.step()  # first batch of the new bank: held key first
    assert renderer.lanes[0].slot_for[0, 60] != old_slot
    renderer.render_all()
    assert v.v_slot[0] == old_slot and renderer.pool.users[old_slot] == 1
    v.handle(0x90, 64, 100)
    run(v, 0.05)
    assert v.v_slot[1] == renderer.lanes[0].banks[-1].slot_of[64]
    v.handle(0x80, 60, 0)
    run(v, 1.1)  # the tone model's own release lasts 1 s
    assert renderer.pool.users[old_slot] == 0
    renderer.pool.reclaim()
    assert old_slot in renderer.pool.free  # the old bank's slot is reusable once no voice plays it


def test_morphing_many_times_stays_within_the_pool(model):
    renderer = BankRenderer(model, RATE, polyphony=8)
    v = Voices(renderer, max_block=BLOCK, polyphony=8)
    rng = np.random.default_rng(1)
    for _ in range(6):
        renderer.set_timbre(rng.standard_normal(8).astype(np.float32))
        for _ in range(3):
            renderer.step()
            v.handle(0x90, int(rng.integers(40, 80)), 100)
            run(v, 0.02)
    renderer.render_all()
    live = {s for ln in renderer.lanes for b in ln.banks for s in b.slot_of.values()}
    assert len(live) + len(renderer.pool.free) + len(renderer.pool.retired) == renderer.pool.data.shape[0]
    assert renderer.complete()


def test_program_change_selects_a_preset_and_keeps_old_voices(model):
    from synth.engine.engine import Engine
    from synth.core.timbre import Preset

    presets = [Preset("A", np.full(8, -3.0, np.float32)), Preset("B", np.full(8, 3.0, np.float32))]
    engine = Engine(model, rate=RATE, block=BLOCK, presets=presets)
    engine.renderer.render_all()
    engine.note_on(60)
    engine.process(BLOCK)
    old_slot = int(engine.voices.v_slot[0])
    engine.send(0xC0, 1)
    assert engine.presets[engine.preset_index].name == "B" and np.all(engine.z == 3.0)
    engine.renderer.render_all()
    engine.note_on(62)
    engine.process(BLOCK)
    assert engine.voices.v_slot[0] == old_slot  # the sounding note keeps its timbre
    assert engine.voices.v_slot[1] == engine.renderer.lanes[0].banks[-1].slot_of[62]
    engine.send(0xC0, 2)  # wraps around the preset list
    assert engine.presets[engine.preset_index].name == "A"


def test_worker_process_renders_the_same_notes_as_in_process(model):
    z = np.linspace(-1, 1, 8).astype(np.float32)
    local = BankRenderer(model, RATE)
    local.set_timbre(z)
    local.render_all()
    remote = BankRenderer(model, RATE, process=True)
    remote.start()
    try:
        remote.set_timbre(z)
        assert remote.wait_complete(timeout=60), remote.error
        for pitch in (24, 60, 84):
            a = local.pool.data[local.lanes[0].slot_for[0, pitch]]
            b = remote.pool.data[remote.lanes[0].slot_for[0, pitch]]
            assert np.allclose(a, b, atol=1e-6)
    finally:
        remote.stop()


def test_a_flood_of_notes_never_exceeds_the_voice_pool(model):
    v = make_voices(model, polyphony=4)
    for k in range(40):  # far more note-ons in one block than polyphony + fading room
        v.handle(0x90, 40 + k % 30, 100)
    out = run(v, 0.05)
    assert v.sounding == 4 and v.n <= len(v.v_slot) and np.isfinite(out).all()
    assert sorted(v.keys_held()) == sorted(40 + k % 30 for k in range(36, 40))  # the newest four


def test_a_slow_program_fades_a_note_in_by_what_it_does_not_rise_by_itself(model):
    """A render's GM program that rises over 0.8 s, on a note that rises over 0.3 s by itself: the voice fades in
    over the other 0.5 s (a quarter of the level a quarter of the way); a program no slower than the note, at once."""
    voices = make_voices(model)
    slot = voices.renderer.lanes[0].slot_for[0, 60]
    assert voices.pool.rise[slot] < 0.02  # the test tone speaks at once
    voices.pool.rise[slot] = 0.3
    for rise, want in ((0.8, 20 * np.log10(0.25)), (0.2, 0.0)):
        voices.reset()
        voices.key_rise[0, 60] = rise
        voices.handle(0x90, 60, 100)
        x = run(voices, 0.6)
        quarter, steady = (10 * np.log10(np.mean(x[int(at * RATE) - 240:int(at * RATE) + 240] ** 2))
                           for at in (0.125, 0.55))
        assert quarter - steady == pytest.approx(want, abs=0.5), rise
        voices.handle(0x80, 60, 0)


def test_a_sustained_notes_loop_is_held_at_one_level_but_keeps_its_tremolo():
    """steady_loop: a 3 dB swell once a second is gone from the loop (a held note would repeat it), an 8 Hz
    tremolo stays, and the note before the loop is untouched."""
    from synth.engine.envelope import steady_loop

    t = np.arange(3 * RATE) / RATE
    swell_db, tremolo_db = 1.5 * np.sin(2 * np.pi * t), 1.0 * np.sin(2 * np.pi * 8 * t)
    note = (10 ** ((swell_db + tremolo_db) / 20) * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    before = note.copy()
    start, end = RATE, int(2.8 * RATE)
    steady_loop(note, RATE, start, end)

    def level_db(x, seconds):
        n = int(seconds * RATE)
        frames = x[:len(x) // n * n].reshape(-1, n).astype(np.float64)
        return 10 * np.log10(np.mean(frames ** 2, axis=1))

    assert np.ptp(level_db(note[start:end], 0.25)) < 0.3  # no swell: 0.25 s is two periods of the tremolo
    assert np.ptp(level_db(before[start:end], 0.25)) > 1.5
    assert np.ptp(level_db(note[start:end], 1 / 64)) > 1.0  # the tremolo, seen in 16 ms frames
    np.testing.assert_array_equal(note[:start], before[:start])


def test_a_note_let_go_at_once_still_sounds(model):
    """A note whose off comes with its on (a zero-length MIDI note, or a key let go before it was rendered) plays its
    attack under the release; the stopped fade-in is for a slow GM program only."""
    voices = make_voices(model)
    voices.handle(0x90, 60, 100)
    voices.handle(0x80, 60, 0)
    x = run(voices, 0.2)
    assert np.abs(x).max() > 0.05
