"""The window's sound process over its pipes: calls are answered by id, status is pushed, bad posts are said."""
import time

import pytest

from synth.engine.rig import RigConfig, RigStatus
from synth.engine.sound_process import SoundProcess, SoundProcessError


@pytest.fixture
def sound(tone_model):
    process = SoundProcess(RigConfig(str(tone_model), audio=False, midi=False, polyphony=5))
    yield process
    process.close()


def test_a_late_reply_is_never_taken_for_the_next_calls_answer(sound):
    """A call that gave up waiting (a plugin scan may take 60 s, a call gives up at 30 s) leaves its answer in
    the pipe; the next call must skip it, not return it. The abandoned call is sent as `call` sends one, then
    never read: on this machine a real timeout cannot be forced, the sound process answers too fast."""
    sound._commands.send(("call", 10_000, "status", ()))  # answered, but nobody waits for it any more
    time.sleep(0.2)  # its answer is in the pipe now, ahead of the next call's
    assert sound.call("chain") == []  # the chain's own answer, not the late status
    sound.call("add_builtin", "gain", {})
    assert [fx["kind"] for fx in sound.call("chain_save")] == ["gain"]
    assert isinstance(sound.call("status"), RigStatus)


def test_a_call_that_is_not_answered_in_time_says_so(sound):
    with pytest.raises(SoundProcessError, match="did not answer 'status' in 0 s"):
        for _ in range(1000):  # most are answered before the poll; one that is not is all this needs
            sound.call("status", timeout=0)
    assert isinstance(sound.call("status"), RigStatus)  # and the late answers are skipped


def test_status_is_pushed_without_asking(sound):
    deadline = time.monotonic() + 30
    while sound.status() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    first = sound.status()
    assert isinstance(first, RigStatus) and first.polyphony == 5 and first.audio is None
    sound.send(0x90, 60, 100)  # no audio runs: the note waits in the queue, and the next status shows it
    deadline = time.monotonic() + 5
    while not sound.status().queued_events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sound.status().queued_events == [(0x90, 60, 100)]
