"""The audio callback cannot die: a block that raises is played as silence, counted and reported off the audio
thread while the stream goes on (on a real JACK server); a mix that is not finite never reaches the device."""
import subprocess
import sys
import time

import numpy as np
import pytest

from synth.engine.engine import Engine
from synth.runtime.model import NoteModel


@pytest.mark.parametrize("effects", ["", "gain:gain_db=-6"], ids=["in-the-callback", "in-the-effects-producer"])
def test_a_block_that_raises_is_silenced_and_the_stream_goes_on(jack_server, tone_model, effects):
    """In a child process: PortAudio, once it has opened JACK, aborts at exit if the server has gone (as the
    shared test server does at the end of the session), so this process never loads it."""
    proc = subprocess.run([sys.executable, "-c", f"from tests.engine.test_callback_guard import corrupt_voice_on_jack; "
                           f"corrupt_voice_on_jack({str(tone_model)!r}, {effects!r})"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "all checked" in proc.stdout, proc.stdout + proc.stderr


def corrupt_voice_on_jack(model_path: str, effects: str) -> None:
    from synth.engine.audio import AudioOutput
    from synth.engine.effects import parse_chain

    engine = Engine(NoteModel(model_path, provider="cpu"), rate=48000, block=128, polyphony=4, render_process=False)
    engine.renderer.render_all()
    out = AudioOutput(engine, hostapi="jack", block=128, effects=parse_chain(effects, 48000) if effects else None)
    out.start()
    try:
        engine.note_on(60)
        deadline = time.monotonic() + 30
        while engine.voices.n == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.voices.n == 1
        # A corrupt voice: its mix raises (the pool reads clip their indices, so a bad offset alone no longer does).
        broken, block_gain = [True], engine.voices._block_gain

        def failing(n: int, b: int):
            if broken[0]:
                raise IndexError("index 1099511627776 is out of bounds for the note pool")
            return block_gain(n, b)

        engine.voices._block_gain = failing
        while out.failed_blocks == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        blocks = out.blocks
        while out.blocks < blocks + 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert out.blocks >= blocks + 100 and out.stream.active, "the stream stopped"
        assert not out.check_server()
        problems = out.problems()
        assert len(problems) == 1 and "IndexError" in problems[0] and "the sound goes on" in problems[0], problems
        assert out.problems() == []  # each failure is reported once
        assert engine.voices.n == 0  # the bad voice was let go after failing twice
        broken[0] = False
        engine.note_on(64)  # and the instrument plays again
        while engine.voices.n == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        failed = out.failed_blocks
        time.sleep(0.2)
        assert engine.voices.n == 1 and out.failed_blocks == failed
    finally:
        out.stop()
        engine.stop()
    print("all checked", flush=True)


def test_blocks_that_run_past_their_period_are_counted_as_ours(jack_server, tone_model):
    """The bench tells the instrument's underruns from the machine's: a block whose start delay (the GIL) plus its
    own time passes its period is counted. In a child process, as above."""
    proc = subprocess.run([sys.executable, "-c", f"from tests.engine.test_callback_guard import slow_blocks_on_jack; "
                           f"slow_blocks_on_jack({str(tone_model)!r})"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "all checked" in proc.stdout, proc.stdout + proc.stderr


def slow_blocks_on_jack(model_path: str) -> None:
    from synth.engine.audio import AudioOutput

    engine = Engine(NoteModel(model_path, provider="cpu"), rate=48000, block=128, polyphony=4, render_process=False)
    engine.renderer.render_all()
    out = AudioOutput(engine, hostapi="jack", block=128)
    process, slow = engine.process, [0]

    def slowed(frames: int) -> np.ndarray:
        if slow[0] > 0:
            slow[0] -= 1
            time.sleep(3 * frames / engine.rate)  # three periods: past its own period whatever the machine
        return process(frames)

    engine.process = slowed
    out.start()
    try:
        deadline = time.monotonic() + 30
        while out.blocks < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        before, slow[0] = out.overran, 5
        while (slow[0] > 0 or out.overran - before < 5) and time.monotonic() < deadline:
            time.sleep(0.01)
        # counted only where PortAudio's stream time and the block's time agree (within a second): they do on JACK
        assert out.overran - before >= 5, (before, out.overran)
    finally:
        out.stop()
        engine.stop()
    print("all checked", flush=True)


def test_a_non_finite_note_is_played_as_silence_and_does_not_stick(tone_model):
    engine = Engine(NoteModel(tone_model, provider="cpu"), rate=48000, block=256, polyphony=4, render_process=False)
    engine.renderer.render_all()
    lane = engine.renderer.lanes[0]
    engine.renderer.pool.data[lane.slot_for[0, 60], 5000] = np.nan  # as if a model had slipped NaN into the bank
    engine.note_on(60)
    engine.note_on(67)
    blocks = [engine.process(256)[:, 0].copy() for _ in range(40)]
    assert all(np.isfinite(b).all() for b in blocks)
    assert engine.voices.nonfinite_blocks > 0
    engine.send(0xB0, 120, 0)  # all sound off: the bad voice goes
    for _ in range(10):
        engine.process(256)
    engine.note_on(67)
    after = np.concatenate([engine.process(256)[:, 0].copy() for _ in range(20)])
    assert np.isfinite(after).all() and np.abs(after).max() > 0.01  # the limiter did not stay at NaN


def test_a_nan_timbre_or_gain_is_refused_and_the_sound_process_goes_on(tone_model):
    """The window posts timbres and gains one way to its sound process: a bad one is said and changes nothing
    (before, a NaN latent filled the bank with NaN, and a malformed message ended the sound process)."""
    from synth.engine.rig import RigConfig
    from synth.engine.sound_process import SoundProcess

    engine = Engine(NoteModel(tone_model, provider="cpu"), rate=48000, block=128, render_process=False)
    z = engine.z.copy()
    with pytest.raises(ValueError, match="a timbre must be 8 finite numbers; got shape \\[8\\] with NaN"):
        engine.set_timbre(np.full(8, np.nan))
    with pytest.raises(ValueError, match="got shape \\[2\\]"):
        engine.set_timbre(np.zeros(2))
    assert np.array_equal(engine.z, z)

    sound = SoundProcess(RigConfig(str(tone_model), audio=False, midi=False))
    try:
        sound.set_timbre(np.full(8, np.nan))
        sound.set_gain(float("nan"))
        sound.send(0x90, 60)  # one data byte short is still a message: d2 defaults to 0
        sound._post("send", (1, 2, 3, 4))  # a malformed message
        deadline = time.monotonic() + 30
        events = []
        while len(events) < 3 and time.monotonic() < deadline:
            events += [e for e in sound.events() if e[0] == "error"]
            time.sleep(0.05)
        texts = [e[1] for e in events]
        assert any("a timbre must be 8 finite numbers" in t for t in texts), texts
        assert any("master gain nan is outside 0-10; kept 0.5" in t for t in texts), texts
        assert len(texts) == 3, texts
        st = sound.call("status")
        assert np.isfinite(st.z).all() and st.bad_midi == 0
    finally:
        sound.close()
