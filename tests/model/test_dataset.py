"""The note set builder on a tiny real FluidSynth render."""
import csv

import numpy as np
import pytest

from synth.model import dataset


def test_tiny_build_has_labelled_audible_notes(tiny_notes):
    notes = dataset.load(tiny_notes)
    assert len(notes) == 2 * 9 * 2
    assert notes.audio.shape[1] == 192000                      # 4 s at 48 kHz
    assert set(notes.velocity.tolist()) == {70, 110}
    peaks = np.abs(notes.audio).max(axis=1)
    assert (peaks > 300).all() and (peaks < 32767).all()
    # The note starts at its onset: the first 50 ms hold sound, and the release is quieter than the hold.
    x = dataset.NoteSet.to_float(notes.audio)
    head = np.abs(x[:, :2400]).max(axis=1)
    hold = np.sqrt((x[:, 48000:96000] ** 2).mean(axis=1))
    tail = np.sqrt((x[:, -12000:] ** 2).mean(axis=1))
    assert (head > 0.005).all()
    assert (tail < hold).all()
    assert set(notes.family.tolist()) == {dataset.FAMILIES.index("piano"), dataset.FAMILIES.index("strings")}
    with open(tiny_notes / "metadata.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["soundfont"] for r in rows} == {"timgm6mb"}
    assert {r["split"] for r in rows} <= {"train", "test"}


def test_a_notes_other_velocities_are_its_own_instrument_at_its_own_pitch(tiny_notes):
    """layers_of finds the same soundfont's program at the same pitch at every velocity: the note itself among them."""
    notes = dataset.load(tiny_notes, "test")
    keys = [(str(s), int(p), int(k)) for s, p, k in zip(notes.soundfont, notes.program, notes.pitch)]
    layers = dataset.layers_of(tiny_notes, keys + [("timgm6mb", 0, 23)])
    assert layers[-1] == {}  # a pitch the set lacks
    for i, by_velocity in enumerate(layers[:-1]):
        assert set(by_velocity) == {70, 110}
        np.testing.assert_array_equal(by_velocity[int(notes.velocity[i])], dataset.NoteSet.to_float(notes.audio[i]))
        assert not np.array_equal(by_velocity[70], by_velocity[110])


def test_build_is_deterministic_and_resumes(tiny_notes, tmp_path):
    again = dataset.build(tmp_path, soundfonts=["timgm6mb"], programs=[0, 40], velocities=[70, 110],
                          pitches=list(range(24, 85, 7)), progress=False)
    a, b = dataset.load(tiny_notes), dataset.load(tmp_path)
    np.testing.assert_array_equal(a.audio, b.audio)
    # Resume: a missing unit is re-rendered, the others are kept as they are.
    unit = next((tmp_path / "units").iterdir())
    kept_mtime = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "units").iterdir() if p != unit}
    unit.unlink()
    assert dataset.build(tmp_path, soundfonts=["timgm6mb"], programs=[0, 40], velocities=[70, 110],
                         pitches=list(range(24, 85, 7)), progress=False) == again
    assert all((tmp_path / "units" / n).stat().st_mtime_ns == t for n, t in kept_mtime.items())


def test_silent_notes_are_dropped_and_counted(tmp_path):
    summary = dataset.build(tmp_path, soundfonts=["timgm6mb"], programs=[0], velocities=[1], pitches=[60],
                            gain=0.01, progress=False)
    assert summary["dropped_silent"] == 1 and summary["notes"] == 0


def test_bad_requests_name_the_problem(tmp_path):
    with pytest.raises(dataset.DatasetError, match="unknown soundfont 'nope'"):
        dataset.build(tmp_path, soundfonts=["nope"])
    with pytest.raises(dataset.DatasetError, match="out of range: 120"):
        dataset.build(tmp_path, soundfonts=["timgm6mb"], programs=[120])
    with pytest.raises(dataset.DatasetError, match="no note set"):
        dataset.load(tmp_path / "empty")


def test_any_soundfont_file_builds_a_note_set(tmp_path):
    """A soundfont given by its path: one the program knows keeps its name; another is named after its file."""
    import shutil

    known = dataset.available_soundfonts(["/usr/share/sounds/sf2/TimGM6mb.sf2"])
    assert list(known) == ["timgm6mb"]
    mine = tmp_path / "My Font (v2).sf2"
    shutil.copyfile("/usr/share/sounds/sf2/TimGM6mb.sf2", mine)
    summary = dataset.build(tmp_path / "set", soundfonts=[str(mine)], programs=[24], velocities=[90],
                            pitches=[48, 60], progress=False)
    assert summary["soundfonts"] == ["myfontv2"] and summary["notes"] == 2
    assert dataset.load(tmp_path / "set").program.tolist() == [24, 24]


def test_a_soundfont_path_that_is_no_soundfont_is_one_line(tmp_path):
    with pytest.raises(dataset.DatasetError, match="soundfont .*missing.sf2 not found"):
        dataset.available_soundfonts([str(tmp_path / "missing.sf2")])
    (tmp_path / "fake.sf2").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    with pytest.raises(dataset.DatasetError, match="is not a SoundFont"):
        dataset.available_soundfonts([str(tmp_path / "fake.sf2")])


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"soundfonts": 5}', '{"soundfonts": [{"a": 1}]}'])
def test_a_damaged_build_summary_reads_as_none(tiny_notes, tmp_path, text):
    """A note set whose build.json was damaged still loads for an import check (its held-out split), and the
    exported model's facts leave the set's soundfonts unknown instead of failing."""
    import shutil

    from synth.model.import_check import unseen_notes
    from synth.model.voice_export import _data_facts

    copy = tmp_path / "set"
    shutil.copytree(tiny_notes, copy)
    (copy / "build.json").write_text(text)
    notes, which = unseen_notes(copy, ["timgm6mb"], limit=100, seed=0)
    assert which == "held-out split" and len(notes) > 0
    assert set(notes.pitch.tolist()) <= set(range(24, 85, 7))
    facts = _data_facts(str(copy))
    assert facts["dataset_notes"] is None
