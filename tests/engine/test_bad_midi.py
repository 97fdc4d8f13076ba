"""Malformed MIDI never reaches the voices: over a real JACK server, bad events between the notes of a take are
dropped and counted and every note after them is still in the take; the byte parser's rules one by one."""
import signal

from synth.engine.midi_bytes import checked_message, parse
from tests.fake_daw import FakeDaw
from tests.procs import lines_of, wait_for
from tests.engine.test_record import KEYS, check_notes, start_player

BAD_EVENTS = [[0x90, 200, 100], [0x80, 130, 0], [0x90, 61], [0x45, 0x33], [0xB0, 7, 255]]


def test_bad_bytes_mid_performance_are_dropped_and_the_take_keeps_every_note(jack_server, tone_model, tmp_path):
    import soundfile as sf

    take = tmp_path / "take.wav"
    events = sorted(KEYS + [(0.3 + 0.02 * k, bad) for k, bad in enumerate(BAD_EVENTS)])
    proc = start_player(tone_model, take, "-v")
    try:
        out = lines_of(proc)
        wait_for(out, f"recording to {take}")
        keys = FakeDaw("keys", events=events)
        try:
            keys.play_phrase_into("GANSynth Live")
            keys.wait(0.5)
        finally:
            keys.close()
        assert "malformed message(s) dropped so far; the sound goes on" in wait_for(out, "gansynth-live: MIDI:")
        wait_for(out, f"dropped {len(BAD_EVENTS)}", timeout=10)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    audio, _ = sf.read(take, dtype="float32")
    check_notes(audio[:, 0])  # the notes after the bad events sound, at their pitch and time


def test_parser_keeps_channel_messages_and_counts_the_rest():
    assert parse([0x90, 60, 100]) == ([(0x90, 60, 100)], 0)
    assert parse([0xC3, 5]) == ([(0xC3, 5, 0)], 0)
    assert parse([0x90, 60, 100, 62, 0]) == ([(0x90, 60, 100), (0x90, 62, 0)], 0)  # running status
    assert parse([0x90, 200, 100]) == ([(0xC8, 100, 0)], 1)  # a byte >= 128 is a status byte: 0x90 cut short
    assert parse([0x90, 61]) == ([], 1)  # cut short by the end
    assert parse([0x45, 0x33, 0x90, 1, 2]) == ([(0x90, 1, 2)], 1)  # stray data bytes: one run, dropped once
    assert parse([0xF0, 1, 2, 3, 0xF7, 0x80, 1, 0]) == ([(0x80, 1, 0)], 1)  # sysex
    assert parse([0x90, 0xF8, 60, 100]) == ([(0x90, 60, 100)], 1)  # real-time byte inside a message
    assert parse([0xF2, 1, 2, 3]) == ([], 2)  # song position, then a data byte with no running status
    assert parse([0x90, 60, 256]) == ([], 1)  # not a byte


def test_engine_send_refuses_what_is_not_a_channel_message():
    assert checked_message(0x90, 60, 100) == (0x90, 60, 100)
    for bad in [(0x90, 128, 100), (0x90, 60, -1), (0xF0, 1, 2), (0x7F, 1, 2), (0x90, 60.0, 1), (None, 1, 2)]:
        assert checked_message(*bad) is None
