"""Build step: export a backbone's trunk from torch to ONNX, verify it, write its manifest.

Run once per machine (scripts/setup, the bundle build, or the first use when torch is there):
  python -m sba_desktop.engine.torch_build.onnx_export [--backbone NAME] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from sba_desktop.engine.model_store import EXPORT_SETTINGS, expected_manifest, writable_dir
from sba_desktop.engine.registry import DEFAULT_BACKBONE, backbone_info, file_sha256

log = logging.getLogger(__name__)
TOLERANCE = 1e-3  # max abs difference allowed between ONNX and torch feature maps


def export(name: str = DEFAULT_BACKBONE, out_dir: str | os.PathLike | None = None,
           weights_path: str | None = None) -> Path:
    """Export `name` to out_dir/<name>.onnx (+ .json manifest), atomically; returns the .onnx path."""
    import onnxruntime as ort
    import torch

    from sba_desktop.engine.torch_build.backbones import load_backbone

    info = backbone_info(name)
    out = Path(out_dir) if out_dir else writable_dir()
    out.mkdir(parents=True, exist_ok=True)
    bb = load_backbone(name, weights_path)
    trunk = bb.trunk.to(memory_format=torch.contiguous_format)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=out)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic: checked below
            torch.onnx.export(trunk, (torch.zeros(1, 3, 224, 168),), tmp, dynamo=False,
                              opset_version=EXPORT_SETTINGS["opset"], input_names=["image"],
                              output_names=["features"],
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "features": {0: "batch", 2: "fh", 3: "fw"}})
        trunk.to(memory_format=torch.channels_last)
        # The TF "same" padding is computed from the input size: check sizes other than the traced one.
        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        for shape in [(1, 3, 224, 168), (2, 3, 167, 224), (1, 3, 224, 99), (1, 3, 320, 320)]:
            x = rng.uniform(-1, 1, shape).astype(np.float32)
            diff = float(np.abs(sess.run(None, {"image": x})[0] - bb.forward(x)).max())
            if not diff <= TOLERANCE:
                raise RuntimeError(f"ONNX export of {name} differs from torch by {diff} at {shape}")
        del sess
        from sba_desktop.engine.torch_build.backbones import channel_classes, imagenet_classes
        from sba_desktop.engine.detector_names import names_from_head

        head = channel_classes(bb)
        names = names_from_head(head, imagenet_classes()) if head is not None else None
        manifest = {**expected_manifest(info, file_sha256(bb.weights)),
                    "channel_names": names, "head": head_record(bb, head),
                    "weights_file": info.weight_file, "weights_license": info.license,
                    "onnx_sha256": file_sha256(tmp), "channels": info.channels,
                    "mean": info.mean, "std": info.std, "torch": torch.__version__}
        target = out / f"{name}.onnx"
        os.replace(tmp, target)
        man_tmp = out / f"{name}.json.tmp"
        man_tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(man_tmp, out / f"{name}.json")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("exported %s to %s", name, target)
    return target


def head_record(bb, head: np.ndarray | None) -> dict | None:
    """The ImageNet classifier (global average pooling, then one linear layer) in the manifest, so
    the run-time can check a detector's name on its own gallery (library/explain.py): weights
    (1000 x C) in float16, base64, and the bias."""
    import base64

    import torch

    if head is None:
        return None
    linear = [m for m in bb.head.modules() if isinstance(m, torch.nn.Linear)][0]
    weights = linear.weight.detach().numpy().astype(np.float16)
    return {"weights_f16": base64.b64encode(weights.tobytes()).decode("ascii"), "shape": list(weights.shape),
            "bias": [round(float(v), 6) for v in linear.bias.detach().numpy()]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sba_desktop.engine.torch_build.onnx_export",
                                 description="Export a backbone to ONNX for the run-time (needs torch).")
    ap.add_argument("--backbone", default=DEFAULT_BACKBONE)
    ap.add_argument("--out", help="folder (default: $SBA_DESKTOP_MODELS or the user cache)")
    ap.add_argument("--weights", help="a weight file instead of the installed one")
    a = ap.parse_args(argv)
    print(export(a.backbone, a.out, a.weights))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
