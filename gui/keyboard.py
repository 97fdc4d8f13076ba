"""An on-screen piano: click or use the computer keyboard (Z-row from C3, Q-row from C4, as trackers and DAWs do);
keys held by MIDI light up too. Velocity comes from how low on the key you click, or a fixed value."""
from __future__ import annotations

from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

LOW, HIGH = 36, 96  # C2 to C7
BLACK = {1, 3, 6, 8, 10}
LOWER_ROW = "zsxdcvgbhnjm,l.;/"   # C3 upward
UPPER_ROW = "q2w3er5t6y7ui9o0p"   # C4 upward


def computer_key_pitch(text: str, octave_shift: int = 0) -> int | None:
    t = text.lower()
    if t and t in LOWER_ROW:
        return 48 + LOWER_ROW.index(t) + 12 * octave_shift
    if t and t in UPPER_ROW:
        return 60 + UPPER_ROW.index(t) + 12 * octave_shift
    return None


class Keyboard(QWidget):
    note_on = pyqtSignal(int, int)   # pitch, velocity
    note_off = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fixed_velocity: int | None = None
        self.pressed: set[int] = set()      # by mouse or computer keys
        self.external: set[int] = set()     # held through MIDI
        self.velocities: dict[int, int] = {}  # each lit key's velocity: the brighter, the harder it was struck
        self._mouse_pitch: int | None = None
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def _white_keys(self) -> list[int]:
        return [p for p in range(LOW, HIGH + 1) if p % 12 not in BLACK]

    def key_rect(self, pitch: int) -> QRectF:
        whites = self._white_keys()
        w = self.width() / len(whites)
        if pitch % 12 not in BLACK:
            return QRectF(whites.index(pitch) * w, 0, w, self.height())
        left = whites.index(pitch - 1)
        return QRectF((left + 1) * w - w * 0.3, 0, w * 0.6, self.height() * 0.6)

    def pitch_at(self, x: float, y: float) -> int | None:
        for p in range(LOW, HIGH + 1):  # black keys lie on top: test them first
            if p % 12 in BLACK and self.key_rect(p).contains(x, y):
                return p
        for p in self._white_keys():
            if self.key_rect(p).contains(x, y):
                return p
        return None

    def velocity_at(self, pitch: int, y: float) -> int:
        if self.fixed_velocity is not None:
            return self.fixed_velocity
        r = self.key_rect(pitch)
        return int(round(30 + 97 * min(max((y - r.top()) / r.height(), 0.0), 1.0)))

    def press(self, pitch: int, velocity: int) -> None:
        if pitch not in self.pressed:
            self.pressed.add(pitch)
            self.velocities[pitch] = velocity
            self.note_on.emit(pitch, velocity)
            self.update()

    def release(self, pitch: int) -> None:
        if pitch in self.pressed:
            self.pressed.discard(pitch)
            self.note_off.emit(pitch)
            self.update()

    def set_external(self, pitches: set[int], velocities: dict[int, int] | None = None) -> None:
        """The keys MIDI holds, with their velocities if known (a key without one lights fully)."""
        velocities = velocities or {}
        changed = any(self.velocities.get(k) != v for k, v in velocities.items())
        self.velocities.update(velocities)
        if pitches != self.external or changed:
            self.external = pitches
            self.update()

    def key_colour(self, pitch: int, black: bool) -> QColor:
        """A key's fill: its own colour when up; lit, the lit colour in proportion to its velocity (a quarter at
        velocity 1, full at 127)."""
        up, lit = (QColor("#1d1d1d"), QColor("#3aa58a")) if black else (QColor("#f4f4f4"), QColor("#7ee0c3"))
        if pitch not in self.pressed and pitch not in self.external:
            return up
        w = 0.25 + 0.75 * min(max(self.velocities.get(pitch, 127), 1), 127) / 127
        return QColor(round(up.red() + (lit.red() - up.red()) * w), round(up.green() + (lit.green() - up.green()) * w),
                      round(up.blue() + (lit.blue() - up.blue()) * w))

    def mousePressEvent(self, e: QMouseEvent) -> None:
        pitch = self.pitch_at(e.position().x(), e.position().y())
        if pitch is not None:
            self._mouse_pitch = pitch
            self.press(pitch, self.velocity_at(pitch, e.position().y()))

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # glissando
        pitch = self.pitch_at(e.position().x(), e.position().y())
        if pitch is not None and pitch != self._mouse_pitch and self._mouse_pitch is not None:
            self.release(self._mouse_pitch)
            self._mouse_pitch = pitch
            self.press(pitch, self.velocity_at(pitch, e.position().y()))

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        if self._mouse_pitch is not None:
            self.release(self._mouse_pitch)
            self._mouse_pitch = None

    def paintEvent(self, e: QPaintEvent) -> None:
        p = QPainter(self)
        for pitch in self._white_keys():
            p.setPen(QColor("#555"))
            p.setBrush(self.key_colour(pitch, False))
            p.drawRect(self.key_rect(pitch))
            if pitch % 12 == 0:
                r = self.key_rect(pitch)
                p.drawText(r.adjusted(0, 0, 0, -4), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                           f"C{pitch // 12 - 1}")
        for pitch in range(LOW, HIGH + 1):
            if pitch % 12 in BLACK:
                p.setPen(QColor("#111"))
                p.setBrush(self.key_colour(pitch, True))
                p.drawRect(self.key_rect(pitch))
        p.end()
