"""The window, offscreen (pytest-qt), with the real engine in its sound process and the analytic tone model: the
pad morphs by slerp, corners, keyboard, MIDI learn, presets, and the session round trip including a corrupt file."""
import shutil
import json
import os

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt

from gui.instrument import Instrument
from gui.keyboard import Keyboard
from gui.main_window import MainWindow
from synth.core.timbre import morph, slerp
from synth.runtime.model_file import ModelFile


@pytest.fixture
def open_window(qtbot, tone_model, tmp_path):
    windows = []

    def make():
        inst = Instrument(ModelFile.read(tone_model), user_presets=tmp_path / "presets")
        win = MainWindow(inst, tmp_path / "session.json", audio=False, midi=False)
        qtbot.addWidget(win)
        win.show()
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.close()


def playing(win):
    """The latent the sound process plays now."""
    return np.asarray(win.inst.status().z, np.float32)


def pad_point(pad, x, y):
    a = pad._area()
    return QPoint(round(a.left() + x * a.width()), round(a.top() + y * a.height()))


def test_dragging_the_pad_plays_the_slerp_of_the_corners(open_window, qtbot):
    win = open_window()
    qtbot.mouseClick(win.pad, Qt.MouseButton.LeftButton, pos=pad_point(win.pad, 0.25, 0.75))
    x, y = win.pad.at_x, win.pad.at_y
    assert abs(x - 0.25) < 0.01 and abs(y - 0.75) < 0.01
    tl, tr, bl, br = (c.z for c in win.inst.corners)
    expected = slerp(slerp(tl, tr, x), slerp(bl, br, x), y)
    qtbot.waitUntil(lambda: np.allclose(playing(win), expected, atol=1e-6))  # banks start ≤ 10 per second
    assert win.inst.sound.pid != os.getpid()  # the sound runs beside the window, not in it


def test_changing_a_corner_preset_changes_the_timbre(open_window, qtbot):
    win = open_window()
    win.pad.set_position(0.0, 0.0)  # exactly the top-left corner
    qtbot.waitUntil(lambda: np.allclose(playing(win), win.inst.corners[0].z))
    win.corner_boxes[0].setCurrentIndex(3)
    assert win.inst.corners[0].name == win.inst.presets[3].name
    qtbot.waitUntil(lambda: np.allclose(playing(win), win.inst.presets[3].z))


def test_keyboard_plays_notes_into_the_engine(open_window, qtbot):
    win = open_window()
    win.velocity.setValue(0)  # velocity by click height
    kb: Keyboard = win.keyboard
    r = kb.key_rect(60)
    qtbot.mousePress(kb, Qt.MouseButton.LeftButton, pos=QPoint(round(r.center().x()), round(r.bottom() - 2)))
    qtbot.mouseRelease(kb, Qt.MouseButton.LeftButton, pos=QPoint(round(r.center().x()), round(r.bottom() - 2)))
    qtbot.keyPress(win, "q")   # Q is C4 on the computer keyboard
    qtbot.keyRelease(win, "q")
    # no audio runs here, so they wait in the queue; the status that shows them arrives within 0.1 s
    qtbot.waitUntil(lambda: len(win.inst.status().queued_events) == 4)
    events = [tuple(e) for e in win.inst.status().queued_events]
    assert len(events) == 4 and events[0][:2] == (0x90, 60) and events[0][2] > 120  # clicked near the bottom: loud
    assert events[1][:2] == (0x80, 60)
    assert events[2] == (0x90, 60, 100) and events[3][:2] == (0x80, 60)


def test_midi_learn_maps_a_controller_to_the_pad_and_an_effect(open_window, qtbot):
    win = open_window()
    def send(*cc):  # a controller move as the sound process's MIDI input reports it
        win.on_cc(cc[0] & 0x0F, cc[1], cc[2])

    win.learn("morph_x")
    send(0xB1, 74, 127)
    qtbot.waitUntil(lambda: win.mappings.get("morph_x") == (1, 74))
    qtbot.waitUntil(lambda: win.pad.at_x == 1.0)
    send(0xB1, 74, 0)
    qtbot.waitUntil(lambda: win.pad.at_x == 0.0)
    tl, tr, bl, br = (c.z for c in win.inst.corners)
    qtbot.waitUntil(lambda: np.allclose(playing(win), slerp(tl, bl, win.pad.at_y), atol=1e-6))
    send(0xB0, 74, 127)  # another channel: not mapped
    qtbot.wait(50)
    assert win.pad.at_x == 0.0
    win.effects.add_builtin("reverb")
    uid = win.inst.chain.effects[0].uid
    win.learn(f"fx:{uid}:room_size")
    send(0xB0, 20, 127)
    win.inst.chain.refresh()  # read back from the sound process
    assert win.inst.chain.effects[0].parameters()["room_size"][0] == pytest.approx(1.0)


def test_session_round_trip(open_window, qtbot, tmp_path):
    win = open_window()
    win.corner_boxes[1].setCurrentIndex(2)
    win.pad.set_position(0.3, 0.6)
    win.snap.setChecked(False)
    win.gain.setValue(-12)
    win.effects.add_builtin("reverb", room_size=0.8)
    win.effects.add_builtin("delay")
    win.inst.chain.set_bypass(1, True)
    win.mappings["morph_y"] = (0, 1)
    target = win.inst.presets[2].name
    win.mod_box.setCurrentText(target)
    win.drums_edit.setText(str(tmp_path / "kit.sf2"))
    win.close()
    saved = json.loads((tmp_path / "session.json").read_text())
    assert saved["position"] == pytest.approx([0.3, 0.6])
    assert saved["devices"]["mod_target"] == target and saved["devices"]["drums"] is None  # drums wait for Apply

    again = open_window()
    assert [c.name for c in again.inst.corners] == [c.name for c in win.inst.corners]
    assert (again.pad.at_x, again.pad.at_y) == pytest.approx((0.3, 0.6))
    assert again.gain.value() == -12 and again.inst.master_db == -12
    assert [fx.kind for fx in again.inst.chain.effects] == ["reverb", "delay"]
    assert again.inst.chain.effects[0].parameters()["room_size"][0] == pytest.approx(0.8)
    assert again.inst.chain.effects[1].bypass and again.effects.list.count() == 2
    assert again.mappings == {"morph_y": (0, 1)}
    assert again.mod_box.currentText() == target and again.inst.devices.mod_target == target  # the rig starts with it
    expected = morph([c.z for c in win.inst.corners], 0.3, 0.6)
    qtbot.waitUntil(lambda: np.allclose(playing(again), expected, atol=1e-6))


def test_a_saved_mod_target_or_drum_kit_that_is_gone_is_said_and_the_sound_starts_without_it(open_window, qtbot,
                                                                                            tmp_path, capsys):
    (tmp_path / "session.json").write_text(json.dumps({"devices": {"mod_target": "Deleted Pad",
                                                                   "drums": str(tmp_path / "gone.sf2")}}))
    win = open_window()
    assert win.inst.sound is not None and win.inst.audio_error is None
    win.poll()
    out = capsys.readouterr().out
    assert "'Deleted Pad' is not loaded" in out and "gone.sf2 not found; channel 10 plays the timbre" in out
    assert win.drums_edit.text() == str(tmp_path / "gone.sf2")
    win.close()
    kept = json.loads((tmp_path / "session.json").read_text())["devices"]
    assert kept["mod_target"] == "Deleted Pad" and kept["drums"] == str(tmp_path / "gone.sf2")  # kept for later


def test_corrupt_session_is_set_aside_and_reported(open_window, tmp_path, capsys):
    (tmp_path / "session.json").write_text("{\"corners\": [\"Flutes\", ")
    win = open_window()
    assert "could not be read" in capsys.readouterr().out
    aside = list(tmp_path.glob("session.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text().startswith("{\"corners\"")
    win.close()
    assert json.loads((tmp_path / "session.json").read_text())["position"] == [0.5, 0.5]


def test_save_current_as_preset_never_overwrites_silently(open_window, tmp_path, capsys):
    win = open_window()
    win.on_random(seed=3)
    path = win.save_current_preset("My Pad", overwrite=False)
    saved = json.loads(path.read_text())
    assert path == tmp_path / "presets" / "my-pad.json" and np.allclose(saved["z"], playing(win))
    assert "My Pad" in [win.corner_boxes[0].itemText(i) for i in range(win.corner_boxes[0].count())]
    win.on_random(seed=4)
    assert win.save_current_preset("My Pad", overwrite=False) is None
    assert "already exists" in capsys.readouterr().out
    assert json.loads(path.read_text())["z"] == saved["z"]


def test_a_saved_effect_that_no_longer_loads_is_reported_and_kept(open_window, tmp_path, capsys):
    (tmp_path / "session.json").write_text(json.dumps({"effects": [
        {"kind": "reverb", "params": {"room_size": 0.7}}, {"kind": "plugin", "path": str(tmp_path / "Gone.vst3")}]}))
    win = open_window()
    assert "saved effects not restored: no plugin at" in capsys.readouterr().out
    assert len(win.inst.chain) == 0  # the sound runs without them
    win.close()
    kept = json.loads((tmp_path / "session.json").read_text())["effects"]
    assert [e["kind"] for e in kept] == ["reverb", "plugin"]  # nothing the user set up is lost


def test_the_window_survives_its_sound_process_dying(open_window, qtbot, tmp_path):
    win = open_window()
    win.effects.add_builtin("delay")
    win.save_session()
    win.inst.sound.process.kill()
    win.inst.sound.process.join()
    win.keyboard.press(60, 100)  # posting to the dead process is dropped, not raised
    win.refresh_status()
    assert win.inst.sound is None and "stopped" in win.inst.audio_error
    assert win.status_labels["audio"].text().startswith("off (the sound process has stopped")
    win.close()
    assert [e["kind"] for e in json.loads((tmp_path / "session.json").read_text())["effects"]] == ["delay"]


def test_the_devices_tab_sets_polyphony_release_channel_and_latency(open_window, qtbot, tmp_path):
    """Every play option has a place in the window: applied, the sound process plays with them (read back from
    its voices), and the session keeps them for the next start."""
    win = open_window()
    assert win.inst.status().polyphony in (0, 32)  # the default, once the first status arrives
    win.polyphony_box.setValue(3)
    win.release_box.setValue(0.25)
    win.channel_box.setCurrentIndex(win.channel_box.findData(9))
    win.latency_box.setCurrentIndex(win.latency_box.findData("high"))
    win.apply_devices()
    qtbot.waitUntil(lambda: win.inst.status().polyphony == 3)
    st = win.inst.status()
    assert abs(st.release_s - 0.25) < 1e-3 and st.channel == 9
    assert win.inst.devices.latency == "high"
    win.close()
    saved = json.loads((tmp_path / "session.json").read_text())["devices"]
    assert saved["polyphony"] == 3 and saved["release"] == 0.25 and saved["channel"] == 9 and saved["latency"] == "high"
    again = open_window()
    assert again.polyphony_box.value() == 3 and again.chosen_devices() == again.inst.devices
    qtbot.waitUntil(lambda: again.inst.status().polyphony == 3)


def test_the_window_plays_a_preset_folder_given_on_the_command_line(tone_model, tmp_path):
    """`gui --presets DIR` (as `play --presets`): that folder in place of the shipped presets, the user's own after
    it; a folder that does not exist is one line from the command line."""
    import subprocess
    import sys

    from synth.core.timbre import Preset, save_preset

    folder = tmp_path / "mine"
    for name, value in (("Glass", 0.5), ("Reed Organ", -0.5)):
        save_preset(Preset(name, np.full(8, value, np.float32)), folder)
    save_preset(Preset("Saved", np.zeros(8, np.float32)), tmp_path / "user")
    inst = Instrument(ModelFile.read(tone_model), user_presets=tmp_path / "user", shipped_presets=folder)
    assert [p.name for p in inst.presets] == ["Glass", "Reed Organ", "Saved"] and not inst.preset_problems
    wrong = subprocess.run([sys.executable, "-m", "gui", "gui", "--presets", str(tmp_path / "nowhere")],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "nowhere does not exist" in wrong.stderr.strip().splitlines()[-1]


def _drop(pad, path, x, y):
    from PyQt6.QtCore import QMimeData, QPointF, QUrl
    from PyQt6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pad.dropEvent(QDropEvent(QPointF(pad_point(pad, x, y)), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                             Qt.KeyboardModifier.NoModifier))


def test_a_recorded_note_dropped_on_a_corner_plays_there(qtbot, tiny_model, tmp_path, capsys):
    """The import runs as `presets import` in its own process (torch stays out of the window); the new preset
    lands in the user's folder, on the corner it was dropped nearest, and the pad at that corner plays it."""
    import soundfile as sf

    inst = Instrument(ModelFile.read(tiny_model), user_presets=tmp_path / "presets")
    win = MainWindow(inst, tmp_path / "session.json", audio=False, midi=False)
    qtbot.addWidget(win)
    win.show()
    try:
        t = np.arange(48000) / 48000
        sf.write(tmp_path / "Cello C3.wav", (0.3 * np.sin(2 * np.pi * 130.81 * t) * np.exp(-t)).astype(np.float32),
                 48000)
        (tmp_path / "notes.txt").write_text("not a sound\n")
        before = [c.name for c in win.inst.corners]
        _drop(win.pad, tmp_path / "notes.txt", 0.9, 0.1)
        qtbot.waitUntil(lambda: win.importing is None, timeout=120_000)
        assert "not imported: " in capsys.readouterr().out and [c.name for c in win.inst.corners] == before
        _drop(win.pad, tmp_path / "Cello C3.wav", 0.9, 0.8)  # nearest the bottom-right corner
        qtbot.waitUntil(lambda: win.importing is None, timeout=120_000)
        assert win.inst.corners[3].name == "Cello C3" and win.pad.names[3] == "Cello C3"
        assert (tmp_path / "presets" / "cello-c3.json").is_file()
        win.pad.set_position(1.0, 1.0)
        qtbot.waitUntil(lambda: np.allclose(playing(win), win.inst.corners[3].z, atol=1e-6))
        _drop(win.pad, tmp_path / "Cello C3.wav", 0.1, 0.1)  # the same file again: a second preset, not a clash
        qtbot.waitUntil(lambda: win.importing is None, timeout=120_000)
        assert win.inst.corners[0].name == "Cello C3 2"
        # Another model chosen while a sound imports: the preset is kept, but it was made for the first model.
        other = tmp_path / "other.onnx"
        shutil.copy(tiny_model, other)
        capsys.readouterr()
        _drop(win.pad, tmp_path / "Cello C3.wav", 0.1, 0.1)
        assert win.use_model(str(other))
        qtbot.waitUntil(lambda: win.importing is None, timeout=120_000)
        said = capsys.readouterr().out
        assert f"imported Cello C3 3 for {tiny_model.name}" in said and "choose that model again" in said
        assert win.inst.corners[0].name == "Cello C3 2" and (tmp_path / "presets" / "cello-c3-3.json").is_file()
    finally:
        win.close()


def test_the_devices_tab_chooses_the_model_and_the_session_keeps_it(open_window, qtbot, tiny_model, tmp_path,
                                                                     capsys):
    """A fine-tune is played by choosing its file: the sound process restarts on it (the tone model's latents
    have 8 numbers, the tiny voice's 16), a file that is no model is one line and changes nothing, and the next
    window starts with the chosen model unless one is named on the command line."""
    win = open_window()
    assert len(playing(win)) == 8
    (tmp_path / "notes.onnx").write_text("not a model")
    win.model_edit.setText(str(tmp_path / "notes.onnx"))
    win.apply_devices()
    said = capsys.readouterr().out
    assert "model not changed: " in said and "notes.onnx" in said
    assert win.model_edit.text() == str(win.inst.model.path) and len(playing(win)) == 8
    win.model_edit.setText(str(tiny_model))
    win.apply_devices()
    qtbot.waitUntil(lambda: len(playing(win)) == 16)
    assert all(len(c.z) == 16 for c in win.inst.corners) and tiny_model.name in win.windowTitle()
    assert [win.corner_boxes[i].currentText() for i in range(4)] == [c.name for c in win.inst.corners]
    win.save_session()
    assert json.loads((tmp_path / "session.json").read_text())["model"] == str(tiny_model)
    win.close()
    again = open_window()
    assert str(again.inst.model.path) == str(tiny_model) and len(playing(again)) == 16
    again.close()
    inst = Instrument(ModelFile.read(win.started_model), user_presets=tmp_path / "presets")
    named = MainWindow(inst, tmp_path / "session.json", audio=False, midi=False, model_given=True)
    qtbot.addWidget(named)
    try:
        assert len(playing(named)) == 8
    finally:
        named.close()


def test_a_session_whose_model_is_gone_starts_with_the_given_one_and_says_so(open_window, tmp_path, capsys):
    (tmp_path / "session.json").write_text(json.dumps({"model": str(tmp_path / "gone.onnx")}))
    win = open_window()
    assert len(playing(win)) == 8 and win.chosen_model is None
    said = capsys.readouterr().out
    assert "model not changed: " in said and "gone.onnx" in said
