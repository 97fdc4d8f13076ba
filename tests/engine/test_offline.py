"""Offline rendering of MIDI files with the engine: onsets, pitches, tempo changes, sustain, errors."""
import subprocess
import sys

import numpy as np
import pytest

from tests.audio_checks import cents
from synth.audio_io import read_wav
from synth.demo import DEMO_MIDI
from synth.core.timbre import Preset
from synth.engine.offline import channel_presets, notes_by_program, preset_for_program, read_midi_file, render_midi
from synth.runtime.model import NoteModel

RATE = 48000


def note_ons(path, channel=None):
    return [(e.seconds, e.d1) for e in read_midi_file(path)[0] if e.status & 0xF0 == 0x90 and e.d2 > 0
            and (channel is None or e.status & 0x0F == channel)]


@pytest.fixture(scope="module")
def demo_render(tone_model):
    return render_midi(DEMO_MIDI, NoteModel(tone_model, provider="cpu"), [], rate=RATE)


@pytest.mark.parametrize("channel", [0, 1, 2])
def test_demo_piece_onsets_and_pitches_match_the_file(tone_model, channel):
    """Each channel rendered alone (a stem) with a 20 ms release: every note of the piece is preceded by silence,
    so its onset is the first sample that sounds, and its pitch is the spectral peak just after. Flat levels: a
    slowly rising GM program (the pad's) would fade its notes in past the 1e-3 this onset is read at."""
    model = NoteModel(tone_model, provider="cpu")
    audio = render_midi(DEMO_MIDI, model, [], rate=RATE, channels={channel}, release=0.02,
                        gm_levels=False).audio[:, 0]
    notes = note_ons(DEMO_MIDI, channel)
    assert len(notes) >= 16
    for t in sorted({t for t, _ in notes}):
        start = max(int((t - 0.008) * RATE), 0)
        assert np.abs(audio[start:int(t * RATE) + 1]).max() < 1e-3, f"sound before the note at {t:.3f} s"
        first = start + int(np.argmax(np.abs(audio[start:]) > 1e-3))
        assert abs(first / RATE - t) < 0.010, f"onset at {first / RATE:.4f} s, file says {t:.4f} s"
    errors = [cents(audio, RATE, t, p) for t, p in notes]
    assert np.max(np.abs(errors)) < 50, errors


def test_tempo_change_is_honoured():
    events = read_midi_file(DEMO_MIDI)[0]
    ons = sorted({round(e.seconds, 4) for e in events if e.status & 0xF0 == 0x90 and e.d2 > 0})
    # 100 bpm for six bars (0.6 s a beat), then 84 bpm (0.714 s a beat).
    assert ons[-1] == pytest.approx(24 * 0.6 + 6 * 60 / 84, abs=1e-3)  # the last bass note, beat 30


def test_sustain_pedal_holds_the_chords(demo_render):
    audio = demo_render.audio[:, 0]
    # The first chord's keys are let go after one beat (0.6 s) but the pedal holds them to beat 3.9 (2.34 s).
    level = lambda t: np.abs(audio[int(t * RATE):int((t + 0.05) * RATE)]).max()
    from tests.audio_checks import band_amplitude, hz
    amp = band_amplitude(audio, RATE, hz(55), np.array([0.3, 2.0, 2.9]), 0.05)
    assert amp[1] > 0.5 * amp[0] and amp[2] < 0.2 * amp[0]
    last = read_midi_file(DEMO_MIDI)[0][-1].seconds  # the final pedal-up; then the tone model's own 1 s release
    assert len(audio) / RATE == pytest.approx(last + 1.0, abs=0.02)
    assert level(len(audio) / RATE - 0.05) < 0.2 * level(last - 0.1)
    assert audio[-1] == 0 and np.abs(audio[-10:]).max() < 1e-5  # the release ends in silence, not cut off


def test_programs_map_to_the_nearest_preset_family():
    z = np.zeros(4, np.float32)
    presets = [Preset("Keys", z, "piano"), Preset("Pad", z, "synth_pad"), Preset("Flute", z, "pipe")]
    assert preset_for_program(0, presets) == 0
    assert preset_for_program(89, presets) == 1
    assert preset_for_program(73, presets) == 2
    assert preset_for_program(80, presets) == 1  # synth lead → nearest family with a preset: synth pad
    mapping = channel_presets(notes_by_program(read_midi_file(DEMO_MIDI)[0]), presets)
    assert mapping == {(0, 89): 1, (1, 73): 2, (2, 33): 0}  # bass (family 4): piano (0) is nearer than pad (11)


def test_programs_of_families_without_a_preset_take_a_stand_in():
    """Agogo is struck, a sitar plucked, a bagpipe blown: each goes to the preset a player would pick, not to the
    pad whose family number happens to be nearest; programs with no stand-in still take the nearest family."""
    z = np.zeros(4, np.float32)
    presets = [Preset("Pad", z, "synth_pad"), Preset("Mallets", z, "chromatic_percussion"),
               Preset("Guitar", z, "guitar"), Preset("Reeds", z, "reed")]
    assert preset_for_program(113, presets) == 1          # Agogo
    assert preset_for_program(104, presets) == 2          # Sitar
    assert preset_for_program(109, presets) == 3          # Bagpipe
    assert preset_for_program(126, presets) == 0          # Applause: nearest family, the pad
    assert preset_for_program(110, presets[:2]) == 0      # Fiddle, no strings preset: nearest family
    ethnic = presets + [Preset("Koto", z, "ethnic")]
    assert preset_for_program(107, ethnic) == 4           # the family's own preset comes first


def test_render_command_writes_flac_and_reports(tone_model, tmp_path):
    out = tmp_path / "demo.flac"
    proc = subprocess.run([sys.executable, "-m", "synth", "render", str(DEMO_MIDI), "-o", str(out),
                           "--model", str(tone_model), "--rate", "44100"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "real time" in proc.stdout
    from pedalboard.io import AudioFile
    with AudioFile(str(out)) as f:
        assert f.samplerate == 44100 and f.frames / 44100 > 20
    assert not list(tmp_path.glob(".*part*"))


def test_corrupt_midi_is_one_clear_line(tone_model, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00\x00\x90")
    out = tmp_path / "x.wav"
    proc = subprocess.run([sys.executable, "-m", "synth", "render", str(bad), "-o", str(out),
                           "--model", str(tone_model)], capture_output=True, text=True)
    assert proc.returncode != 0 and not out.exists()
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gansynth-live:")]
    assert len(lines) == 1 and "not a readable MIDI file (" in lines[0] and "()" not in lines[0]
    assert "Traceback" not in proc.stderr


def test_demo_command_renders_the_bundled_piece(tone_model, tmp_path):
    out = tmp_path / "demo.wav"
    proc = subprocess.run([sys.executable, "-m", "synth", "demo", "--model", str(tone_model), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    audio, sr = read_wav(out)
    assert sr == RATE and 0.05 < np.abs(audio).max() < 1.0


def test_bundled_demo_midi_is_what_demo_py_writes(tmp_path):
    from synth.demo import write_demo_midi
    write_demo_midi(tmp_path / "demo.mid")
    assert (tmp_path / "demo.mid").read_bytes() == DEMO_MIDI.read_bytes()
