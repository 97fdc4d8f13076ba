"""The master effects chain editor: add built-ins, load a VST3/AU plugin, bypass, reorder, remove, and a slider
per parameter of the selected effect (right-click a slider to MIDI-learn it)."""
from __future__ import annotations

from typing import Callable

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QFileDialog, QFormLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMenu,
                             QPushButton, QSlider, QVBoxLayout, QWidget)

from synth.engine.effects import BUILTINS, EffectError
from synth.engine.sound_process import RemoteChain

STEPS = 1000


class EffectsPanel(QWidget):
    changed = pyqtSignal()
    learn_requested = pyqtSignal(str)   # "fx:<uid>:<parameter>"
    error = pyqtSignal(str)

    def __init__(self, chain: Callable[[], RemoteChain | None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._chain = chain  # a getter: the chain of the sound process running now (None while it is down)
        self.sliders: dict[str, QSlider] = {}
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._show_parameters)
        self.list.itemChanged.connect(self._bypass_changed)
        add = QPushButton("Add ▾")
        menu = QMenu(add)
        for kind in BUILTINS:
            menu.addAction(kind.capitalize(), lambda k=kind: self.add_builtin(k))
        add.setMenu(menu)
        plugin = QPushButton("Load plugin…")
        plugin.clicked.connect(self._ask_plugin)
        up, down, remove = QPushButton("▲"), QPushButton("▼"), QPushButton("Remove")
        up.clicked.connect(lambda: self._move(-1))
        down.clicked.connect(lambda: self._move(1))
        remove.clicked.connect(self._remove)
        buttons = QHBoxLayout()
        for b in (add, plugin, up, down, remove):
            buttons.addWidget(b)
        self.params = QFormLayout()
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.list, 1)
        layout.addLayout(self.params)
        self.refresh()

    def chain(self) -> RemoteChain:
        chain = self._chain()
        if chain is None:
            raise EffectError("the sound is not running")
        return chain

    def refresh(self, select: int | None = None) -> None:
        if self._chain() is None:
            self.list.clear()
            return
        self.list.blockSignals(True)
        self.list.clear()
        for fx in self.chain().effects:
            item = QListWidgetItem(fx.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if fx.bypass else Qt.CheckState.Checked)
            item.setToolTip("untick to bypass")
            self.list.addItem(item)
        self.list.blockSignals(False)
        row = select if select is not None else min(self.list.count() - 1, 0)
        self.list.setCurrentRow(row)
        self._show_parameters(row)

    def add_builtin(self, kind: str, **params: float) -> None:
        self._edit(lambda: self.chain().add_builtin(kind, **params), select=-1)

    def _edit(self, action, select: int | None = None) -> None:
        try:
            action()
        except EffectError as e:
            self.error.emit(str(e))
            return
        self.refresh(len(self.chain()) - 1 if select == -1 else select)
        self.changed.emit()

    def _ask_plugin(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a VST3 or AU plugin", "",
                                              "Plugins (*.vst3 *.component);;All files (*)")
        if path:
            self._edit(lambda: self.chain().add_plugin(path), select=-1)

    def _move(self, step: int) -> None:
        row = self.list.currentRow()
        if row >= 0 and 0 <= row + step < self.list.count():
            self._edit(lambda: self.chain().move(row, row + step), select=row + step)

    def _remove(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self._edit(lambda: self.chain().remove(row))

    def _bypass_changed(self, item: QListWidgetItem) -> None:
        row, on = self.list.row(item), item.checkState() != Qt.CheckState.Checked
        self._edit(lambda: self.chain().set_bypass(row, on), select=row)

    def _show_parameters(self, row: int) -> None:
        while self.params.rowCount():
            self.params.removeRow(0)
        self.sliders.clear()
        if self._chain() is None or not 0 <= row < len(self.chain()):
            return
        fx = self.chain().effects[row]
        for name, (value, lo, hi) in fx.parameters().items():
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, STEPS)
            slider.setValue(round((value - lo) / (hi - lo) * STEPS) if hi > lo else 0)
            label = QLabel(f"{value:.3g}")
            label.setMinimumWidth(52)
            slider.valueChanged.connect(lambda v, n=name, lo=lo, hi=hi, lab=label, uid=fx.uid:
                                        self._set(uid, n, lo + (hi - lo) * v / STEPS, lab))
            control = f"fx:{fx.uid}:{name}"
            slider.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            slider.customContextMenuRequested.connect(lambda pos, c=control, s=slider: self._learn_menu(s, pos, c))
            row_widget = QHBoxLayout()
            row_widget.addWidget(slider, 1)
            row_widget.addWidget(label)
            self.params.addRow(name.replace("_", " "), row_widget)
            self.sliders[control] = slider

    def _learn_menu(self, slider: QSlider, pos, control: str) -> None:
        menu = QMenu(slider)
        menu.addAction("MIDI learn", lambda: self.learn_requested.emit(control))
        menu.exec(slider.mapToGlobal(pos))

    def _set(self, uid: str, name: str, value: float, label: QLabel) -> None:
        index = self.chain().find(uid)
        if index is None:
            return
        try:
            self.chain().set(index, name, value)
        except EffectError as e:
            self.error.emit(str(e))
            return
        label.setText(f"{value:.3g}")
        self.changed.emit()

    def set_control(self, control: str, value01: float) -> bool:
        """Drive a parameter from a MIDI CC (0..1); False if the control's effect is gone."""
        _, uid, name = control.split(":", 2)
        if self._chain() is None:
            return False
        index = self.chain().find(uid)
        if index is None:
            return False
        if control in self.sliders:
            self.sliders[control].setValue(round(value01 * STEPS))  # updates the effect through the slider
        else:
            _, lo, hi = self.chain().effects[index].parameters()[name]
            self.chain().set(index, name, lo + (hi - lo) * value01)
        return True
