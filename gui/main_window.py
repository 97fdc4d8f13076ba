"""The main window: morph pad with its corner presets, keyboard, live status, devices, effects and MIDI learn.

It drives the instrument through its small API and never waits on it for playing: timbre changes post a target
to the renderer, notes are queued MIDI events, and the status the sound process pushes ten times a second is read
without waiting. Effect edits and recording are calls that wait for their answer (the sound process answers at
once unless a plugin is loading); Apply on the devices tab starts a new sound process and waits for its devices.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QProcess, Qt, QTimer
from PyQt6.QtGui import QCloseEvent, QKeyEvent
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout,
                             QGroupBox, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QListWidget, QMainWindow,
                             QMenu, QMessageBox, QPushButton, QSlider, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from gui.effects_panel import EffectsPanel
from gui.instrument import Devices, Instrument
from gui.keyboard import Keyboard, computer_key_pitch
from gui.meters import LevelMeter, Scope
from gui.morph_pad import MorphPad
from gui.timbre_map import family_grid, map_image, map_labels
from gui.session import MASTER_DB, Session, load_session, save_session
from synth.core.timbre import PresetError, PresetExists

CORNERS = ("Top left", "Top right", "Bottom left", "Bottom right")
HOST_APIS = ("jack", "alsa", "pulse", "coreaudio", "wasapi", "asio", "directsound", "mme")


def _combo(items: list[tuple[str, object]]) -> QComboBox:
    """A combo box of (text, value) items."""
    box = QComboBox()
    for text, value in items:
        box.addItem(text, value)
    return box


class MainWindow(QMainWindow):
    def __init__(self, instrument: Instrument, session_path: Path, audio: bool = True, midi: bool = True,
                 model_given: bool = False) -> None:
        """`model_given`: the model was named on the command line, so it plays instead of the session's."""
        super().__init__()
        self.inst = instrument
        self.session_path = session_path
        self.learning: str | None = None
        self.mappings: dict[str, tuple[int, int]] = {}
        self.octave = 0
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(1000)
        self._save_timer.timeout.connect(self.save_session)
        self.setWindowTitle("GANSynth Live")
        self.started_model = str(instrument.model.path)
        self.chosen_model: str | None = None  # a model file chosen in the window, kept in the session
        self._build()
        session, problem = load_session(session_path)
        if session.model and not model_given:
            self.use_model(session.model)
        self._restore(session)
        if problem:
            self.report(problem)
        instrument.apply(Devices.from_dict(session.devices) if session.devices else instrument.devices, audio, midi)
        self.effects.refresh()
        self._show_device_errors()
        self.inst.set_master_db(float(self.gain.value()))
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh_status)
        self.timer.start(100)
        self.flusher = QTimer(self)
        self.flusher.setInterval(25)
        self.flusher.timeout.connect(self.poll)
        self.flusher.start()

    # -- layout --------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        top = QHBoxLayout()
        top.addLayout(self._pad_column(), 3)
        right = QVBoxLayout()
        right.addWidget(self._status_box())
        right.addLayout(self._master_row())
        right.addWidget(self._tabs(), 1)
        top.addLayout(right, 2)
        body = QVBoxLayout()
        body.addLayout(top, 1)
        body.addLayout(self._keyboard_bar())
        body.addWidget(self.keyboard)
        central = QWidget()
        central.setLayout(body)
        self.setCentralWidget(central)
        self.resize(1280, 800)

    def _pad_column(self) -> QVBoxLayout:
        """The morph pad, its four corner presets, and the random / save / snap actions."""
        self.pad = MorphPad()
        self.pad.moved.connect(self.on_pad)
        self.pad.learn_requested.connect(self.learn)
        self.pad.sound_dropped.connect(self.import_sound)
        self.importing: QProcess | None = None
        self.corner_boxes = []
        corners = QGridLayout()
        for i, label in enumerate(CORNERS):
            box = QComboBox()
            box.addItems([p.name for p in self.inst.presets])
            box.setToolTip(f"{label} corner preset")
            box.currentIndexChanged.connect(lambda _, c=i: self.on_corner(c))
            self.corner_boxes.append(box)
            corners.addWidget(QLabel(label), i // 2, (i % 2) * 2)
            corners.addWidget(box, i // 2, (i % 2) * 2 + 1)
        self.snap = QCheckBox("Snap to grid")
        self.snap.toggled.connect(self.on_snap)
        random_btn = QPushButton("Random timbre")
        random_btn.clicked.connect(lambda: self.on_random())
        save_btn = QPushButton("Save current as preset…")
        save_btn.clicked.connect(lambda: self.save_current_preset())
        self.mod_box = QComboBox()
        self.mod_box.addItems([p.name for p in self.inst.presets])
        self.mod_box.setToolTip("the preset the modulation wheel (CC1) and key pressure morph each note towards")
        self.mod_box.currentTextChanged.connect(self.on_mod_target)
        actions = QHBoxLayout()
        for w in (random_btn, save_btn, self.snap):
            actions.addWidget(w)
        corners.addWidget(QLabel("Mod wheel →"), 2, 0)
        corners.addWidget(self.mod_box, 2, 1)
        left = QVBoxLayout()
        left.addLayout(corners)
        left.addWidget(self.pad, 1)
        left.addLayout(actions)
        return left

    def _status_box(self) -> QGroupBox:
        self.status_labels: dict[str, QLabel] = {}
        status = QFormLayout()
        for key, label in (("audio", "Audio"), ("latency", "Output latency"), ("voices", "Voices"),
                           ("underruns", "Underruns"), ("callback", "Callback p99"), ("provider", "Render on"),
                           ("bank", "Last bank"), ("midi", "MIDI in")):
            self.status_labels[key] = QLabel("–")
            self.status_labels[key].setWordWrap(True)
            status.addRow(label, self.status_labels[key])
        self.meter = LevelMeter()  # the output's pictures sit beside the numbers, so the window keeps its height
        self.scope = Scope(self.inst.devices.rate)
        pictures = QVBoxLayout()
        pictures.addWidget(self.meter)
        pictures.addWidget(self.scope, 1)
        row = QHBoxLayout()
        row.addLayout(status, 1)
        row.addLayout(pictures, 1)
        box = QGroupBox("Status")
        box.setLayout(row)
        return box

    def _master_row(self) -> QHBoxLayout:
        """The master level (MIDI-learnable) and the record button."""
        self.gain = QSlider(Qt.Orientation.Horizontal)
        self.gain.setRange(int(MASTER_DB[0]), int(MASTER_DB[1]))
        self.gain.valueChanged.connect(self.on_gain)
        self.gain.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.gain.customContextMenuRequested.connect(
            lambda pos: self._learn_menu(self.gain, pos, "master_gain"))
        self.gain_label = QLabel("0 dB")
        self.record_btn = QPushButton("● Record")
        self.record_btn.setCheckable(True)
        self.record_btn.toggled.connect(self.on_record)
        master = QHBoxLayout()
        master.addWidget(QLabel("Master"))
        master.addWidget(self.gain, 1)
        master.addWidget(self.gain_label)
        master.addWidget(self.record_btn)
        return master

    def _tabs(self) -> QTabWidget:
        self.tabs = QTabWidget()
        self.effects = EffectsPanel(lambda: self.inst.chain)
        self.effects.changed.connect(self.schedule_save)
        self.effects.changed.connect(lambda: setattr(self.inst, "chain_error", None))  # edited: save what plays
        self.effects.learn_requested.connect(self.learn)
        self.effects.error.connect(self.report)
        self.tabs.addTab(self.effects, "Effects")
        self.tabs.addTab(self._devices_tab(), "Devices")
        self.tabs.addTab(self._learn_tab(), "MIDI learn")
        return self.tabs

    def _keyboard_bar(self) -> QHBoxLayout:
        self.keyboard = Keyboard()
        self.keyboard.note_on.connect(self.inst.note_on)
        self.keyboard.note_off.connect(self.inst.note_off)
        self.velocity = QSpinBox()
        self.velocity.setRange(0, 127)
        self.velocity.setSpecialValueText("by click height")
        self.velocity.valueChanged.connect(self.on_velocity)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Keyboard: click, or Z–/ and Q–P rows on your computer keyboard; velocity"))
        bar.addWidget(self.velocity)
        bar.addStretch(1)
        return bar

    def _devices_tab(self) -> QWidget:
        """Where the sound goes and how it plays: every `gansynth-live play` option the window has no other
        place for. Nothing changes until Apply (a new sound process)."""
        from synth.engine.audio import output_devices
        from synth.engine.midi import APIS, MidiPortError, list_ports

        w = QWidget()
        form = QFormLayout(w)
        self.audio_box = _combo([("System default", None)] + [
            (f"{d['name']} ({d['hostapi']})" + (f" — virtual: {d['virtual']}" if d["virtual"] else ""),
             str(d["index"])) for d in output_devices()])
        self.host_api_box = _combo([("Any", None)] + [(name, name) for name in HOST_APIS])
        self.rate_box = _combo([(str(r), r) for r in (44100, 48000, 88200, 96000)])
        self.block_box = _combo([(str(b), b) for b in (64, 128, 256, 512, 1024)])
        self.latency_box = _combo([("Low", "low"), ("High", "high")])
        self.polyphony_box = QSpinBox()
        self.polyphony_box.setRange(1, 256)
        self.release_box = QDoubleSpinBox()
        self.release_box.setRange(0.0, 10.0)
        self.release_box.setSingleStep(0.05)
        self.release_box.setSuffix(" s")
        self.release_box.setSpecialValueText("each note's own")
        self.midi_box = _combo([("Virtual port “GANSynth Live”", None)])
        try:
            for port in list_ports():
                self.midi_box.addItem(port, port)
        except MidiPortError as e:
            self.midi_box.setToolTip(str(e))
        self.midi_api_box = _combo([("Default", None)] + [(name, name) for name in APIS])
        self.channel_box = _combo([("All (omni)", None)] + [(str(c + 1), c) for c in range(16)])
        self.connect_edit = QLineEdit()
        self.connect_edit.setPlaceholderText("JACK input ports, e.g. ardour:audio_in (comma-separated)")
        self.drums_edit = QLineEdit()
        self.drums_edit.setPlaceholderText("empty: channel 10 plays the timbre like any other channel")
        self.drums_edit.setToolTip("a SoundFont (.sf2/.sf3) whose General MIDI kit FluidSynth plays channel 10 with")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.choose_drums)
        drums = QHBoxLayout()
        drums.addWidget(self.drums_edit, 1)
        drums.addWidget(browse)
        self.model_edit = QLineEdit(str(self.inst.model.path))
        self.model_edit.setToolTip("the voice that plays (an exported .onnx model, e.g. a fine-tune on your sounds); "
                                   "empty: the one the window started with")
        browse_model = QPushButton("Browse…")
        browse_model.clicked.connect(self.choose_model)
        model = QHBoxLayout()
        model.addWidget(self.model_edit, 1)
        model.addWidget(browse_model)
        apply = QPushButton("Apply")
        apply.clicked.connect(self.apply_devices)
        for label, widget in (("Audio output", self.audio_box), ("Host API", self.host_api_box),
                              ("Sample rate", self.rate_box), ("Block size", self.block_box),
                              ("Latency", self.latency_box), ("Polyphony", self.polyphony_box),
                              ("Release", self.release_box), ("MIDI input", self.midi_box),
                              ("MIDI API", self.midi_api_box), ("MIDI channel", self.channel_box),
                              ("Connect to", self.connect_edit)):
            form.addRow(label, widget)
        form.addRow("Drums (channel 10)", drums)
        form.addRow("Model", model)
        form.addRow(apply)
        return w

    def choose_drums(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SoundFont for the drums", self.drums_edit.text(),
                                              "SoundFonts (*.sf2 *.sf3);;All files (*)")
        if path:
            self.drums_edit.setText(path)

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model", self.model_edit.text(), "Models (*.onnx);;All files (*)")
        if path:
            self.model_edit.setText(path)

    def use_model(self, path: str) -> bool:
        """Play the model file at `path` from the next start or Apply: its presets fill the corner boxes and the
        map is painted again; a file that is not a model is said in one line and the playing one kept."""
        path = str(Path(path).absolute())  # the session keeps it whatever folder the window starts in next
        if path == str(Path(self.inst.model.path).absolute()):
            return True
        try:
            self.inst.use_model(path)
        except (OSError, ValueError) as e:  # ModelError is a ValueError
            self.report(f"model not changed: {e}")
            self.model_edit.setText(str(self.inst.model.path))
            return False
        self.chosen_model = None if path == str(Path(self.started_model).absolute()) else path
        self.model_edit.setText(path)
        self.setWindowTitle(f"GANSynth Live — {Path(path).name}")
        self._refresh_preset_boxes()
        for problem in self.inst.preset_problems:
            self.report(f"preset skipped: {problem}")
        self.pad.names = [c.name for c in self.inst.corners]
        self.paint_map()
        return True

    def _show_devices(self, d: Devices) -> None:
        for box, value in ((self.audio_box, d.audio_out), (self.host_api_box, d.host_api), (self.rate_box, d.rate),
                           (self.block_box, d.block), (self.latency_box, d.latency), (self.midi_box, d.midi_in),
                           (self.midi_api_box, d.midi_api), (self.channel_box, d.channel)):
            self._select(box, value)
        self.polyphony_box.setValue(d.polyphony)
        self.release_box.setValue(d.release or 0.0)
        self.connect_edit.setText(d.connect or "")
        self.drums_edit.setText(d.drums or "")
        if d.mod_target is not None and d.mod_target in [p.name for p in self.inst.presets]:
            self.mod_box.blockSignals(True)
            self.mod_box.setCurrentText(d.mod_target)
            self.mod_box.blockSignals(False)

    def chosen_devices(self) -> Devices:
        """What the devices tab shows now."""
        return Devices(audio_out=self.audio_box.currentData(), host_api=self.host_api_box.currentData(),
                       rate=self.rate_box.currentData(), block=self.block_box.currentData(),
                       latency=self.latency_box.currentData(), midi_in=self.midi_box.currentData(),
                       midi_api=self.midi_api_box.currentData(), channel=self.channel_box.currentData(),
                       polyphony=self.polyphony_box.value(), release=self.release_box.value() or None,
                       connect=self.connect_edit.text().strip() or None, mod_target=self.inst.devices.mod_target,
                       drums=self.drums_edit.text().strip() or None)

    def _learn_tab(self) -> QWidget:
        w = QWidget()
        layout = QVBoxLayout(w)
        layout.addWidget(QLabel("Right-click the pad, the master slider or an effect slider, choose MIDI learn, "
                                "then move a knob on your controller."))
        self.learn_list = QListWidget()
        forget = QPushButton("Forget selected")
        forget.clicked.connect(self.forget_mapping)
        layout.addWidget(self.learn_list, 1)
        layout.addWidget(forget)
        return w

    def _learn_menu(self, widget: QWidget, pos, control: str) -> None:
        menu = QMenu(widget)
        menu.addAction("MIDI learn", lambda: self.learn(control))
        menu.exec(widget.mapToGlobal(pos))

    # -- session -------------------------------------------------------------------------------------------------
    def _restore(self, s: Session) -> None:
        names = [p.name for p in self.inst.presets]
        for problem in self.inst.preset_problems:
            self.report(f"preset skipped: {problem}")
        self.missing_corners = {}  # corner → the saved preset name that did not load, kept in the session
        for i, box in enumerate(self.corner_boxes):
            wanted = s.corners[i] if i < len(s.corners) and s.corners[i] in names else names[i % len(names)]
            if i < len(s.corners) and s.corners[i] not in names:
                self.missing_corners[i] = s.corners[i]
                self.report(f"the {CORNERS[i].lower()} corner's preset '{s.corners[i]}' is not loaded; playing "
                            f"'{wanted}' there until it is (the session keeps your choice)")
            box.blockSignals(True)
            box.setCurrentIndex(names.index(wanted))
            box.blockSignals(False)
            self.inst.corners[i] = self.inst.presets[names.index(wanted)]
        self.pad.names = [c.name for c in self.inst.corners]
        self.paint_map()
        self.snap.setChecked(s.snap)
        self.gain.setValue(int(round(s.master_db)))
        self.velocity.setValue(s.velocity)
        self.inst.saved_effects = list(s.effects)
        self._show_devices(Devices.from_dict(s.devices) if s.devices else self.inst.devices)
        self.mappings = {k: (int(v[0]), int(v[1])) for k, v in s.mappings.items() if len(v) == 2}
        self._show_mappings()
        self.pad.set_position(s.position[0], s.position[1], emit=False)
        self.inst.move(self.pad.at_x, self.pad.at_y)

    @staticmethod
    def _select(box: QComboBox, data: object) -> None:
        i = box.findData(data)
        if i >= 0:
            box.setCurrentIndex(i)

    def session(self) -> Session:
        corners = [self.missing_corners.get(i, c.name) for i, c in enumerate(self.inst.corners)]
        return Session(corners=corners, position=[self.pad.at_x, self.pad.at_y],
                       snap=self.snap.isChecked(), master_db=float(self.gain.value()),
                       effects=self.inst.effects_list(),
                       devices=self.inst.devices.to_dict(),
                       mappings={k: list(v) for k, v in self.mappings.items()}, velocity=self.velocity.value(),
                       model=self.chosen_model)

    def schedule_save(self) -> None:
        self._save_timer.start()

    def save_session(self) -> None:
        try:
            save_session(self.session(), self.session_path)
        except OSError as e:
            self.report(f"session not saved: {e}")

    # -- actions -------------------------------------------------------------------------------------------------
    def on_pad(self, x: float, y: float) -> None:
        self.inst.move(x, y)
        self.schedule_save()

    def on_corner(self, corner: int) -> None:
        preset = self.inst.presets[self.corner_boxes[corner].currentIndex()]
        self.missing_corners.pop(corner, None)
        self.inst.set_corner(corner, preset)
        self.pad.names[corner] = preset.name
        self.paint_map()
        self.schedule_save()

    def on_mod_target(self, name: str) -> None:
        try:
            self.inst.set_mod_target(name)
            self._mod_chosen: str | None = name  # until a status says so, older statuses do not undo the choice
            self.schedule_save()
        except ValueError as e:  # SoundProcessError: said in the status bar, the old target plays on
            self.report(str(e))

    def show_mod_target(self, name: str | None) -> None:
        """Show the sound process's morph target in the box without sending it back."""
        chosen = getattr(self, "_mod_chosen", None)
        if chosen is not None:
            if name != chosen:
                return
            self._mod_chosen = None
        if name and name != self.mod_box.currentText():
            self.mod_box.blockSignals(True)
            self.mod_box.setCurrentText(name)
            self.mod_box.blockSignals(False)

    def paint_map(self) -> None:
        """Paint the pad's background with the timbre map of the current corners (cached per corner set)."""
        if self.inst.presets:
            grid = family_grid([c.z for c in self.inst.corners], self.inst.presets)
            self.pad.background = map_image(grid, self.inst.presets)
            self.pad.labels = map_labels(grid, self.inst.presets)
        self.pad.update()

    def on_snap(self, on: bool) -> None:
        self.pad.snap = on
        self.pad.set_position(self.pad.at_x, self.pad.at_y)
        self.pad.update()
        self.schedule_save()

    def on_random(self, seed: int | None = None) -> None:
        self.inst.random_timbre(seed)
        self._say("random timbre (move the pad to go back to the corners)", 5000)

    def save_current_preset(self, name: str | None = None, overwrite: bool | None = None) -> Path | None:
        if name is None:
            name, ok = QInputDialog.getText(self, "Save preset", "Name of the new preset:")
            if not ok or not name.strip():
                return None
        try:
            path = self.inst.save_preset(name.strip(), overwrite=bool(overwrite))
        except PresetExists as e:
            if overwrite is not None:
                self.report(str(e))
                return None
            answer = QMessageBox.question(self, "Replace preset?", f"{e}.\nReplace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return None
            path = self.inst.save_preset(name.strip(), overwrite=True)
        except (PresetError, OSError) as e:
            self.report(f"preset not saved: {e}")
            return None
        self._refresh_preset_boxes()
        self._say(f"saved {path}", 5000)
        return path

    def _refresh_preset_boxes(self) -> None:
        """Fill the corner and mod-wheel boxes with the presets again, each keeping the timbre it had (also where
        a shipped preset was renamed "NAME (shipped)" by the user's preset of that name)."""
        for box, corner in zip(self.corner_boxes, self.inst.corners):
            box.blockSignals(True)
            box.clear()
            box.addItems([p.name for p in self.inst.presets])
            same = [k for k, p in enumerate(self.inst.presets) if np.array_equal(p.z, corner.z)]
            if same:
                box.setCurrentIndex(same[0])
                self.inst.corners[self.corner_boxes.index(box)] = self.inst.presets[same[0]]
            box.blockSignals(False)
        target = self.mod_box.currentText()
        self.mod_box.blockSignals(True)
        self.mod_box.clear()
        self.mod_box.addItems([p.name for p in self.inst.presets])
        self.mod_box.setCurrentText(target)
        self.mod_box.blockSignals(False)

    def import_sound(self, path: str, corner: int) -> None:
        """Make a preset of a recorded note dropped on the pad (`presets import`, in a process of its own: it
        needs torch, which the window never loads) and put it on `corner` once it is made."""
        if self.importing is not None:
            self.report("a sound is being imported already; drop the next one when it is done")
            return
        name = self.inst.free_preset_name(Path(path).stem)
        command = self.inst.import_command(path, name)
        model = str(self.inst.model.path)
        proc = QProcess(self)
        proc.setProgram(command[0])
        proc.setArguments(command[1:])
        proc.finished.connect(lambda code, status: self._imported(
            proc, code if status == QProcess.ExitStatus.NormalExit else -1, name, corner, model))
        proc.errorOccurred.connect(lambda err: self._imported(proc, -1, name, corner, model)
                                   if err == QProcess.ProcessError.FailedToStart else None)
        self.importing = proc
        self._say(f"importing {Path(path).name} for the {CORNERS[corner].lower()} corner…")
        proc.start()

    def _imported(self, proc: QProcess, code: int, name: str, corner: int, model: str) -> None:
        if self.importing is not proc:
            return
        self.importing = None
        proc.deleteLater()
        said = bytes(proc.readAllStandardOutput().data()).decode(errors="replace").strip().splitlines()
        errors = bytes(proc.readAllStandardError().data()).decode(errors="replace").strip().splitlines()
        if code != 0:
            why = errors[-1].removeprefix("gansynth-live: ") if errors else proc.errorString()
            self.report(f"not imported: {why}")
            return
        self.inst.reload_presets()
        self._refresh_preset_boxes()
        if model != str(self.inst.model.path):  # its latent is the other model's: on this one it is another sound
            self.report(f"imported {name} for {Path(model).name}, the model playing when it was dropped; "
                        f"choose that model again to play it")
            return
        names = [p.name for p in self.inst.presets]
        if name in names:
            box = self.corner_boxes[corner]
            box.blockSignals(True)
            box.setCurrentIndex(names.index(name))
            box.blockSignals(False)
            self.on_corner(corner)
        self._say(said[0] if said else f"imported {name}", 15000)

    def on_gain(self, db: int) -> None:
        self.inst.set_master_db(float(db))
        self.gain_label.setText(f"{db:+d} dB")
        self.schedule_save()

    def on_velocity(self, v: int) -> None:
        self.keyboard.fixed_velocity = v or None
        self.schedule_save()

    def on_record(self, on: bool) -> None:
        if on:
            path, _ = QFileDialog.getSaveFileName(self, "Record to", time.strftime("take-%Y%m%d-%H%M%S.flac"),
                                                  "FLAC (*.flac);;WAV (*.wav)")
            if not path:
                self.record_btn.setChecked(False)
                return
            try:
                self.inst.start_recording(path, overwrite=True)  # the dialog already asked about replacing
                self.record_btn.setText("■ Stop")
            except ValueError as e:
                self.report(str(e))
                self.record_btn.setChecked(False)
        else:
            took = self.inst.stop_recording()
            self.record_btn.setText("● Record")
            if took:
                self._say(f"recorded to {took}", 8000)

    def apply_devices(self) -> None:
        self.use_model(self.model_edit.text().strip() or self.started_model)
        self.inst.apply(self.chosen_devices())
        self.effects.refresh()
        self._show_device_errors()
        self.schedule_save()

    def _show_device_errors(self) -> None:
        for problem in (self.inst.audio_error, self.inst.midi_error, self.inst.chain_error):
            if problem:
                self.report(problem)

    def _say(self, text: str, ms: int = 0) -> None:
        bar = self.statusBar()
        if bar is not None:
            bar.showMessage(text, ms)

    def report(self, text: str) -> None:
        self._say(text, 15000)
        print(f"gansynth-live: {text}", flush=True)

    # -- MIDI learn ----------------------------------------------------------------------------------------------
    def learn(self, control: str) -> None:
        self.learning = control
        self._say(f"MIDI learn: move a knob or slider on your controller for {control}")

    def on_cc(self, channel: int, controller: int, value: int) -> None:
        if self.learning is not None:
            self.mappings = {k: v for k, v in self.mappings.items() if v != (channel, controller)}
            self.mappings[self.learning] = (channel, controller)
            self._say(f"{self.learning} ← CC {controller} on channel {channel + 1}", 5000)
            self.learning = None
            self._show_mappings()
            self.schedule_save()
        for control, source in self.mappings.items():
            if source == (channel, controller):
                self.set_control(control, value / 127)

    def set_control(self, control: str, v: float) -> None:
        if control == "morph_x":
            self.pad.set_position(v, self.pad.at_y)
        elif control == "morph_y":
            self.pad.set_position(self.pad.at_x, v)
        elif control == "master_gain":
            self.gain.setValue(round(-60 + 66 * v))
        elif control.startswith("fx:"):
            self.effects.set_control(control, v)

    def _show_mappings(self) -> None:
        self.learn_list.clear()
        for control, (ch, cc) in sorted(self.mappings.items()):
            self.learn_list.addItem(f"{control}  ←  CC {cc}, channel {ch + 1}")

    def forget_mapping(self) -> None:
        row = self.learn_list.currentRow()
        if row >= 0:
            del self.mappings[sorted(self.mappings)[row]]
            self._show_mappings()
            self.schedule_save()

    # -- live status ---------------------------------------------------------------------------------------------
    def poll(self) -> None:
        """25 ms tick: post the pad's latest timbre, act on controller moves and MIDI errors."""
        self.inst.flush_timbre()
        for event in self.inst.poll_events():
            if event[0] == "cc":
                self.on_cc(*event[1:])
            elif event[0] == "error":
                self.report(event[1])

    def refresh_status(self) -> None:
        st = self.inst.status()
        ready, total = st.bank_ready, st.bank_size
        self.pad.set_progress(ready, total)
        lab = self.status_labels
        lab["audio"].setText(st.audio or f"off ({self.inst.audio_error or 'not started'})")
        lab["latency"].setText(f"{st.latency_ms:.1f} ms" if st.latency_ms is not None else "–")
        lab["voices"].setText(f"{st.voices}")
        failed = st.failed_blocks
        lab["underruns"].setText(f"{st.underruns}"
                                 + (f" ({failed} failed blocks played as silence)" if failed else ""))
        lab["callback"].setText(f"{st.callback_p99_us:.0f} µs")
        lab["provider"].setText(st.provider.replace("ExecutionProvider", "") or "–")
        lab["bank"].setText(f"{st.last_bank_s:.2f} s ({ready}/{total} ready)" if st.last_bank_s else
                            f"rendering ({ready}/{total})")
        bad = st.bad_midi
        lab["midi"].setText((st.midi or f"off ({self.inst.midi_error or 'not opened'})")
                            + (f" ({bad} malformed messages dropped)" if bad else ""))
        if st.recording_s is not None:
            self.record_btn.setText(f"■ Stop ({st.recording_s:.0f} s)")
        if st.recording_error and st.recording_error != getattr(self, "_told_recording", None):
            self._told_recording = st.recording_error
            self.report(st.recording_error)
        self.keyboard.set_external(set(st.keys_held) - self.keyboard.pressed, st.key_velocities)
        self.meter.set_levels(st.meter)
        self.show_mod_target(st.mod_target)
        self.scope.set_frames(st.meter["scope"] if st.meter else None)

    # -- computer keyboard ---------------------------------------------------------------------------------------
    def keyPressEvent(self, e: QKeyEvent) -> None:
        pitch = computer_key_pitch(e.text(), self.octave)
        if pitch is None or e.isAutoRepeat():
            return super().keyPressEvent(e)
        self.keyboard.press(pitch, self.keyboard.fixed_velocity or 100)

    def keyReleaseEvent(self, e: QKeyEvent) -> None:
        pitch = computer_key_pitch(e.text(), self.octave)
        if pitch is None or e.isAutoRepeat():
            return super().keyReleaseEvent(e)
        self.keyboard.release(pitch)

    def closeEvent(self, e: QCloseEvent) -> None:
        self.timer.stop()
        self.flusher.stop()
        self.save_session()
        self.inst.close()
        super().closeEvent(e)
