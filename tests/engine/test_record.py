"""`play --record` on a real JACK server: the file is finalised when the player is stopped by SIGINT or SIGTERM,
holds every note played (pitch checked), and after a SIGKILL `recover` makes the take from the hidden part file."""
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.audio_checks import cents
from tests.fake_daw import RATE, FakeDaw
from tests.procs import lines_of, wait_for

NOTES = [60, 67, 72]
GAP, LENGTH = 0.5, 0.25
# played frame-exact on the server's clock, which the recording follows (the dummy clock runs slow when the machine
# is loaded, so notes timed by this process's sleeps land closer together in the take)
KEYS = sorted([(k * GAP, [0x90, p, 100]) for k, p in enumerate(NOTES)]
              + [(k * GAP + LENGTH, [0x80, p, 0]) for k, p in enumerate(NOTES)])


def start_player(model, record, *extra):
    return subprocess.Popen([sys.executable, "-m", "synth", "play", "--model", str(model), "--host-api", "jack",
                             "--midi-api", "jack", "--release", "0.05", "--seconds", "60", "--record", str(record),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def play_notes(then: float) -> float:
    """Play NOTES into our virtual MIDI port from a JACK client, let `then` seconds more pass on the server's
    clock, and return how long (s, on that clock) the client ran."""
    keys = FakeDaw("keys", events=KEYS)
    try:
        keys.play_phrase_into("GANSynth Live")
        keys.wait(then)
        return keys.where / RATE
    finally:
        keys.close()


def stored_peak(model_path, pitch: int, seconds: float) -> float:
    """Peak of the first `seconds` of the note as the bank stores it at the server's rate."""
    from synth.engine.bank import N_KEYS, BankRenderer
    from synth.runtime.model import NoteModel

    renderer = BankRenderer(NoteModel(model_path, threads=1), RATE)
    renderer.set_timbre(np.zeros(renderer.model.info.z_dim, np.float32))
    renderer.render_notes(0, [(pitch, 100)])
    slot = renderer.lanes[0].banks[-1].slot_of[int(renderer.layer_hi[100]) * N_KEYS + pitch]
    return float(np.abs(renderer.pool.data[slot][:int(seconds * RATE)]).max())


def note_starts(audio):
    """Onsets of the notes: the first loud sample after at least 0.15 s of quiet."""
    loud = np.flatnonzero(np.abs(audio) > 1e-3)
    starts = [loud[0]] + [b for a, b in zip(loud[:-1], loud[1:]) if b - a > 0.15 * RATE]
    return [s / RATE for s in starts]


def check_notes(audio):
    starts = note_starts(audio)
    assert len(starts) == len(NOTES), f"expected {len(NOTES)} notes, heard onsets at {starts}"
    for t, pitch in zip(starts, NOTES):
        assert abs(cents(audio, RATE, t, pitch)) < 50
    assert np.allclose(np.diff(starts), GAP, atol=0.01)


@pytest.mark.parametrize("stop, effects", [(signal.SIGINT, []), (signal.SIGTERM, ["--effects", "gain:gain_db=-6"])],
                         ids=["sigint-direct", "sigterm-through-effects"])
def test_recording_is_finalised_when_the_player_is_stopped(jack_server, tone_model, tmp_path, stop, effects):
    take = tmp_path / "take.flac"
    proc = start_player(tone_model, take, *effects)
    try:
        out = lines_of(proc)
        wait_for(out, f"recording to {take}")
        played = play_notes(then=0.5)
        proc.send_signal(stop)
        assert proc.wait(timeout=20) == 0
        wait_for(out, "recorded")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not list(tmp_path.glob(".*.part"))
    info = sf.info(take)
    assert (info.samplerate, info.channels, info.format) == (RATE, 2, "FLAC")
    assert played - 0.5 < info.duration < played + 1.0
    audio, _ = sf.read(take, dtype="float32")
    assert np.array_equal(audio[:, 0], audio[:, 1])
    check_notes(audio[:, 0])
    first = audio[:int((note_starts(audio[:, 0])[0] + LENGTH) * RATE), 0]
    # the stored note (at the timbre's loudness gain) x (100/127)^2 velocity curve x 0.5 voice gain; -6 dB halves it
    expected = 0.5 * (100 / 127) ** 2 * stored_peak(tone_model, NOTES[0], LENGTH) * (0.5 if effects else 1.0)
    assert np.abs(first).max() == pytest.approx(expected, rel=0.05)


def test_a_killed_recording_is_recovered_with_every_note(jack_server, tone_model, tmp_path):
    take = tmp_path / "take.flac"
    proc = start_player(tone_model, take)
    try:
        out = lines_of(proc)
        wait_for(out, f"recording to {take}")
        played = play_notes(then=1.5)
        proc.kill()
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not take.exists()  # never finalised, so not passed off as a finished take
    part, = tmp_path.glob(".take.flac.*.part")
    r = subprocess.run([sys.executable, "-m", "synth", "recover", str(part)], capture_output=True, text=True)
    assert r.returncode == 0 and f"into {take}" in r.stdout, r.stderr
    assert not part.exists()
    info = sf.info(take)
    assert (info.samplerate, info.channels, info.format) == (RATE, 2, "FLAC")
    assert played - 1.0 < info.duration < played + 1.0  # the writer drains four times a second
    audio, _ = sf.read(take, dtype="float32")
    check_notes(audio[:, 0])
