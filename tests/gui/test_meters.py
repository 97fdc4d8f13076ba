"""The output's pictures: the engine-side meter (peak, RMS, clip, scope ring) fed by the audio side without
allocating, and the window's meter and scope widgets, which follow a test tone's level and hold the clip light."""
import math

import numpy as np
import pytest

from gui.meters import CLIP_HOLD_S, LevelMeter, Scope
from synth.engine.meter import SCOPE_FRAMES, Meter
from tests.allocation import peak_allocation

RATE = 48000


def tone(amplitude, seconds=0.5, f=441.0, left=1.0, right=1.0):
    t = np.arange(int(seconds * RATE)) / RATE
    x = amplitude * np.sin(2 * np.pi * f * t)
    return np.stack([left * x, right * x], axis=1).astype(np.float32)


def feed(meter, audio, block=128):
    for i in range(0, len(audio), block):
        meter.push(audio[i:i + block])


def test_meter_reads_peak_rms_and_clip_per_side():
    m = Meter(max_block=1024)
    feed(m, tone(0.5, right=0.25))
    r = m.read()
    assert r["peak_db"][0] == pytest.approx(20 * math.log10(0.5), abs=0.01)
    assert r["rms_db"][0] == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.01)
    assert r["rms_db"][1] == pytest.approx(20 * math.log10(0.125 / math.sqrt(2)), abs=0.01)
    assert r["clipped"] == [False, False]
    assert np.asarray(r["scope"]).shape == (SCOPE_FRAMES, 2)
    assert m.read()["peak_db"] == [-120.0, -120.0]  # a read resets: nothing played since
    feed(m, tone(0.99, seconds=0.01, right=0.1))
    assert m.read()["clipped"] == [True, False]


def test_scope_ring_keeps_the_latest_frames_in_order():
    m = Meter(max_block=256)
    ramp = np.stack([np.arange(5000), -np.arange(5000)], axis=1).astype(np.float32)
    feed(m, ramp, block=300)  # blocks larger than the meter's scratch are split
    scope = np.asarray(m.read()["scope"])
    assert np.array_equal(scope[:, 0], np.arange(5000 - SCOPE_FRAMES, 5000))


def test_push_allocates_no_buffers():
    m = Meter(max_block=1024)
    block = tone(0.3, seconds=1024 / RATE)
    m.push(block)
    assert peak_allocation(lambda _: m.push(block), 200) < 2048  # one block's copy would be 8 KB


def test_meter_widget_follows_a_test_tone_and_holds_the_clip_light(qtbot):
    now = [100.0]
    widget = LevelMeter(clock=lambda: now[0])
    qtbot.addWidget(widget)
    m = Meter()
    for level_db in (-40.0, -20.0, -6.0):
        amplitude = 10 ** (level_db / 20) * math.sqrt(2)  # a sine whose RMS is level_db
        feed(m, tone(amplitude, seconds=0.1))
        now[0] += 0.1
        widget.set_levels(m.read())
        for side in (0, 1):
            assert widget.rms_db[side] == pytest.approx(level_db, abs=1.0)
            assert widget.fraction(widget.rms_db[side]) == pytest.approx(1 + level_db / 60, abs=1 / 60)
    assert not widget.clipped(0)
    feed(m, tone(1.0, seconds=0.02, right=0.5))
    widget.set_levels(m.read())
    assert widget.clipped(0) and not widget.clipped(1)
    feed(m, tone(0.1, seconds=0.1))
    now[0] += CLIP_HOLD_S - 0.1
    widget.set_levels(m.read())
    assert widget.clipped(0)  # still held
    now[0] += 0.2
    widget.set_levels(m.read())
    assert not widget.clipped(0)
    widget.set_levels(None)  # no audio: the bars fall to the floor
    assert widget.rms_db == [-60.0, -60.0]
    widget.repaint()


def test_scope_shows_the_tone_and_its_spectrum_peak(qtbot):
    scope = Scope(RATE)
    qtbot.addWidget(scope)
    m = Meter()
    feed(m, tone(0.5, seconds=0.1, f=1000.0))
    scope.set_frames(m.read()["scope"])
    assert scope.freqs[np.argmax(scope.spectrum_db)] == pytest.approx(1000.0, abs=RATE / SCOPE_FRAMES)
    assert np.max(scope.spectrum_db) == pytest.approx(20 * math.log10(0.5), abs=1.5)
    scope.repaint()


def test_pad_shows_the_cached_timbre_map_of_its_corners(qtbot, tone_model, tmp_path):
    """The pad's background is the cached family grid of the corners: each cell coloured by the family of the
    preset nearest the latent it plays, a corner's own preset at each corner, names where regions are large."""
    from gui.instrument import Instrument
    from gui.main_window import MainWindow
    from gui.timbre_map import family_colour, family_grid
    from synth.core.timbre import Preset, save_preset
    from synth.runtime.model_file import ModelFile

    rng = np.random.default_rng(3)
    families = ["piano", "brass", "strings", "synth_pad", "pipe"]
    for i, family in enumerate(families):
        save_preset(Preset(f"P{i} {family}", rng.standard_normal(8).astype(np.float32), family), tmp_path / "presets")
    inst = Instrument(ModelFile.read(tone_model), user_presets=tmp_path / "presets")
    win = MainWindow(inst, tmp_path / "session.json", audio=False, midi=False)
    qtbot.addWidget(win)
    try:
        corners = [c.z for c in inst.corners]
        grid = family_grid(corners, inst.presets)
        assert family_grid(corners, inst.presets) is grid  # cached
        image = win.pad.background
        assert image is not None and (image.width(), image.height()) == grid.shape[::-1]
        for row in range(grid.shape[0]):
            for col in range(grid.shape[1]):
                assert image.pixelColor(col, row) == family_colour(inst.presets[int(grid[row, col])])
        names = [p.name for p in inst.presets]
        for corner, (row, col) in enumerate([(0, 0), (0, -1), (-1, 0), (-1, -1)]):
            assert inst.presets[int(grid[row, col])].name == inst.corners[corner].name
        assert {label[0] for label in win.pad.labels} <= set(names) and win.pad.labels
        win.corner_boxes[0].setCurrentIndex(4)  # a new corner: a new map
        assert win.pad.background is not image and int(family_grid([c.z for c in inst.corners],
                                                                   inst.presets)[0, 0]) == 4
    finally:
        win.close()


def test_keys_light_with_their_velocity(qtbot, tone_model, tmp_path):
    """A key MIDI holds lights in proportion to how hard it was struck, as the rig's status reports it."""
    from gui.keyboard import Keyboard
    from synth.engine.rig import LiveRig, RigConfig

    kb = Keyboard()
    qtbot.addWidget(kb)
    kb.set_external({60, 64, 67}, {60: 127, 64: 64, 67: 1})
    soft, mid, hard = kb.key_colour(67, False), kb.key_colour(64, False), kb.key_colour(60, False)
    assert hard.name() == "#7ee0c3" and kb.key_colour(62, False).name() == "#f4f4f4"
    assert hard.red() < mid.red() < soft.red() < 0xf4  # white key: the harder, the further from white
    # the rig's status (what the window's sound process reports) says which keys are held and how hard
    rig = LiveRig(RigConfig(model=str(tone_model), provider="cpu", audio=False, midi=False))
    rig.open()
    try:
        assert rig.engine.renderer.wait_complete(timeout=60)  # the rig's own renderer fills the bank
        rig.engine.note_on(60, 30)
        rig.engine.note_on(64, 120)
        rig.engine.process(128)
        st = rig.status()
    finally:
        rig.close()
    assert st.key_velocities == {60: 30, 64: 120}
    kb.set_external(set(st.key_velocities), st.key_velocities)
    assert kb.key_colour(64, False).red() < kb.key_colour(60, False).red()


def test_mod_wheel_target_is_shown_and_changed_in_the_window(qtbot, tone_model, tmp_path):
    """The window shows which preset the wheel morphs to (the sound process's default: the Synth Pad family)
    and changing it there changes what the sound process morphs towards."""
    import time

    from gui.instrument import Instrument
    from gui.main_window import MainWindow
    from synth.core.timbre import Preset, save_preset
    from synth.runtime.model_file import ModelFile

    rng = np.random.default_rng(5)
    for name, family in (("Alpha", "piano"), ("Beta", "synth_pad"), ("Gamma", "strings")):
        save_preset(Preset(name, rng.standard_normal(8).astype(np.float32), family), tmp_path / "presets")
    inst = Instrument(ModelFile.read(tone_model), user_presets=tmp_path / "presets")
    win = MainWindow(inst, tmp_path / "session.json", audio=False, midi=False)
    qtbot.addWidget(win)
    try:
        deadline = time.monotonic() + 30
        while win.mod_box.currentText() != "Beta" and time.monotonic() < deadline:
            win.refresh_status()
            qtbot.wait(50)
        assert win.mod_box.currentText() == "Beta" and inst.status().mod_target == "Beta"
        win.mod_box.setCurrentText("Gamma")
        deadline = time.monotonic() + 30
        while inst.status().mod_target != "Gamma" and time.monotonic() < deadline:  # statuses come pushed
            win.refresh_status()
            assert win.mod_box.currentText() == "Gamma"  # an older status does not undo the choice
            qtbot.wait(50)
        assert inst.status().mod_target == "Gamma"
        with pytest.raises(ValueError, match="no preset named 'Nope' to morph to"):
            inst.set_mod_target("Nope")
        assert inst.status().mod_target == "Gamma"
    finally:
        win.close()
