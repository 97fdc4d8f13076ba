"""Property-based (hypothesis): random MIDI byte streams through the real parser and the real engine, mixed by
the real voices into an output buffer as the audio callback does: nothing raises, and every sample that reaches
the buffer is finite and within full scale, and the voices' bookkeeping (notes, keys, pedal, polyphony, slot users)
stays consistent. The bank holds every MIDI key of the analytic tone model."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from synth.engine.engine import Engine
from synth.engine.midi_bytes import parse
from synth.engine.voices import HELD, KILLED, SUSTAINED, Voices
from synth.runtime.model import NoteModel

MAX_BLOCK = 1024


@pytest.fixture(scope="module")
def engine(tone_model):
    engine = Engine(NoteModel(tone_model, provider="cpu"), rate=48000, block=128, polyphony=8, render_process=False)
    engine.renderer.render_notes(0, [(p, 127) for p in range(128)])  # every key has a slot: transposed notes too
    engine.renderer.set_timbre(np.ones(8, np.float32), 1)
    engine.renderer.render_notes(1, [(p, 127) for p in range(48, 73)])  # the morph lane has some keys, not all
    return engine


def fresh_voices(engine: Engine) -> None:
    """Each example starts from a quiet instrument (so a failure replays the same way)."""
    for lane in engine.renderer.lanes:
        lane.held[:] = 0
        lane.wanted[:] = 0
        lane.last_on[:] = 0
    engine.renderer.pool.users[:] = 0
    engine.voices = Voices(engine.renderer, max_block=MAX_BLOCK, polyphony=8)
    engine.voices.morph_lane_of[:] = 1  # lane 1 (the morph target) may hold notes or not: both must be safe


channel_message = st.builds(
    lambda kind, ch, d1, d2: [kind | ch, d1, d2][: 2 if kind in (0xC0, 0xD0) else 3],
    st.sampled_from([0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0]), st.integers(0, 15), st.integers(0, 127),
    st.integers(0, 127))
controllers = st.sampled_from([  # the controllers the voices act on, at their extremes
    [0xB0, 101, 0, 0xB0, 100, 0, 0xB0, 6, 127, 0xB0, 38, 99],  # bend range 127.99 semitones
    [0xE0, 127, 127], [0xE0, 0, 0], [0xB0, 64, 127], [0xB0, 64, 0], [0xB0, 123, 0], [0xB0, 120, 0],
    [0xB0, 121, 0], [0xB0, 7, 0], [0xB0, 7, 127], [0xB0, 11, 0], [0xB0, 10, 0], [0xB0, 10, 127],
    [0xB0, 1, 127], [0xD0, 127], [0xA0, 60, 127]])
junk = st.lists(st.integers(0, 255), min_size=1, max_size=6)
chunk = st.one_of(channel_message, channel_message, controllers, junk)
step = st.one_of(st.tuples(st.just("bytes"), st.lists(chunk, max_size=8).map(lambda cs: sum(cs, []))),
                 st.tuples(st.just("play"), st.integers(1, MAX_BLOCK)))


def play(engine: Engine, outdata: np.ndarray, frames: int) -> None:
    """What AudioOutput's callback does with a block, into a stereo device buffer."""
    out = outdata[:frames]
    out[:] = engine.process(frames)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0


@settings(max_examples=150, deadline=None, database=None)
@given(steps=st.lists(step, max_size=30))
def test_random_midi_bytes_never_raise_and_never_reach_the_output_non_finite(engine, steps):
    fresh_voices(engine)
    outdata = np.zeros((MAX_BLOCK, 2), np.float32)
    for kind, value in steps:
        if kind == "bytes":
            messages, dropped = parse(value)
            assert dropped >= 0
            for status, d1, d2 in messages:
                assert 0x80 <= status <= 0xEF and 0 <= d1 <= 127 and 0 <= d2 <= 127
                engine.send(status, d1, d2)
        else:
            play(engine, outdata, value)
    play(engine, outdata, MAX_BLOCK)


@settings(max_examples=150, deadline=None, database=None)
@given(triples=st.lists(st.tuples(st.integers(-300, 300), st.integers(-300, 300), st.integers(-300, 300)),
                        max_size=40))
def test_engine_send_takes_any_numbers(engine, triples):
    """The window and the sound process call Engine.send directly: out-of-range numbers are counted, not played."""
    fresh_voices(engine)
    outdata = np.zeros((MAX_BLOCK, 2), np.float32)
    before = engine.bad_midi
    for t in triples:
        engine.send(*t)
    bad = sum(not (0x80 <= s <= 0xEF and 0 <= a <= 127 and 0 <= b <= 127) for s, a, b in triples)
    assert engine.bad_midi - before == bad
    play(engine, outdata, 512)


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.lists(st.one_of(st.integers(0, 255), st.integers(-2, 400)), max_size=64))
def test_parser_output_is_always_channel_messages(data):
    messages, dropped = parse(data)
    assert all(0x80 <= s <= 0xEF and 0 <= a <= 127 and 0 <= b <= 127 for s, a, b in messages)
    assert 0 <= dropped <= len(data)


@settings(max_examples=200, deadline=None, database=None)
@given(messages=st.lists(channel_message, max_size=20))
def test_well_formed_messages_come_back_unchanged(messages):
    flat = sum(messages, [])
    assert parse(flat) == ([(m[0], m[1], m[2] if len(m) > 2 else 0) for m in messages], 0)


def bookkeeping_holds(v: Voices, down: set[tuple[int, int]]) -> None:
    """What the voices' vectorised event handling (retrigger, steal, release, pedal) must keep true; `down`: the
    (channel, key) pairs whose key is down."""
    n = v.n
    alive = v.v_state[:n] != KILLED
    for age in np.unique(v.v_age[:n]):
        note = v.v_age[:n] == age
        assert len(set(zip(v.v_chan[:n][note].tolist(), v.v_pitch[:n][note].tolist()))) == 1, "a note spans keys"
        assert v.v_primary[:n][note].sum() == 1, "a note has one primary voice"
    assert (v.v_primary[:n] & alive).sum() <= v.polyphony, "more notes sound than the polyphony"
    keys = list(zip(v.v_chan[:n][alive].tolist(), v.v_pitch[:n][alive].tolist(), v.v_age[:n][alive].tolist()))
    assert len({k[:2] for k in keys}) == len(set(keys)), "a key sounds twice: its retrigger did not fade the first"
    for i in range(n):
        key = (int(v.v_chan[i]), int(v.v_pitch[i]))
        if v.v_state[i] == HELD:
            assert key in down, "a voice is held whose key is up"
        if v.v_state[i] == SUSTAINED:
            assert key not in down and v.sustain[key[0]], "a voice is sustained with its key down or the pedal up"
    users = np.bincount(v.v_slot[:n], minlength=len(v.pool.users))
    assert (v.pool.users == users).all(), "a slot's user count is off"


def keys_down(down: set[tuple[int, int]], status: int, d1: int, d2: int) -> None:
    """Follow which keys are down, as a player's hands would say."""
    kind, ch = status & 0xF0, status & 0x0F
    if kind == 0x90 and d2 > 0:
        down.add((ch, d1))
    elif kind in (0x80, 0x90):
        down.discard((ch, d1))
    elif kind == 0xB0 and d1 in (120, 123):
        down -= {k for k in down if k[0] == ch}


note_on = st.builds(lambda ch, k, vel: (0x90 | ch, k, vel), st.integers(0, 1), st.integers(56, 71),
                    st.integers(0, 127))
note_off = st.builds(lambda ch, k: (0x80 | ch, k, 0), st.integers(0, 1), st.integers(56, 71))
pedal = st.builds(lambda ch, val: (0xB0 | ch, 64, val), st.integers(0, 1), st.sampled_from([0, 127]))
crowd = st.one_of(  # few keys and channels, so notes retrigger, steal, sustain and are cut off often
    note_on, note_on, note_on, note_off, note_off, pedal, pedal,
    st.builds(lambda ch, cc, val: (0xB0 | ch, cc, val), st.integers(0, 1), st.sampled_from([120, 121, 123]),
              st.sampled_from([0, 127])),
    st.builds(lambda ch, k, val: (0xA0 | ch, k, val), st.integers(0, 1), st.integers(56, 71), st.integers(0, 127)),
    st.builds(lambda ch: (0xE0 | ch, 0, 96), st.integers(0, 1)))
chord = st.lists(crowd, min_size=1, max_size=12)


@settings(max_examples=200, deadline=None, database=None)
@given(steps=st.lists(st.one_of(st.tuples(st.just("bytes"), chord), st.tuples(st.just("play"), st.integers(1, 600))),
                      max_size=40))
@example(steps=[("bytes", [(0x90, 56 + k, 100) for k in range(12)]), ("play", 128)])  # more notes than the polyphony
def test_voice_bookkeeping_holds_under_any_event_order(engine, steps):
    fresh_voices(engine)
    outdata = np.zeros((MAX_BLOCK, 2), np.float32)
    down: set[tuple[int, int]] = set()
    for kind, value in steps:
        if kind == "bytes":
            for message in value:
                engine.send(*message)
                keys_down(down, *message)
        else:
            play(engine, outdata, value)
            bookkeeping_holds(engine.voices, down)
    play(engine, outdata, MAX_BLOCK)
    bookkeeping_holds(engine.voices, down)
