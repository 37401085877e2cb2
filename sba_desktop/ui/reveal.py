"""Show a photo in the system's file manager, selected where the platform can select it."""
from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices


def reveal_command(path: str, platform: str = sys.platform) -> list[str] | None:
    """The command that opens the file manager with `path` selected; None: open its folder."""
    if platform == "win32":
        return ["explorer", f"/select,{os.path.normpath(path)}"]
    if platform == "darwin":
        return ["open", "-R", path]
    # Linux and other freedesktop systems: the FileManager1 D-Bus interface (Nautilus, Dolphin,
    # Nemo, Thunar...) selects the file; without dbus-send the folder is opened instead
    from shutil import which

    if which("dbus-send") is None:
        return None
    uri = QUrl.fromLocalFile(path).toString(QUrl.ComponentFormattingOption.FullyEncoded)
    return ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.FileManager1",
            "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1.ShowItems",
            f"array:string:{uri}", "string:"]


def reveal_in_file_manager(path: str) -> None:
    cmd = reveal_command(path)
    if cmd is not None:
        try:
            # explorer.exe returns 1 even when it worked: only a failure to start counts
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
            if done.returncode == 0 or sys.platform == "win32":
                return
        except (OSError, subprocess.TimeoutExpired):
            pass
    QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path)))
