"""The window: time to the first window, memory once idle."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bench_idle_rss(home: Path) -> float:
    """RSS of the application after start-up, its library open and its network loaded, then idle."""
    env = {**os.environ, "SBA_DESKTOP_REPORT_STARTUP": "idle", "SBA_DESKTOP_HOME": str(home)}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    p = subprocess.run([sys.executable, "-m", "sba_desktop"], env=env, capture_output=True, text=True, timeout=180)
    found = [w for w in p.stdout.split() if w.startswith("idle_rss_mb=")]
    return float(found[0].split("=")[1]) if found else float("nan")


def bench_first_window(repeats: int) -> float:
    env = {**os.environ, "SBA_DESKTOP_REPORT_STARTUP": "quit"}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    env["SBA_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="sba-bench-home-")
    times = []
    for _ in range(repeats):
        t = time.time()  # process launch -> the window is shown (the app prints the moment)
        p = subprocess.run([sys.executable, "-m", "sba_desktop"], env=env, capture_output=True, text=True,
                           timeout=120)
        shown = [w for w in p.stdout.split() if w.startswith("first_window_epoch=")]
        if not shown:
            return float("nan")
        times.append(float(shown[0].split("=")[1]) - t)
    return statistics.median(times)
