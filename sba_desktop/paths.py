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

    # The library's files: every module asks here for their names.
    @property
    def catalog_file(self) -> Path:
        return self.data / "catalog.sqlite"

    @property
    def index_file(self) -> Path:
        return self.data / "vectors.hnsw"

    @property
    def index_model_file(self) -> Path:
        """Which model's vectors the index file holds (written after the index is saved)."""
        return self.data / "vectors.hnsw.model"

    def model_file(self, model_id: str) -> Path:
        return self.data / model_file_name(model_id)


def model_file_name(model_id: str) -> str:
    """A fitted model's file, as the catalog records it (relative to the library's data folder)."""
    return f"model-{model_id}.npz"


def app_paths(home: str | os.PathLike | None = None) -> AppPaths:
    """One option (or SBA_DESKTOP_HOME) moves everything; else the user's platform dirs."""
    home = home or os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().resolve()
        return AppPaths(root / "data", root / "cache", root / "logs")
    return AppPaths(Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
                    Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
                    Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)))
