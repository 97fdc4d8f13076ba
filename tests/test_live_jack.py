"""End to end on a real JACK server: an rtmidi port plays a phrase into our virtual input, a JACK client records
what `gansynth-live play` outputs, and every note's onset and pitch is checked."""
import queue
import signal
import subprocess
import sys
import threading
import time

import jack
import numpy as np
import rtmidi

from tests.audio_checks import cents

RATE = 48000
PHRASE = [(0.0, 60), (0.5, 64), (1.0, 67), (1.5, 72), (2.0, 62), (2.5, 69), (3.0, 48), (3.5, 84)]
NOTE_SECONDS = 0.25


def lines_of(proc):
    q = queue.Queue()
    threading.Thread(target=lambda: [q.put(line) for line in proc.stdout], daemon=True).start()
    return q


def wait_for(q, text, timeout=60.0):
    end, seen = time.monotonic() + timeout, []
    while time.monotonic() < end:
        try:
            line = q.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"'{text}' never printed; got: {''.join(seen)}")


def test_phrase_over_jack_midi_and_audio(jack_server, tone_model):
    proc = subprocess.Popen([sys.executable, "-m", "synth", "play", "--model", str(tone_model), "--host-api", "jack",
                             "--midi-api", "jack", "--release", "0.05", "--seconds", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = lines_of(proc)
        wait_for(out, "ready:")
        client = jack.Client("recorder", no_start_server=True)
        port = client.inports.register("in")
        recording = np.zeros(RATE * 8, dtype=np.float32)
        where = [0]

        @client.set_process_callback
        def process(frames):
            i = where[0]
            if i + frames <= len(recording):
                recording[i:i + frames] = port.get_array()
                where[0] = i + frames

        ours = [p.name for p in client.get_ports(is_audio=True, is_output=True)
                if not p.name.startswith(("system:", "recorder:"))]
        assert ours, "the player has no JACK output port"
        client.activate()
        client.connect(ours[0], port)

        midi = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK)
        names = midi.get_ports()
        target = [i for i, n in enumerate(names) if "GANSynth Live" in n]
        assert target, f"our virtual MIDI port is missing: {names}"
        midi.open_port(target[0])
        time.sleep(0.3)
        events = sorted([(t, [0x90, p, 100]) for t, p in PHRASE] + [(t + NOTE_SECONDS, [0x80, p, 0]) for t, p in PHRASE])
        start = time.perf_counter() + 0.2
        sent = []
        for t, msg in events:
            while time.perf_counter() < start + t:
                time.sleep(0.0002)
            midi.send_message(msg)
            if msg[0] == 0x90:
                sent.append(time.perf_counter() - start)
        time.sleep(0.5)
        client.deactivate()
        client.close()
        midi.close_port()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        wait_for(out, "stopped:")
    finally:
        if proc.poll() is None:
            proc.kill()

    audio = recording[:where[0]]
    loud = np.abs(audio) > 1e-3
    onsets = []
    for k in range(len(PHRASE)):  # each note follows silence: its onset is the first loud sample after the last
        begin = onsets[-1] + int(0.4 * RATE) if onsets else 0
        onsets.append(begin + int(np.argmax(loud[begin:])))
        assert loud[begin:].any(), f"note {k} never sounded"
    played = (np.array(onsets) - onsets[0]) / RATE
    asked = np.array(sent) - sent[0]
    print("onset error ms:", np.round((played - asked) * 1000, 1))
    assert np.max(np.abs(played - asked)) < 0.010, (played - asked)
    for (t, pitch), i in zip(PHRASE, onsets):
        assert abs(cents(audio, RATE, i / RATE - 0.02, pitch)) < 50
