"""A JACK client standing in for a DAW, and the phrase it plays; also a script that plays the phrase into a MIDI
port and exits, for a JACK server reached through another libjack (PipeWire's) than the test process has loaded:

    python -m tests.fake_daw PORT_FRAGMENT
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


def assert_matches_offline_render(recorded, model_path, tmp_path) -> None:
    """The recorded phrase against `gansynth-live render` of the same phrase as a MIDI file: every onset within
    10 ms (relative to the first note) and every pitch within 50 cents."""
    import mido

    from synth.engine.offline import render_midi
    from synth.runtime.model import NoteModel
    from tests.audio_checks import cents

    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    now = 0
    for t, msg in EVENTS:  # 120 bpm: 960 ticks a second
        tick = round(t * 960)
        track.append(mido.Message.from_bytes(msg, time=tick - now))
        now = tick
    song.save(tmp_path / "phrase.mid")
    offline = render_midi(tmp_path / "phrase.mid", NoteModel(model_path), [], rate=RATE, release=0.05).audio
    live_on, off_on = phrase_onsets(recorded, len(PHRASE)), phrase_onsets(offline, len(PHRASE))
    error = (live_on - live_on[0]) - (off_on - off_on[0])
    print("onset error against the offline render, ms:", np.round(error * 1000, 1))
    assert np.max(np.abs(error)) < 0.010, error
    for (_, pitch), a, b in zip(PHRASE, live_on, off_on):
        assert abs(cents(recorded, RATE, a - 0.02, pitch) - cents(offline, RATE, b - 0.02, pitch)) < 50


if __name__ == "__main__":
    daw = FakeDaw("FakeDAW-MIDI")
    try:
        daw.play_phrase_into(sys.argv[1])
    finally:
        daw.close()
    print("played", flush=True)
