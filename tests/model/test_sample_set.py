"""`dataset build --samples DIR`: a folder of one-shot recordings becomes a note set training reads; what a file
name says (pitch, velocity) is read from it, the rest detected; files that are no note are skipped with the
reason, and a folder with no usable note is one line with nothing written. Real soundfont notes, real files."""
import os
import re

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from synth.cli import main
from synth.model import dataset
from synth.model.sample_set import build_from_samples, family_from_name, pitch_from_name, velocity_from_name

RATE = 48000


def write(path, audio, rate=RATE, channels=1, subtype="PCM_16"):
    from synth.core.resample import resample

    path.parent.mkdir(parents=True, exist_ok=True)
    x = resample(audio, int(round(len(audio) * rate / RATE))) if rate != RATE else audio
    sf.write(path, np.repeat(x[:, None], channels, axis=1), rate, subtype=subtype)
    return path


@pytest.fixture
def recordings(tiny_notes, tmp_path):
    """Violin notes (three named, one to detect) and piano notes in folders, with a text file, a silent file and
    a click among them."""
    violin = {v: dataset.real_notes(tiny_notes, 40, [45, 52, 59], velocity=v) for v in (70, 110)}
    piano = dataset.real_notes(tiny_notes, 0, [59, 66], velocity=110)
    folder = tmp_path / "My Samples"
    write(folder / "Violin" / "Violin_A2_ff.wav", violin[110][45], rate=44100, channels=2)
    write(folder / "Violin" / "violin-52-v70.flac", violin[70][52])
    write(folder / "Violin" / "takes" / "violin take 3.wav", violin[110][59], rate=96000, channels=3,
          subtype="PCM_24")
    write(folder / "Violin" / "silence.wav", np.zeros(RATE, np.float32))
    write(folder / "Violin" / "click.wav", violin[110][45][:int(0.05 * RATE)])
    (folder / "Violin" / "notes.txt").write_text("bowed, close mic")
    write(folder / "Grand" / "Grand B3.wav", piano[59])
    write(folder / "Grand" / "Grand 66.aiff", piano[66])
    return folder, violin, piano


def test_a_folder_of_recordings_becomes_a_note_set_training_reads(recordings, tmp_path):
    folder, violin, piano = recordings
    out = tmp_path / "set"
    summary = build_from_samples(folder, out)
    assert summary["instruments"] == {
        "Grand": {"family": "piano", "program": 0, "notes": 2, "pitches detected": 0},
        "Violin": {"family": "strings", "program": 40, "notes": 3, "pitches detected": 1}}
    assert set(summary["skipped"]) == {"Violin/silence.wav", "Violin/click.wav"}
    assert "silent" in summary["skipped"]["Violin/silence.wav"]
    assert "0.2 s" in summary["skipped"]["Violin/click.wav"]

    notes = dataset.load(out)
    rows = sorted(zip(notes.program.tolist(), notes.pitch.tolist(), notes.velocity.tolist()))
    assert rows == [(0, 59, 100), (0, 66, 100), (40, 45, 112), (40, 52, 70), (40, 59, 100)]
    assert notes.audio.shape[1] == 4 * RATE
    x = dataset.NoteSet.to_float(notes.audio)
    by = {(p, v): x[i] for i, (p, v) in enumerate(zip(notes.pitch.tolist(), notes.velocity.tolist()))
          if notes.program[i] == 40}
    # One gain per instrument: the loudest note at -6 dBFS, the others as much quieter as they were recorded.
    assert max(np.abs(a).max() for a in by.values()) == pytest.approx(0.5, abs=1e-3)
    recorded = np.abs(violin[70][52]).max() / np.abs(violin[110][45]).max()
    assert np.abs(by[52, 70]).max() / np.abs(by[45, 112]).max() == pytest.approx(recorded, rel=0.05)
    # The note whose name gives no pitch is at that pitch (tuned to it), and it is the recording's sound.
    from synth.model.one_shot import detect_pitch

    assert detect_pitch(by[59, 100]) == pytest.approx(59, abs=0.05)
    spectrum = [np.abs(np.fft.rfft(a[RATE // 10:RATE] * np.hanning(RATE - RATE // 10))) for a in
                (by[59, 100], violin[110][59])]
    assert np.corrcoef(*spectrum)[0, 1] > 0.9

def test_a_build_resumes_and_redoes_only_what_changed(recordings, tmp_path):
    folder, violin, _ = recordings
    out = tmp_path / "set"
    build_from_samples(folder, out)
    units = {p.name: p.stat().st_mtime_ns for p in (out / "units").glob("*.json")}
    build_from_samples(folder, out)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "units").glob("*.json")} == units
    inside = folder / "set"  # a set written inside the folder it reads is not taken for recordings next time
    assert build_from_samples(folder, inside)["notes"] == build_from_samples(folder, inside)["notes"] == 5
    write(folder / "Grand" / "Grand 66.aiff", 0.5 * violin[110][45])  # re-recorded
    os.utime(folder / "Grand" / "Grand 66.aiff", ns=(1, 1))
    build_from_samples(folder, out)
    changed = {p.name for p in (out / "units").glob("*.json") if p.stat().st_mtime_ns != units[p.name]}
    assert changed == {"mysamples-000-100.json"}


@pytest.mark.parametrize("files, said", [
    ({}, "no usable notes in .*: it holds no audio files"),
    ({"a/readme.txt": "text"}, "no usable notes in .*: it holds no audio files"),
    ({"Violin/quiet.wav": "silence"}, r"no usable notes in .* \(Violin/quiet.wav: .* is silent"),
    ({"Violin/noise.wav": "noise"}, r"no usable notes in .*no stable pitch.*put its note in the file's name"),
    ({"Violin/broken.wav": "corrupt"}, "no usable notes in .*not an audio file"),
    ({"Thing/C4.wav": "tone"}, "cannot tell the GM family of 'Thing'.*--family"),
])
def test_a_folder_with_no_usable_note_is_one_line_and_writes_nothing(tmp_path, files, said):
    folder = tmp_path / "in"
    folder.mkdir()
    t = np.arange(RATE) / RATE
    sounds = {"silence": np.zeros(RATE, np.float32),
              "noise": np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.3,
              "tone": (0.3 * np.sin(2 * np.pi * 261.6 * t)).astype(np.float32)}
    for name, kind in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind in sounds:
            write(path, sounds[kind])
        else:
            path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" if kind == "corrupt" else kind.encode())
    out = tmp_path / "set"
    with pytest.raises(SystemExit) as e:
        main(["dataset", "build", "--samples", str(folder), "--out", str(out)])
    message = str(e.value.code)
    assert message.startswith("gansynth-live: ") and "\n" not in message
    assert re.search(said, message), message
    assert not out.exists()


def test_soundfont_options_with_samples_are_refused(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["dataset", "build", "--samples", str(tmp_path), "--programs", "0", "--out", str(tmp_path / "o")])
    assert "--programs is for soundfonts" in str(e.value.code)
    with pytest.raises(SystemExit) as e:
        main(["dataset", "build", "--family", "bass", "--soundfonts", "nope", "--out", str(tmp_path / "o")])
    assert "--family is for --samples" in str(e.value.code)


def test_what_file_names_say():
    assert [pitch_from_name(s) for s in ("Piano.ff.C4", "cello_A#2_mf", "Db5 long", "flute-60-v100", "kalimba 3",
                                         "take_01", "Bass E1", "sax_cs4", "noname", "B#9", "x ² C٣")] == [
        60, 46, 73, 60, None, None, 28, 61, None, None, None]
    assert [velocity_from_name(s) for s in ("Piano.ff.C4", "flute-60-v100", "x_vel64", "Violin p A3", "y",
                                            "v200")] == [112, 100, 64, 49, None, None]
    assert [family_from_name(s) for s in ("Cello", "My Alto Sax", "string bass", "Bass Clarinet", "pads",
                                          "Strings", "Thing")] == [
        "strings", "reed", "bass", "reed", None, "strings", None]


@given(st.text(max_size=60))
def test_any_file_name_gives_a_pitch_in_midi_range_or_none(stem):
    p = pitch_from_name(stem)
    assert p is None or 0 <= p <= 127
    v = velocity_from_name(stem)
    assert v is None or 1 <= v <= 127
    assert family_from_name(stem) in (None, *dataset.FAMILIES)


def test_each_instrument_of_a_set_gets_a_preset_that_plays_on_the_model(recordings, tiny_model, tmp_path, capsys):
    from synth.core.timbre import load_preset, preset_path
    from synth.runtime.model import NoteModel

    folder, _, _ = recordings
    build_from_samples(folder, tmp_path / "set")
    out = tmp_path / "presets"
    main(["presets", "instruments", str(tmp_path / "set"), "--model", str(tiny_model), "--out", str(out),
          "--steps", "2", "--json", str(tmp_path / "rows.json")])
    said = capsys.readouterr().out
    model = NoteModel(tiny_model)
    for name in ("Grand", "Violin"):
        assert re.search(rf"{name}: from its MIDI \d+ note; log-spectral distance to its own notes \(median of \d\) "
                         r"\d+\.\d dB", said), said
        preset = load_preset(preset_path(name, out)[0], model.info.z_dim)
        audio = model.render(preset.z[None], np.array([60]), np.array([100 / 127]))
        assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
    with pytest.raises(SystemExit) as e:  # nothing replaced unless told, said before the work
        main(["presets", "instruments", str(tmp_path / "set"), "--model", str(tiny_model), "--out", str(out)])
    assert "already exists" in str(e.value.code) and "\n" not in str(e.value.code)
    with pytest.raises(SystemExit) as e:
        main(["presets", "instruments", str(tmp_path / "set"), "--only", "Tuba", "--out", str(out)])
    assert "no instrument named Tuba" in str(e.value.code) and "Grand, Violin" in str(e.value.code)


def test_a_soundfont_sets_instruments_are_named_by_their_gm_programs(tiny_notes):
    from synth.model.instrument_presets import instruments

    assert instruments(tiny_notes) == {("timgm6mb", 0): "timgm6mb Acoustic Grand Piano",
                                       ("timgm6mb", 40): "timgm6mb Violin"}


def test_family_option_names_only_the_folders_that_do_not_say_it(recordings, tmp_path):
    folder, violin, _ = recordings
    write(folder / "Thing" / "Thing C4.wav", violin[110][45])
    summary = build_from_samples(folder, tmp_path / "set", family="bass")
    assert {k: v["family"] for k, v in summary["instruments"].items()} == {
        "Grand": "piano", "Violin": "strings", "Thing": "bass"}


def test_a_note_set_of_other_sources_is_never_written_over(recordings, tmp_path):
    folder, _, _ = recordings
    with pytest.raises(dataset.DatasetError, match="holds the recordings"):
        build_from_samples(folder, folder)
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / "build.json").write_text('{"soundfonts": ["timgm6mb"]}')
    with pytest.raises(dataset.DatasetError, match="holds the note set of timgm6mb"):
        build_from_samples(folder, fonts)
    assert sorted(p.name for p in fonts.iterdir()) == ["build.json"]
    mine = tmp_path / "mine"
    build_from_samples(folder, mine)
    with pytest.raises(dataset.DatasetError, match="holds a note set of recordings"):
        dataset.build(mine, ["timgm6mb"], programs=[0], velocities=[100], pitches=[60], progress=False)
    assert dataset.load(mine).program.tolist().count(40) == 3  # the recordings are all still there


def test_a_louder_new_recording_levels_every_layer_of_its_instrument_again(recordings, tmp_path):
    folder, violin, _ = recordings
    out = tmp_path / "set"
    build_from_samples(folder, out)
    soft = out / "units" / "mysamples-040-070.json"
    before = soft.stat().st_mtime_ns
    loud = violin[110][52] / np.abs(violin[110][52]).max() * 0.99
    write(folder / "Violin" / "Violin_E3_ff.wav", loud)
    build_from_samples(folder, out)
    assert soft.stat().st_mtime_ns != before  # the pp layer's level follows the instrument's new loudest note
