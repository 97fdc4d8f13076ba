"""Property-based (hypothesis): random MIDI byte streams through the real parser and the real engine, mixed by
the real voices into an output buffer as the audio callback does: nothing raises, and every sample that reaches
the buffer is finite and within full scale. The bank holds every MIDI key of the analytic tone model."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.engine.engine import Engine
from synth.engine.midi_bytes import parse
from synth.engine.voices import Voices
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
