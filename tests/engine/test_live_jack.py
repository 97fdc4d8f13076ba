"""End to end on a real JACK server: a JACK client plays a phrase into our virtual MIDI input and records what
`gansynth-live play` outputs, and every note's onset and pitch is checked; rtmidi keyboards test port loss."""
import signal
import subprocess
import sys
import time

import numpy as np
import rtmidi

from tests.audio_checks import cents
from tests.fake_daw import (
    PHRASE,
    RATE,
    FakeDaw,
    assert_matches_offline_render,
    phrase_onsets,
)
from tests.procs import lines_of, wait_for


def test_phrase_over_jack_midi_and_audio(jack_server, tone_model):
    """A phrase into our virtual MIDI port comes out of our JACK audio port note for note: each onset one
    audio block or so after its note-on, each pitch the one asked for."""
    proc = subprocess.Popen([sys.executable, "-m", "synth", "play", "--model", str(tone_model), "--host-api", "jack",
                             "--midi-api", "jack", "--release", "0.05", "--seconds", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    daw = None
    try:
        out = lines_of(proc)
        wait_for(out, "ready:")
        daw = FakeDaw("recorder")
        ours = [p.name for p in daw.client.get_ports(is_audio=True, is_output=True)
                if not p.name.startswith(("system:", "recorder:"))]
        assert ours, "the player has no JACK output port"
        daw.client.connect(ours[0], daw.ins[0])
        audio = daw.play_phrase_into("GANSynth Live")[:, 0]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        wait_for(out, "stopped:")
    finally:
        if daw is not None:
            daw.close()
        if proc.poll() is None:
            proc.kill()

    onsets = phrase_onsets(audio, len(PHRASE))
    delay = onsets - np.array([t for t, _ in PHRASE])
    print("note-on to sound, ms:", np.round(delay * 1000, 1))
    assert np.all(delay >= 0) and np.max(delay) - np.min(delay) < 0.010, delay
    for (t, pitch), at in zip(PHRASE, onsets):
        assert abs(cents(audio, RATE, at - 0.02, pitch)) < 50


def play(model, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "synth", "play", "--model", str(model), "--seconds", "1", *args],
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc, start):
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("gansynth-live:")]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(start), lines[0]
    return lines[0]


def test_bad_audio_and_midi_settings_are_one_clear_line(jack_server, tone_model):
    line = one_line_error(play(tone_model, "--audio-out", "nosuchcard"), "gansynth-live: no output device matches")
    assert "system (JACK Audio Connection Kit)" in line  # it lists what exists
    one_line_error(play(tone_model, "--host-api", "asio"), "gansynth-live: no host API 'asio' here; available:")
    one_line_error(play(tone_model, "--host-api", "jack", "--rate", "44100"),
                   "gansynth-live: device 'system' cannot play 44100 Hz")
    one_line_error(play(tone_model, "--host-api", "jack", "--midi-api", "jack", "--midi-in", "NoSuchKeyboard"),
                   "gansynth-live: no MIDI input port matches 'NoSuchKeyboard'")


def test_hardware_port_that_disappears_is_reopened_without_stopping_audio(jack_server, tone_model):
    keyboard = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="Keys")
    keyboard.open_virtual_port("Test Keyboard")
    proc = subprocess.Popen([sys.executable, "-m", "synth", "play", "--model", str(tone_model), "--host-api", "jack",
                             "--midi-api", "jack", "--midi-in", "Test Keyboard", "--seconds", "60", "-v"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = lines_of(proc)
        wait_for(out, "MIDI in: Keys:Test Keyboard")
        wait_for(out, "ready:")
        keyboard.send_message([0x90, 60, 100])
        wait_for(out, "MIDI messages 1")
        keyboard.close_port()
        keyboard.delete()
        wait_for(out, "disappeared", timeout=10)
        keyboard = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="Keys")
        keyboard.open_virtual_port("Test Keyboard")
        wait_for(out, "is back", timeout=10)
        time.sleep(0.3)
        keyboard.send_message([0x80, 60, 0])
        keyboard.send_message([0x90, 64, 100])
        wait_for(out, "MIDI messages 3")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        keyboard.delete()
        if proc.poll() is None:
            proc.kill()


def test_connect_routes_into_a_daw_recorder_and_matches_the_offline_render(jack_server, tone_model, tmp_path):
    """`--connect` wires our stably named JACK client to another client's inputs (a stand-in for a DAW track) and
    nowhere else; what that client records matches the offline render of the same phrase."""
    daw = FakeDaw()
    proc = subprocess.Popen([sys.executable, "-m", "synth", "play", "--model", str(tone_model), "--host-api", "jack",
                             "--midi-api", "jack", "--release", "0.05", "--connect", "FakeDAW:audio_in",
                             "--seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = lines_of(proc)
        assert "JACK: GANSynth Live Audio:out_0 -> FakeDAW:audio_in_1" in wait_for(out, "JACK:")
        wait_for(out, "ready:")
        ours = daw.client.get_ports("GANSynth Live Audio:", is_audio=True, is_output=True)
        assert [p.name for p in ours] == ["GANSynth Live Audio:out_0", "GANSynth Live Audio:out_1"]
        assert [[q.name for q in daw.client.get_all_connections(p)] for p in ours] == [["FakeDAW:audio_in_1"],
                                                                                      ["FakeDAW:audio_in_2"]]
        recorded = daw.play_phrase_into("GANSynth Live")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        daw.close()
        if proc.poll() is None:
            proc.kill()

    assert np.array_equal(recorded[:, 0], recorded[:, 1])
    assert_matches_offline_render(recorded[:, 0], tone_model, tmp_path, daw.heard)


def test_connect_to_a_missing_port_and_devices_marks_jack_as_virtual(jack_server, tone_model):
    line = one_line_error(play(tone_model, "--host-api", "jack", "--midi-api", "jack", "--connect", "Nowhere"),
                          "gansynth-live: no JACK input port matches 'Nowhere'; inputs: system:playback_1")
    assert "\n" not in line
    devices = subprocess.run([sys.executable, "-m", "synth", "devices"], capture_output=True, text=True, timeout=60)
    assert devices.returncode == 0, devices.stderr
    assert any("system (JACK Audio Connection Kit" in line and "* virtual: JACK" in line
               for line in devices.stdout.splitlines()), devices.stdout
