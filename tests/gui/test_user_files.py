"""The user's own files, read back: a session or preset with wrongly typed values, a preset that does not load, a
user preset named like a shipped one, names in any script or too long, and effect chains with wrong types. Each
gets one line naming the file and the field, the rest goes on, and nothing wrong reaches the engine or is saved
back."""
import json
import math

import numpy as np
import pytest

from gui.instrument import Instrument
from gui.main_window import MainWindow
from gui.session import Session, load_session
from synth.engine.effects import EffectError, EffectsChain, parse_chain
from synth.core.timbre import Preset, PresetError, save_preset, scan_presets
from synth.runtime.model_file import ModelFile

BAD_SESSIONS = {
    "corners": 5, "master_db": "loud", "velocity": 1e12, "mappings": [1, 2], "devices": 5,
    "position": [math.nan, math.nan], "snap": "yes", "effects": [{"kind": "reverb", "params": [1]}],
}
MORE_BAD_SESSIONS = [
    {"position": [0.5]}, {"position": "middle"}, {"velocity": True}, {"mappings": {"morph_x": [0, 300]}},
    {"devices": {"rate": "fast"}}, {"devices": {"block": -1}}, {"corners": ["a", 3]}, {"master_db": math.inf},
    {"effects": [{"kind": "reverb", "bypass": "no"}]}, {"corners": ["x"] * 5}, [1, 2], "session",
    {"devices": {"drums": 3}}, {"devices": {"mod_target": ["Pad"]}}, {"devices": {"mod_target": "x" * 201}},
]


@pytest.mark.parametrize("bad", [{k: v} for k, v in BAD_SESSIONS.items()] + MORE_BAD_SESSIONS,
                         ids=lambda bad: json.dumps(bad, allow_nan=True)[:40])
def test_a_wrongly_typed_session_value_is_refused_naming_the_field_and_the_file_set_aside(tmp_path, bad):
    path = tmp_path / "session.json"
    path.write_text(json.dumps(bad, allow_nan=True))
    session, problem = load_session(path)
    assert session == Session() and problem is not None and "\n" not in problem
    assert str(path) in problem and "moved to session.json.corrupt-" in problem
    field = next(iter(bad)) if isinstance(bad, dict) else "the file"
    assert f"'{field.rstrip('s')}" in problem, problem  # 'effects' entries are named 'effect N …'
    assert not path.exists() and len(list(tmp_path.glob("session.json.corrupt-*"))) == 1


def test_session_values_out_of_range_are_brought_into_it(tmp_path):
    path = tmp_path / "session.json"
    path.write_text(json.dumps({"position": [2, -1], "master_db": 99, "unknown": 1}))
    session, problem = load_session(path)
    assert problem is None and session.position == [1.0, 0.0] and session.master_db == 6.0


@pytest.fixture
def window(qtbot, tone_model, tmp_path, monkeypatch):
    """make(shipped=[names]) → a window whose shipped presets are those (latents of the tone model's size)."""
    made = []
    shipped = tmp_path / "shipped"

    def make(names=("Keys", "Brass", "Organ", "Strings")):
        shipped.mkdir(exist_ok=True)
        for k, name in enumerate(names):
            save_preset(Preset(name, np.full(8, k + 1.0, np.float32)), shipped, overwrite=True)
        monkeypatch.setattr("gui.instrument.PRESETS_DIR", shipped)  # the shipped folder holds z=128 presets
        win = MainWindow(Instrument(ModelFile.read(tone_model), user_presets=tmp_path / "presets"),
                         tmp_path / "session.json", audio=False, midi=False)
        qtbot.addWidget(win)
        made.append(win)
        return win

    yield make
    for win in made:
        win.close()


def test_a_bad_session_does_not_stop_the_window_and_is_never_saved_back(window, tmp_path, capsys):
    (tmp_path / "session.json").write_text(json.dumps({"position": [math.nan, math.nan], "velocity": 1e12},
                                                      allow_nan=True))
    win = window()
    assert "could not be read ('position[0]' must be a finite number, not nan)" in capsys.readouterr().out
    assert np.isfinite(win.inst.z).all() and (win.pad.at_x, win.pad.at_y) == (0.5, 0.5)
    win.close()
    saved = json.loads((tmp_path / "session.json").read_text())
    assert saved["position"] == [0.5, 0.5] and saved["velocity"] == 100


def test_one_bad_user_preset_is_reported_and_the_others_load(window, tmp_path, capsys):
    user = tmp_path / "presets"
    save_preset(Preset("Mine", np.ones(8, np.float32)), user)
    save_preset(Preset("Also mine", -np.ones(8, np.float32)), user)
    (user / "broken.json").write_text('{"name": "Broken", "z": [1, 2')
    (user / "nan.json").write_text('{"name": "NaN", "z": [NaN, 0, 0, 0, 0, 0, 0, 0]}')
    win = window()
    names = [p.name for p in win.inst.presets]
    assert "Mine" in names and "Also mine" in names and "Broken" not in names and "NaN" not in names
    lines = [line for line in capsys.readouterr().out.splitlines() if "preset skipped" in line]
    assert len(lines) == 2 and any("broken.json is not readable JSON" in line for line in lines)
    assert any("nan.json: latent contains NaN" in line for line in lines)


def test_a_user_preset_named_like_a_shipped_one_stays_the_users(window, tmp_path):
    win = window()
    win.on_random(seed=5)
    path = win.save_current_preset("Keys", overwrite=False)
    mine = json.loads(path.read_text())["z"]
    win.corner_boxes[0].setCurrentIndex([p.name for p in win.inst.presets].index("Keys"))
    win.close()
    again = window()
    keys = [p for p in again.inst.presets if p.name == "Keys"]
    assert len(keys) == 1 and np.allclose(keys[0].z, mine)  # the user's, not the shipped one
    assert "Keys (shipped)" in [p.name for p in again.inst.presets]
    assert again.inst.corners[0].name == "Keys" and np.allclose(again.inst.corners[0].z, mine)


def test_names_in_any_script_are_kept_and_never_share_a_file(tmp_path):
    names = ["ピアノ", "Голос", "Keys!", "Keys?", "弦楽器 2", "ÉTÉ", "été"]
    paths = [save_preset(Preset(n, np.full(8, k, np.float32)), tmp_path) for k, n in enumerate(names[:-1])]
    assert len(set(paths)) == len(paths)
    assert {p.name for p in paths} >= {"ピアノ.json", "голос.json", "keys.json", "keys-2.json"}
    with pytest.raises(PresetError, match="already exists"):  # a name differing only in case is the same preset
        save_preset(Preset(names[-1], np.zeros(8, np.float32)), tmp_path)
    loaded, problems = scan_presets(8, tmp_path)
    assert problems == [] and sorted(p.name for p in loaded) == sorted(names[:-1])
    assert {p.name: float(p.z[0]) for p in loaded} == {n: float(k) for k, n in enumerate(names[:-1])}


def test_a_long_name_is_refused_in_one_line(window, tmp_path, capsys):
    win = window()
    assert win.save_current_preset("x" * 300, overwrite=False) is None
    out = capsys.readouterr().out
    assert "at most 100 characters, this one has 300" in out and not (tmp_path / "presets").exists()
    long_ok = "長" * 100  # 300 bytes in UTF-8: the file name is cut, the name is kept
    path = save_preset(Preset(long_ok, np.zeros(8, np.float32)), tmp_path / "p")
    assert len(path.name.encode()) <= 130 and scan_presets(8, tmp_path / "p")[0][0].name == long_ok


def test_a_corner_whose_preset_does_not_load_keeps_its_place_in_the_session(window, tmp_path, capsys):
    (tmp_path / "session.json").write_text(json.dumps({"corners": ["Gone", "Brass", "Organ", "Strings"]}))
    win = window()
    assert "preset 'Gone' is not loaded" in capsys.readouterr().out
    win.close()
    assert json.loads((tmp_path / "session.json").read_text())["corners"][0] == "Gone"


@pytest.mark.parametrize("chain, field", [
    ([{"kind": "reverb", "params": [1]}], "'effect 1 params' must be a JSON object"),
    ([{"kind": "reverb", "bypass": "no"}], "'effect 1 bypass' must be true or false, not 'no'"),
    ([{"kind": "delay"}, {"kind": "gain", "params": {"gain_db": "loud"}}], "'effect 2 params.gain_db'"),
    ([{"kind": "reverb", "params": {"room_size": 1e400}}], "must be a finite number"),
    ({"kind": "reverb"}, "'effects' must be a list"),
    ([{"kind": 5}], "'effect 1 kind' must be text"),
])
def test_bad_effect_chain_json_is_refused_naming_the_field(tmp_path, chain, field):
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(chain).replace("Infinity", "1e400"))
    with pytest.raises(EffectError) as e:
        parse_chain(str(path), 48000)
    assert field in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(EffectError):
        EffectsChain.from_list(48000, chain)
