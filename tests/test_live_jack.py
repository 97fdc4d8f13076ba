"""End to end on a real JACK server: a JACK client plays a phrase into our virtual MIDI input and records what
`gansynth-live play` outputs, and every note's onset and pitch is checked; rtmidi keyboards test port loss."""
import signal
import subprocess
import sys
import time

import jack
import numpy as np
import rtmidi

from tests.audio_checks import cents
from tests.procs import lines_of, wait_for

RATE = 48000
PHRASE = [(0.0, 60), (0.5, 64), (1.0, 67), (1.5, 72), (2.0, 62), (2.5, 69), (3.0, 48), (3.5, 84)]
NOTE_SECONDS = 0.25


EVENTS = sorted([(t, [0x90, p, 100]) for t, p in PHRASE] + [(t + NOTE_SECONDS, [0x80, p, 0]) for t, p in PHRASE])


class FakeDaw:
    """A JACK client standing in for a DAW: a MIDI track that plays the phrase frame-exact from its own process
    callback and a stereo audio track that records. Timing is measured in the server's frames, so the check is
    on our engine and not on how punctually this test process wakes up or how steadily the dummy clock runs."""

    def __init__(self, name: str = "FakeDAW") -> None:
        self.client = jack.Client(name, no_start_server=True)
        self.ins = [self.client.inports.register(f"audio_in_{i}") for i in (1, 2)]
        self.track = self.client.midi_outports.register("midi_out")
        self.take = np.zeros((RATE * 30, 2), dtype=np.float32)
        self.where = 0
        self.cue = [(round(t * RATE), bytes(msg)) for t, msg in EVENTS]
        self.start: int | None = None  # the frame of the take at which the phrase starts
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        i = self.where
        self.track.clear_buffer()
        if self.start is not None:
            for at, msg in self.cue:
                if i <= self.start + at < i + frames:
                    self.track.write_midi_event(self.start + at - i, msg)
        if i + frames <= len(self.take):
            self.take[i:i + frames, 0] = self.ins[0].get_array()
            self.take[i:i + frames, 1] = self.ins[1].get_array()
            self.where = i + frames

    def play_phrase_into(self, port_fragment: str) -> np.ndarray:
        """Connect the MIDI track to the one MIDI input whose name holds `port_fragment`, play the phrase and
        return what was recorded from its start on."""
        targets = [p for p in self.client.get_ports(is_midi=True, is_input=True) if port_fragment in p.name]
        assert len(targets) == 1, [p.name for p in self.client.get_ports(is_midi=True)]
        self.client.connect(self.track, targets[0])
        time.sleep(0.3)
        self.start = self.where + RATE // 5
        end = self.start + self.cue[-1][0] + RATE // 2
        deadline = time.monotonic() + 30
        while self.where < end and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.where >= end, "the fake DAW's recording stopped before the phrase ended"
        return self.take[self.start:end]

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def phrase_onsets(audio, notes):
    """Onset (s) of each note of a phrase whose notes follow silence: the first loud sample after the last."""
    loud = np.abs(audio) > 1e-3
    onsets = []
    for k in range(notes):
        begin = onsets[-1] + int(0.4 * RATE) if onsets else 0
        assert loud[begin:].any(), f"note {k} never sounded"
        onsets.append(begin + int(np.argmax(loud[begin:])))
    return np.array(onsets) / RATE



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
    import mido

    from synth.engine.offline import render_midi
    from synth.runtime.model import NoteModel

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

    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    now = 0
    for t, msg in EVENTS:  # 120 bpm: 960 ticks a second
        tick = round(t * 960)
        track.append(mido.Message.from_bytes(msg, time=tick - now))
        now = tick
    song.save(tmp_path / "phrase.mid")
    offline = render_midi(tmp_path / "phrase.mid", NoteModel(tone_model), [], rate=RATE, release=0.05).audio

    assert np.array_equal(recorded[:, 0], recorded[:, 1])
    live_on, off_on = phrase_onsets(recorded[:, 0], len(PHRASE)), phrase_onsets(offline, len(PHRASE))
    error = (live_on - live_on[0]) - (off_on - off_on[0])
    print("onset error against the offline render, ms:", np.round(error * 1000, 1))
    assert np.max(np.abs(error)) < 0.010
    for (_, pitch), a, b in zip(PHRASE, live_on, off_on):
        assert abs(cents(recorded[:, 0], RATE, a - 0.02, pitch) - cents(offline, RATE, b - 0.02, pitch)) < 50


def test_connect_to_a_missing_port_and_devices_marks_jack_as_virtual(jack_server, tone_model):
    line = one_line_error(play(tone_model, "--host-api", "jack", "--midi-api", "jack", "--connect", "Nowhere"),
                          "gansynth-live: no JACK input port matches 'Nowhere'; inputs: system:playback_1")
    assert "\n" not in line
    devices = subprocess.run([sys.executable, "-m", "synth", "devices"], capture_output=True, text=True, timeout=60)
    assert devices.returncode == 0, devices.stderr
    assert any("system (JACK Audio Connection Kit" in line and "* virtual: JACK" in line
               for line in devices.stdout.splitlines()), devices.stdout
