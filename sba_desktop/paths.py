"""Where the library lives: platformdirs, or everything under $SBA_DESKTOP_HOME."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from sba_desktop import APP_NAME

HOME_ENV = "SBA_DESKTOP_HOME"


@dataclass(frozen=True)
class AppPaths:
    data: Path   # catalog, index, fitted model
    cache: Path  # thumbnails
    logs: Path

    def ensure(self) -> "AppPaths":
        for p in (self.data, self.cache, self.logs):
            p.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def log_file(self) -> Path:
        return self.logs / "sba-desktop.log"


def app_paths(home: str | os.PathLike | None = None) -> AppPaths:
    """One option (or SBA_DESKTOP_HOME) moves everything; else the user's platform dirs."""
    home = home or os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().resolve()
        return AppPaths(root / "data", root / "cache", root / "logs")
    return AppPaths(Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
                    Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
                    Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)))
