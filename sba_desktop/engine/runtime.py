"""The product's inference: the backbone's trunk as an ONNX network in onnxruntime (no torch).

`load_runtime(name)` finds a trusted export (model_store); when there is none and torch is
installed, it exports one first (once, into the cache folder). Execution providers: CPU by
default; CUDA, CoreML, DirectML or OpenVINO are used when the matching onnxruntime package is
installed (onnxruntime-gpu, onnxruntime-directml, onnxruntime-openvino; CoreML ships in the macOS
wheel). Only the CPU provider has been run on our machines. SBA_DESKTOP_PROVIDERS=CPU (or a
comma list of provider names) overrides the choice.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from collections import Counter, OrderedDict

import numpy as np
from PIL import Image

from sba_desktop.engine.imaging import to_input
from sba_desktop.engine.model_store import StoredNetwork, find, writable_dir
from sba_desktop.engine.registry import DEFAULT_BACKBONE, BackboneInfo, MissingWeightsError, backbone_info
from sba_desktop.paths import app_paths

log = logging.getLogger(__name__)

PROVIDERS_ENV = "SBA_DESKTOP_PROVIDERS"
MAX_SESSIONS = 3      # shape-specialised sessions kept (a library has a handful of common shapes)
SPECIALISE_AFTER = 3  # runs of one shape before it gets its own session
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider",
                       "OpenVINOExecutionProvider", "CPUExecutionProvider")


def choose_providers(available: list[str]) -> list[str]:
    """Accelerators first when installed, the CPU always last as the fallback."""
    env = os.environ.get(PROVIDERS_ENV)
    if env:
        wanted = [p if p.endswith("ExecutionProvider") else f"{p}ExecutionProvider"
                  for p in (x.strip() for x in env.split(",")) if p]
        chosen = [p for p in wanted if p in available]
    else:
        chosen = [p for p in PREFERRED_PROVIDERS if p in available]
    return chosen + (["CPUExecutionProvider"] if "CPUExecutionProvider" not in chosen else [])


class ImagenetHead:
    """The backbone's own ImageNet classifier over a feature map: mean over places, one linear
    layer. Used to check a detector's name on the library's own patches, never to search."""

    def __init__(self, weights: np.ndarray, bias: np.ndarray):
        self.weights, self.bias = weights, bias

    @classmethod
    def from_manifest(cls, record: dict | None) -> "ImagenetHead | None":
        if not record:
            return None
        import base64

        w = np.frombuffer(base64.b64decode(record["weights_f16"]), np.float16).reshape(record["shape"])
        return cls(w.astype(np.float32), np.asarray(record["bias"], np.float32))

    def top_classes(self, fmap: np.ndarray, k: int = 5) -> list[int]:
        """The k classes the head gives a C x h x w map, most likely first."""
        logits = self.weights @ np.asarray(fmap, np.float32).mean(axis=(1, 2)) + self.bias
        return [int(i) for i in np.argsort(-logits, kind="stable")[:k]]

    def channel_classes(self, channel: int, k: int = 3) -> list[int]:
        """The k classes a channel votes for most (its name's classes)."""
        return [int(i) for i in np.argsort(-self.weights[:, channel], kind="stable")[:k]]


class OnnxBackbone:
    """Same interface as the torch reference (backbones.Backbone): preprocess + forward."""

    runtime = "onnx"

    def __init__(self, info: BackboneInfo, network: StoredNetwork, threads: int | None = None):
        ort = _onnxruntime()

        self.info = info
        self.name = info.name
        self.version = info.version
        self.channels = info.channels
        self.network = network
        # what each channel responds to, named at export from the ImageNet head (detector_names.py)
        self.channel_names: list[str] | None = network.manifest.get("channel_names")
        self.imagenet_head = ImagenetHead.from_manifest(network.manifest.get("head"))
        self._ort = ort
        self.threads = threads or os.cpu_count() or 1
        self.providers = choose_providers(ort.get_available_providers())
        self._sessions: OrderedDict[tuple, object] = OrderedDict()
        self._seen: Counter = Counter()
        self._lock = threading.Lock()  # one run at a time: the session's own pool uses every core
        self._generic = self._make_session(None)  # fails early on a broken file

    def _make_session(self, shape: tuple[int, int, int] | None):
        ort = self._ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No arena: each session would otherwise keep its peak activations allocated (measured
        # +270 MB peak RSS over a mixed-shape library), at no measurable speed cost here.
        so.enable_cpu_mem_arena = False
        # Idle inference threads must not spin: decoding runs beside them on the same cores.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for name, value in zip(("batch", "height", "width"), shape or ()):
            so.add_free_dimension_override_by_name(name, int(value))
        return ort.InferenceSession(str(self.network.onnx), so, providers=self.providers)

    def _session(self, shape: tuple[int, int, int]):
        """The session for one (batch, height, width).

        The exported graph computes TF "same" padding from the input size; with the sizes fixed
        (onnxruntime's free-dimension override) those shape computations fold into constants and
        the CPU kernels get a static layout: measured 1.6x faster than the dynamic graph (259 vs
        159 photos/s at batch 4, 224x168), same outputs. A library has a handful of common
        shapes: each one seen SPECIALISE_AFTER times gets its own session (~0.03 s to make, a few
        kept); rare shapes (odd aspect ratios, query regions) run in the one dynamic session."""
        sess = self._sessions.get(shape)
        if sess is not None:
            self._sessions.move_to_end(shape)
            return sess
        self._seen[shape] += 1
        if self._seen[shape] < SPECIALISE_AFTER:
            return self._generic
        sess = self._sessions[shape] = self._make_session(shape)
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return sess

    def preprocess(self, rgb: Image.Image, long_side: int | None) -> np.ndarray:
        """RGB Pillow image -> normalised 3xHxW float32 array, long side scaled (no crop)."""
        return to_input(rgb, long_side, self.info.mean, self.info.std)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Bx3xHxW -> BxCxhxw float32, non-negative (after the last ReLU)."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:
            return self._session((x.shape[0], x.shape[2], x.shape[3])).run(None, {"image": x})[0]


def _onnxruntime():
    """onnxruntime, imported with XDG_CACHE_HOME pointing into the product's own cache folder:
    at its import it writes a telemetry device id under $XDG_CACHE_HOME (else ~/.cache/Microsoft),
    which must not land outside the product's folders."""
    if "onnxruntime" in sys.modules or os.name == "nt":
        import onnxruntime

        return onnxruntime
    own = app_paths().cache / "onnxruntime"
    before = os.environ.get("XDG_CACHE_HOME")
    try:
        own.mkdir(parents=True, exist_ok=True)
        os.environ["XDG_CACHE_HOME"] = str(own)
    except OSError:  # a read-only cache: its write fails quietly, an id in memory is used
        pass
    try:
        import onnxruntime
    finally:
        if before is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = before
    return onnxruntime


_cache: dict[tuple, OnnxBackbone] = {}
_cache_lock = threading.Lock()


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def load_runtime(name: str = DEFAULT_BACKBONE, weights_path: str | None = None,
                 threads: int | None = None) -> OnnxBackbone:
    """The product's backbone (once per process): a trusted ONNX export, exported first if needed.
    `threads`: the inference pool's size (default: every core; a cluster worker gets its share)."""
    info = backbone_info(name)
    key = (name, weights_path, threads)
    with _cache_lock:
        if key not in _cache:
            net, reasons, wsha = find(info, weights_path)
            if net is None:
                for r in reasons:
                    log.warning("not using %s", r)
                if wsha is None or not torch_available():
                    why = "; ".join(reasons) or "no exported network found"
                    raise MissingWeightsError(
                        f"the {name} network is not available ({why}). It is built from the weight "
                        f"file with torch: python -m sba_desktop.engine.torch_build.onnx_export --backbone {name}")
                from sba_desktop.engine.torch_build.onnx_export import export

                log.info("exporting %s to ONNX (once) into %s", name, writable_dir())
                export(name, writable_dir(), weights_path)
                net, reasons, _ = find(info, weights_path)
                if net is None:
                    raise RuntimeError(f"the fresh ONNX export of {name} is not usable: {reasons}")
            _cache[key] = OnnxBackbone(info, net, threads)
        return _cache[key]
