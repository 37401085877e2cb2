"""The Qt binding keeps Python's reference counts: PySide6 6.12.0's Signal.emit() dropped a
reference to True on every call, so after a few thousand signals (an indexing run's progress, the
window's jobs) Python freed True and the process aborted ("bool_dealloc")."""
import sys

from PySide6.QtCore import QCoreApplication, QObject, Signal


class _Sender(QObject):
    nothing = Signal()
    flag = Signal(bool)
    value = Signal(object)


def test_emitting_signals_leaves_reference_counts_alone():
    app = QCoreApplication.instance() or QCoreApplication([])
    sender, seen = _Sender(), []
    sender.nothing.connect(lambda: seen.append(None))
    sender.flag.connect(seen.append)
    sender.value.connect(seen.append)
    payload = object()
    before = [sys.getrefcount(o) for o in (True, False, payload)]
    for _ in range(1000):  # 6.12.0: True lost 2,000 references here
        sender.nothing.emit()
        sender.flag.emit(False)
        sender.value.emit(payload)
    assert len(seen) == 3000
    seen.clear()
    app.processEvents()
    drift = [sys.getrefcount(o) - b for o, b in zip((True, False, payload), before)]
    assert all(abs(d) < 10 for d in drift), drift   # what Python itself holds may move by one or two
