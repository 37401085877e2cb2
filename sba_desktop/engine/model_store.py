"""Where exported ONNX networks live and whether one can be trusted (no torch here).

A network is `<name>.onnx` beside `<name>.json`, its manifest: the backbone version, the
weight file's sha256, the export settings and the ONNX file's own sha256. A file is used only
when all of these match; anything missing, stale or corrupt is reported, never silently used.

Folders searched, in order: $SBA_DESKTOP_MODELS; the `models/` folder shipped inside the package
or the bundle (read-only); the user's cache folder (where a first use exports to).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sba_desktop.paths import app_paths
from sba_desktop.engine.registry import BackboneInfo, MissingWeightsError, file_sha256, weight_path

MODELS_ENV = "SBA_DESKTOP_MODELS"
MANIFEST_FORMAT = 1
# What the exporter does; a change here makes every earlier export stale (revision 2: the
# manifest names each channel from the ImageNet head; 3: it carries the head itself).
EXPORT_SETTINGS = {"opset": 17, "exporter": "torchscript", "input": "image", "output": "features",
                   "dynamic": ["batch", "height", "width"], "revision": 3}


@dataclass(frozen=True)
class StoredNetwork:
    onnx: Path
    manifest: dict


def shipped_dir() -> Path:
    """models/ inside the package (a wheel or a PyInstaller bundle ships the network there)."""
    return Path(__file__).resolve().parents[1] / "models"


def writable_dir() -> Path:
    env = os.environ.get(MODELS_ENV)
    return Path(env).expanduser() if env else app_paths().cache / "models"


def search_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs += [shipped_dir(), app_paths().cache / "models"]
    return list(dict.fromkeys(dirs))


def expected_manifest(info: BackboneInfo, weights_sha256: str | None) -> dict:
    return {"format": MANIFEST_FORMAT, "backbone": info.name, "version": info.version,
            "weights_sha256": weights_sha256, "export": EXPORT_SETTINGS}


def check(folder: Path, info: BackboneInfo, weights_sha256: str | None) -> tuple[StoredNetwork | None, str]:
    """The network in `folder` if it can be trusted, else None and why not."""
    onnx, man = folder / f"{info.name}.onnx", folder / f"{info.name}.json"
    if not onnx.is_file() or not man.is_file():
        return None, "missing"
    try:
        manifest = json.loads(man.read_text())
    except (OSError, ValueError) as exc:
        return None, f"manifest unreadable ({exc})"
    want = expected_manifest(info, weights_sha256)
    for key, value in want.items():
        if key == "weights_sha256" and value is None:
            continue  # no weight file here (a bundle): the version names the weights
        if manifest.get(key) != value:
            return None, f"stale ({key} differs)"
    if file_sha256(onnx) != manifest.get("onnx_sha256"):
        return None, "corrupt (its sha256 does not match the manifest)"
    return StoredNetwork(onnx, manifest), "ok"


def find(info: BackboneInfo, weights_path: str | None = None) -> tuple[StoredNetwork | None, list[str], str | None]:
    """(network or None, reasons per folder, sha256 of the local weight file or None)."""
    try:
        wsha = file_sha256(weight_path(info.name, weights_path))
    except MissingWeightsError:
        if weights_path:
            raise
        wsha = None
    reasons = []
    for folder in search_dirs():
        net, why = check(folder, info, wsha)
        if net is not None:
            return net, reasons, wsha
        if why != "missing":
            reasons.append(f"{folder / (info.name + '.onnx')}: {why}")
    return None, reasons, wsha
