"""A JACK client standing in for a DAW, and the phrase it plays; also a script that plays the phrase into a MIDI
port (and records the two output ports whose names hold MONITOR, saving the take as a .npy file) and exits, for a
JACK server reached through another libjack (PipeWire's) than the test process has loaded:

    python -m tests.fake_daw PORT_FRAGMENT [MONITOR TAKE.npy]
"""
import sys
import time

import jack
import numpy as np

RATE = 48000
PHRASE = [(0.0, 60), (0.5, 64), (1.0, 67), (1.5, 72), (2.0, 62), (2.5, 69), (3.0, 48), (3.5, 84)]
NOTE_SECONDS = 0.25
EVENTS = sorted([(t, [0x90, p, 100]) for t, p in PHRASE] + [(t + NOTE_SECONDS, [0x80, p, 0]) for t, p in PHRASE])


class FakeDaw:
    """A JACK client standing in for a DAW: a MIDI track that plays the phrase frame-exact from its own process
    callback and a stereo audio track that records. Timing is measured in the server's frames, so the check is
    on our engine and not on how punctually this test process wakes up or how steadily the dummy clock runs.

    Take and track follow the server's frame clock (jack_last_frame_time), not a count of this client's own
    cycles: a cycle the server ran without this client (PipeWire does that to a late client) stays a silent gap
    in the take and shifts nothing after it, and an event due in it goes out at the start of the next cycle."""

    def __init__(self, name: str = "FakeDAW", events=EVENTS) -> None:
        self.client = jack.Client(name, no_start_server=True)
        self.ins = [self.client.inports.register(f"audio_in_{i}") for i in (1, 2)]
        self.track = self.client.midi_outports.register("midi_out")
        self.take = np.zeros((RATE * 60, 2), dtype=np.float32)
        self.got = np.zeros(RATE * 60, dtype=bool)  # frames the server ran this client for
        self.heard = np.zeros(0, dtype=bool)  # `got` over the last phrase's take
        self.where = 0  # frames of the take so far: the server's frames since this client's first cycle
        self.missed = 0  # cycles the server ran without this client
        self.cue = [(round(t * RATE), bytes(msg)) for t, msg in events]
        self.sent = 0  # how many of the cue's events are out
        self.start: int | None = None  # the frame of the take at which the phrase starts
        self._t0: int | None = None  # the server's frame time at take[0]
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        now = self.client.last_frame_time
        if self._t0 is None:
            self._t0 = now
        i = (now - self._t0) % 2 ** 32  # JACK frame times are 32-bit and wrap
        if i > self.where:
            self.missed += (i - self.where) // frames
        self.track.clear_buffer()
        if self.start is not None:
            while self.sent < len(self.cue) and self.start + self.cue[self.sent][0] < i + frames:
                at, msg = self.cue[self.sent]
                self.track.write_midi_event(max(self.start + at - i, 0), msg)
                self.sent += 1
        if i + frames <= len(self.take):
            self.take[i:i + frames, 0] = self.ins[0].get_array()
            self.take[i:i + frames, 1] = self.ins[1].get_array()
            self.got[i:i + frames] = True
            self.where = max(self.where, i + frames)

    def record_from(self, fragment: str) -> None:
        """Connect the audio outputs whose names hold `fragment` (e.g. a sink's monitor_FL and monitor_FR), in
        order, to the stereo track."""
        sources = [p for p in self.client.get_ports(is_audio=True, is_output=True) if fragment in p.name]
        assert len(sources) == 2, [p.name for p in self.client.get_ports(is_audio=True, is_output=True)]
        for source, track in zip(sources, self.ins):
            self.client.connect(source, track)

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass on the server's clock."""
        end = self.where + round(seconds * RATE)
        deadline = time.monotonic() + 30 + seconds
        while self.where < end and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.where >= end, "the JACK server stopped running this client"

    def play_phrase_into(self, port_fragment: str) -> np.ndarray:
        """Connect the MIDI track to the one MIDI input whose name holds `port_fragment` (once), play the phrase
        and return what was recorded from its start on; `heard` marks the frames of it that were recorded."""
        targets = [p for p in self.client.get_ports(is_midi=True, is_input=True) if port_fragment in p.name]
        assert len(targets) == 1, [p.name for p in self.client.get_ports(is_midi=True)]
        if targets[0].name not in [p.name for p in self.client.get_all_connections(self.track)]:
            self.client.connect(self.track, targets[0])
            time.sleep(0.3)
        self.start = None
        self.sent = 0
        self.start = self.where + RATE // 5
        end = self.start + self.cue[-1][0] + RATE // 2
        deadline = time.monotonic() + 30
        while self.where < end and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.where >= end, "the fake DAW's recording stopped before the phrase ended"
        self.heard = self.got[self.start:end].copy()
        return self.take[self.start:end].copy()

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


def write_midi(events, path):
    """A one-track MIDI file (120 bpm, 960 ticks a second) of (seconds, message bytes) events."""
    import mido

    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    now = 0
    for t, msg in events:
        tick = round(t * 960)
        track.append(mido.Message.from_bytes(msg, time=tick - now))
        now = tick
    song.save(path)
    return path


def assert_matches_offline_render(recorded, model_path, tmp_path, heard=None) -> None:
    """The recorded phrase against `gansynth-live render` of the same phrase as a MIDI file: every onset within
    10 ms (relative to the first note) and every pitch within 50 cents. Notes whose onset or pitch window fell in
    a gap of the recording (`heard` False: the server skipped the recorder, not our player) are left out, and at
    least half of them must be left to check."""
    from synth.engine.offline import render_midi
    from synth.runtime.model import NoteModel
    from tests.audio_checks import cents

    write_midi(EVENTS, tmp_path / "phrase.mid")
    offline = render_midi(tmp_path / "phrase.mid", NoteModel(model_path), [], rate=RATE, release=0.05).audio[:, 0]
    live_on, off_on = phrase_onsets(recorded, len(PHRASE)), phrase_onsets(offline, len(PHRASE))
    whole = np.array([heard is None or bool(heard[int((t - 0.05) * RATE):int((t + 0.16) * RATE)].all())
                      for t in live_on])
    assert whole.sum() >= len(PHRASE) / 2 and whole[0], f"the recorder missed too much: {whole}"
    error = (live_on - live_on[0]) - (off_on - off_on[0])
    print("onset error against the offline render, ms:", np.round(error * 1000, 1), "checked:", whole)
    assert np.max(np.abs(error[whole])) < 0.010, error
    for (_, pitch), a, b, ok in zip(PHRASE, live_on, off_on, whole):
        if ok:
            assert abs(cents(recorded, RATE, a - 0.02, pitch) - cents(offline, RATE, b - 0.02, pitch)) < 50


if __name__ == "__main__":
    daw = FakeDaw("FakeDAW-MIDI")
    try:
        if len(sys.argv) > 2:
            daw.record_from(sys.argv[2])
        started = time.monotonic()
        take, heard = daw.play_phrase_into(sys.argv[1]), daw.heard
        print(f"take 1: {int((~heard).sum())} frames not recorded", flush=True)
        for attempt in (2, 3):  # a loaded machine can skip this client (not the player) mid-phrase: play it again
            if heard.all() or time.monotonic() - started > 20:  # within the caller's time limit
                break
            again = daw.play_phrase_into(sys.argv[1])
            print(f"take {attempt}: {int((~daw.heard).sum())} frames not recorded", flush=True)
            if (~daw.heard).sum() < (~heard).sum():  # keep the most complete take, not the last
                take, heard = again, daw.heard
    finally:
        daw.close()
    if len(sys.argv) > 3:
        np.save(sys.argv[3], take)
        np.save(sys.argv[3].removesuffix(".npy") + ".heard.npy", heard)
    print(f"played; missed {daw.missed} cycles", flush=True)
