"""Random session, preset and effect-chain JSON (hypothesis) into the real loaders: nothing raises but the
documented one-line error, nothing non-finite or wrongly typed gets through, and nothing is written anywhere but
the paths given."""
import json
import math
import os
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gui.session import MASTER_DB, Session, check_session, load_session, save_session
from synth.engine.effects import BUILTINS, EffectError, EffectsChain
from synth.core.timbre import MAX_NAME, Preset, PresetError, load_preset, save_preset

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
Z = 8

scalars = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=20)


def near(keys, values=json_values):
    """Objects that mostly use the real field names, with any values (often almost right)."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), values, max_size=len(keys) + 1)


effect_entries = near(["kind", "params", "bypass", "uid", "path", "state"],
                      json_values | st.sampled_from(list(BUILTINS) + ["plugin"])
                      | st.dictionaries(st.sampled_from([p for _, spec in BUILTINS.values() for p in spec]),
                                        scalars, max_size=3))
sessions = near(["corners", "position", "snap", "master_db", "effects", "devices", "mappings", "velocity", "model"],
                json_values | st.lists(scalars, min_size=2, max_size=2) | st.lists(effect_entries, max_size=3)
                | near(["audio_out", "host_api", "rate", "block", "midi_in", "midi_api"], scalars))


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def well_typed(s: Session) -> None:
    """What the window hands on to the instrument and the engine: typed and finite."""
    assert isinstance(s.corners, list) and len(s.corners) <= 4 and all(isinstance(c, str) for c in s.corners)
    assert len(s.position) == 2 and all(type(v) is float and 0 <= v <= 1 for v in s.position)
    assert type(s.snap) is bool and type(s.master_db) is float and MASTER_DB[0] <= s.master_db <= MASTER_DB[1]
    assert type(s.velocity) is int and 0 <= s.velocity <= 127
    for fx in s.effects:
        assert isinstance(fx["kind"], str) and type(fx["bypass"]) is bool
        assert all(type(v) is float and math.isfinite(v) for v in fx["params"].values())
    for key, value in s.devices.items():
        assert (type(value) is int) if key in ("rate", "block") else (value is None or isinstance(value, str))
    assert all(type(c) is int and type(n) is int for c, n in s.mappings.values())
    assert s.model is None or isinstance(s.model, str)


@SETTINGS
@given(data=sessions | json_values)
def test_random_session_files_load_typed_or_are_set_aside_in_one_line(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("config")
    path = folder / "session.json"
    path.write_text(json.dumps(data, allow_nan=True))
    session, problem = load_session(path)
    well_typed(session)
    if problem is None:
        assert files_in(folder) == {"session.json"}
        save_session(session, path)  # what was accepted is saved as valid JSON and reads back the same
        assert check_session(json.loads(path.read_text()), str(path)) == session
    else:
        assert "\n" not in problem and str(path) in problem and session == Session()
        assert len(files_in(folder)) == 1 and next(iter(files_in(folder))).startswith("session.json.corrupt-")


latents = st.lists(st.floats(-1e3, 1e3) | st.floats(allow_nan=True, allow_infinity=True), min_size=Z - 1,
                   max_size=Z + 1)
presets = st.fixed_dictionaries({"name": st.text(max_size=120) | json_values, "z": latents | json_values},
                                optional={"family": st.text(max_size=10) | scalars,
                                          "description": st.text(max_size=10) | scalars, "extra": json_values})


@SETTINGS
@given(data=presets | json_values)
def test_random_preset_files_load_finite_or_give_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("presets") / "p.json"
    path.write_text(json.dumps(data, allow_nan=True))
    try:
        preset = load_preset(path, Z)
    except PresetError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert preset.z.dtype == np.float32 and preset.z.shape == (Z,) and np.isfinite(preset.z).all()
    assert isinstance(preset.name, str) and 0 < len(preset.name) <= MAX_NAME and preset.name.strip()


@SETTINGS
@given(names=st.lists(st.text(min_size=1, max_size=130), min_size=1, max_size=4))
def test_any_names_save_inside_the_folder_and_read_back_as_typed(tmp_path_factory, names):
    root = tmp_path_factory.mktemp("user")
    folder = root / "presets"
    saved = {}
    for k, name in enumerate(names):
        try:
            path = save_preset(Preset(name, np.full(Z, k, np.float32)), folder, overwrite=True)
        except PresetError as e:
            assert "\n" not in str(e)
            continue
        assert path.parent == folder and not path.name.startswith(".")
        saved[name.casefold()] = (name, k)
    assert all(f == "presets" or f.startswith("presets/") for f in files_in(root))  # nothing beside the folder
    assert not folder.exists() or not list(folder.glob(".*"))  # no temp files left
    loaded = {load_preset(p, Z).name.casefold(): load_preset(p, Z) for p in folder.glob("*.json")} \
        if folder.exists() else {}
    assert set(loaded) == set(saved)
    for key, (name, k) in saved.items():
        assert loaded[key].z[0] == k


@SETTINGS
@given(items=st.lists(effect_entries, max_size=4) | json_values)
def test_random_effect_chains_build_finite_or_give_one_line(tmp_path_factory, items):
    cwd = Path.cwd()
    before = set(os.listdir(cwd))
    try:
        chain = EffectsChain.from_list(48000, items, "effects file chain.json")
    except EffectError as e:
        assert "\n" not in str(e) and str(e).startswith(("effects file chain.json", "no effect called",
                                                        "no plugin at", "plugin ", "reverb", "delay", "chorus",
                                                        "compressor", "filter", "gain", "'")), str(e)
        return
    finally:
        assert set(os.listdir(cwd)) == before
    for fx in chain.effects:
        assert all(math.isfinite(v) and lo <= v <= hi for v, lo, hi in fx.parameters().values())
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 512)).astype(np.float32)
    assert np.isfinite(chain.process(x)).all()
