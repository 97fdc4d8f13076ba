"""The XY morph pad (NSynth Super's layout): four corner timbres, a puck that morphs between them, an optional
snapping grid, and a bar showing how much of the note bank is rendered for where the puck is. An audio file
dropped on the pad is offered to the corner nearest the drop."""
from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import (QColor, QDragEnterEvent, QDropEvent, QImage, QLinearGradient, QMouseEvent, QPainter,
                         QPaintEvent, QPen)
from PyQt6.QtWidgets import QMenu, QSizePolicy, QWidget

GRID = 4  # snapping divisions per side


class MorphPad(QWidget):
    moved = pyqtSignal(float, float)        # x, y in [0, 1], top-left = (0, 0)
    learn_requested = pyqtSignal(str)       # "morph_x" or "morph_y"
    sound_dropped = pyqtSignal(str, int)    # a local file's path, the corner (0 TL, 1 TR, 2 BL, 3 BR) it fell nearest

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.at_x, self.at_y = 0.5, 0.5  # not x, y: those are QWidget methods
        self.snap = False
        self.names = ["", "", "", ""]
        self.ready, self.total = 0, 61
        self.background: QImage | None = None  # the timbre map (gui.timbre_map), stretched over the pad
        self.labels: list[tuple[str, float, float]] = []  # (name, x, y) written over the map
        self.setMinimumSize(320, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self.setToolTip("Drag to morph the timbre; drop a recorded note on a corner to play its timbre there; "
                        "right-click to MIDI-learn X or Y")
        self.setAcceptDrops(True)

    def _area(self) -> QRectF:
        return QRectF(self.rect()).adjusted(14, 30, -14, -40)

    def set_position(self, x: float, y: float, emit: bool = True) -> None:
        x, y = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
        if self.snap:
            x, y = round(x * GRID) / GRID, round(y * GRID) / GRID
        if (x, y) == (self.at_x, self.at_y):
            return
        self.at_x, self.at_y = x, y
        self.update()
        if emit:
            self.moved.emit(x, y)

    def set_progress(self, ready: int, total: int) -> None:
        if (ready, total) != (self.ready, self.total):
            self.ready, self.total = ready, total
            self.update()

    def _from_mouse(self, p: QPointF) -> None:
        a = self._area()
        self.set_position((p.x() - a.left()) / a.width(), (p.y() - a.top()) / a.height())

    def mousePressEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._from_mouse(e.position())

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if e.buttons() & Qt.MouseButton.LeftButton:
            self._from_mouse(e.position())

    def dragEnterEvent(self, e: QDragEnterEvent | None) -> None:
        mime = e.mimeData() if e else None
        if e and mime and mime.hasUrls() and any(u.isLocalFile() for u in mime.urls()):
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent | None) -> None:
        mime = e.mimeData() if e else None
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime else []
        if e and files:
            a, at = self._area(), e.position()
            corner = int(at.x() >= a.center().x()) + 2 * int(at.y() >= a.center().y())
            e.acceptProposedAction()
            self.sound_dropped.emit(files[0], corner)

    def contextMenuEvent(self, e) -> None:
        menu = QMenu(self)
        for axis in ("x", "y"):
            menu.addAction(f"MIDI learn morph {axis.upper()}", lambda a=axis: self.learn_requested.emit(f"morph_{a}"))
        menu.exec(e.globalPos())

    def paintEvent(self, e: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        a = self._area()
        p.fillRect(self.rect(), QColor("#161c28"))
        grad = QLinearGradient(a.topLeft(), a.bottomRight())
        grad.setColorAt(0, QColor("#24324a"))
        grad.setColorAt(1, QColor("#1b3a34"))
        p.fillRect(a, grad)
        if self.background is not None:
            p.setOpacity(0.85)
            p.drawImage(a, self.background)
            p.setOpacity(1.0)
            p.setPen(QColor("#f0f0f0"))
            for name, lx, ly in self.labels:
                p.drawText(QRectF(a.left() + lx * a.width() - 60, a.top() + ly * a.height() - 9, 120, 18),
                           Qt.AlignmentFlag.AlignCenter, name)
        p.setPen(QPen(QColor("#3d4b63"), 1))
        if self.snap:
            for i in range(1, GRID):
                gx = a.left() + a.width() * i / GRID
                gy = a.top() + a.height() * i / GRID
                p.drawLine(QPointF(gx, a.top()), QPointF(gx, a.bottom()))
                p.drawLine(QPointF(a.left(), gy), QPointF(a.right(), gy))
        p.drawRect(a)
        p.setPen(QColor("#e8e8e8"))
        tl, tr, bl, br = self.names
        r = QRectF(self.rect())
        p.drawText(r.adjusted(14, 6, 0, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, tl)
        p.drawText(r.adjusted(0, 6, -14, 0), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, tr)
        below = QRectF(r.left() + 14, a.bottom() + 4, r.width() - 28, 18)
        p.drawText(below, Qt.AlignmentFlag.AlignLeft, bl)
        p.drawText(below, Qt.AlignmentFlag.AlignRight, br)
        centre = QPointF(a.left() + self.at_x * a.width(), a.top() + self.at_y * a.height())
        p.setPen(QPen(QColor("#7ee0c3"), 2))
        p.setBrush(QColor(126, 224, 195, 90))
        p.drawEllipse(centre, 13, 13)
        bar = QRectF(a.left(), r.bottom() - 14, a.width(), 8)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#3d4b63"))
        p.drawRect(bar)
        p.setBrush(QColor("#7ee0c3"))
        p.drawRect(QRectF(bar.left(), bar.top(), bar.width() * self.ready / max(self.total, 1), bar.height()))
        p.setPen(QColor("#b8c2d0"))
        p.drawText(QRectF(bar.left(), bar.top() - 18, bar.width(), 16), Qt.AlignmentFlag.AlignHCenter,
                   f"bank {self.ready}/{self.total} notes ready")
        p.end()
