"""Memory readings of this process (Linux /proc; nan elsewhere): for the start-up report and sba bench."""
from __future__ import annotations

import os


def _status_mb(key: str) -> float:
    """A memory figure from /proc/self/status (VmRSS: now, VmHWM: peak), in MB."""
    if not os.path.exists("/proc/self/status"):
        return float("nan")
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    return _status_mb("VmHWM")
