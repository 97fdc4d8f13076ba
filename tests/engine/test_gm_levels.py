"""GM program levels: the shipped table is what FluidSynth measures, a render plays each channel at its program's
level at each key, and a damaged table is one line."""
import json
import subprocess
import sys

import mido
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.engine import gm_levels
from synth.engine.offline import render_midi
from synth.runtime.model import NoteModel

FLUIDR3 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def test_the_shipped_table_is_fluidr3_measured_again():
    """`levels --calibrate` on FluidR3 gives the shipped table back (to 0.2 dB): it is measured, not typed."""
    shipped = json.loads(gm_levels.DEFAULT_TABLE.read_text())
    again = gm_levels.measure(FLUIDR3)
    assert shipped["soundfont"] == "FluidR3_GM.sf2" and shipped["keys"] == again["keys"]
    np.testing.assert_allclose(np.array(shipped["db"]), np.array(again["db"]), atol=0.2)
    np.testing.assert_allclose(np.array(shipped["rise_ms"]), np.array(again["rise_ms"]), atol=20)
    gains, rise = gm_levels.load()
    assert gains.shape == (128, 128)
    at_c4 = 20 * np.log10(gains[:112, 60])
    assert abs(np.median(at_c4)) < 0.01  # the median melodic program at middle C is the bank's own level
    assert 20 * np.log10(gains[113, 60]) < -5  # FluidR3's agogo is quiet, its guitars' bass keys loud
    assert 20 * np.log10(gains[24, 36]) > 20 * np.log10(gains[24, 60]) + 2
    assert rise[0, 60] <= 0.02 and rise[119, 60] > 1.0  # a piano speaks at once, a reverse cymbal swells in


def _two_programs(path, programs, key=60):
    """Two channels, one program each, playing the same key one after the other."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for ch, program in enumerate(programs):
        track.append(mido.Message("program_change", channel=ch, program=program, time=0))
    for ch in range(len(programs)):
        track.append(mido.Message("note_on", channel=ch, note=key, velocity=100, time=0 if ch == 0 else 240))
        track.append(mido.Message("note_off", channel=ch, note=key, velocity=0, time=960))
    mid.save(str(path))


def _level(audio, start, seconds=0.4, rate=48000):
    x = audio[int(start * rate):int((start + seconds) * rate)].astype(np.float64)
    return 10 * np.log10(np.mean(x * x))


@pytest.mark.parametrize("key", [48, 66])
def test_a_render_plays_each_program_at_its_level(tone_model, tmp_path, key):
    """Piano and agogo, both played by the same preset: with GM levels their notes differ by the table's
    difference at that key; flat, they are equally loud."""
    path = tmp_path / "two.mid"
    _two_programs(path, [0, 113], key)
    model = NoteModel(tone_model, threads=1)
    gains = 20 * np.log10(gm_levels.load().gain)
    for levels, want in ((True, gains[113, key] - gains[0, key]), (False, 0.0)):
        audio = render_midi(path, model, [], gm_levels=levels).audio
        # note 1 plays 0-1 s, note 2 1.25-2.25 s (120 bpm, 480 ticks a beat)
        got = _level(audio, 1.55) - _level(audio, 0.3)
        assert got == pytest.approx(want, abs=0.3), levels


def test_a_swelling_program_fades_in_over_its_rise(tone_model, tmp_path):
    """A reverse cymbal's notes fade in linearly over the table's rise (FluidR3: about 1.5 s at middle C), so its
    short notes are as quiet as FluidSynth's, and a note let go fades in no more; flat levels speak at once."""
    path = tmp_path / "swell.mid"
    _two_programs(path, [119], key=60)  # one note, 0-1 s
    table = gm_levels.load()
    rise, gain = float(table.rise[119, 60]), 20 * np.log10(table.gain[119, 60])
    assert rise > 1.0
    model = NoteModel(tone_model, threads=1)
    swell = render_midi(path, model, []).audio
    flat = render_midi(path, model, [], gm_levels=False).audio
    for part in (0.25, 0.5):
        got = _level(swell, rise * part - 0.01, 0.02) - _level(flat, rise * part - 0.01, 0.02) - gain
        assert got == pytest.approx(20 * np.log10(part), abs=0.5), part
    released = [_level(swell, t, 0.02) - _level(flat, t, 0.02) for t in (0.99, 1.1, 1.2)]
    assert max(released) - min(released) < 0.3  # both release alike from where they are
    assert _level(flat, 0.01, 0.02) == pytest.approx(_level(flat, 0.5, 0.2), abs=1.0)


def test_render_flat_levels_and_levels_without_files(tone_model, tmp_path):
    path = tmp_path / "two.mid"
    _two_programs(path, [0, 113])
    out = tmp_path / "flat.wav"
    proc = subprocess.run([sys.executable, "-m", "synth", "render", str(path), "-o", str(out), "--model",
                           str(tone_model), "--flat-levels"], capture_output=True, text=True)
    assert proc.returncode == 0 and out.is_file(), proc.stderr
    proc = subprocess.run([sys.executable, "-m", "synth", "levels"], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("gansynth-live: levels needs GM files to compare, or "
                                                    "--calibrate OUT.json")


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=4),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3), max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(keys=json_values | st.lists(st.integers(0, 127), min_size=1, max_size=4),
       db=json_values | st.lists(st.lists(st.floats(-40, 30), min_size=1, max_size=4), min_size=127, max_size=129),
       rise=st.sampled_from([None, "same shape"]) | json_values
       | st.floats(-100, 4000) | st.sampled_from([float("nan"), float("inf")]))
def test_any_damaged_table_is_refused_in_one_line_or_loads_bounded(tmp_path_factory, keys, db, rise):
    path = tmp_path_factory.mktemp("t") / "levels.json"
    table = {"keys": keys, "db": db}
    if rise == "same shape" or isinstance(rise, float):  # every value one number, maybe out of range
        fill = 500.0 if rise == "same shape" else rise
        rise = [[fill] * len(row) if isinstance(row, list) else fill for row in db] if isinstance(db, list) else fill
    if rise is not None:
        table["rise_ms"] = rise
    path.write_text(json.dumps(table))
    try:
        gains, rise = gm_levels.load(path)
    except gm_levels.GmLevelsError as e:
        assert "\n" not in str(e) and str(path) in str(e)
    else:
        assert gains.shape == rise.shape == (128, 128) and np.isfinite(gains).all() and np.isfinite(rise).all()
        assert 0 <= rise.min() and rise.max() <= gm_levels.MAX_RISE_MS / 1000
        assert gains.min() >= 10 ** (gm_levels.LIMITS_DB[0] / 20) * 0.999
        assert gains.max() <= 10 ** (gm_levels.LIMITS_DB[1] / 20) * 1.001


def test_a_missing_or_garbled_table_is_one_line(tmp_path):
    with pytest.raises(gm_levels.GmLevelsError, match="is not a GM level table"):
        gm_levels.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(gm_levels.GmLevelsError, match="is not a GM level table"):
        gm_levels.load(tmp_path / "bad.json")


def test_the_bank_levels_notes_to_the_tables_middle_c():
    """A note at velocity 100 plays (voices' gain 0.5) at the level of the table's median program at middle C."""
    from synth.engine.bank import REFERENCE_LUFS

    reference = json.loads(gm_levels.DEFAULT_TABLE.read_text())["reference_lufs"]
    assert REFERENCE_LUFS + 20 * np.log10(0.5) == pytest.approx(reference, abs=0.1)
