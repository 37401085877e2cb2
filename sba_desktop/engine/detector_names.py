"""Names for detectors: the ImageNet classes whose head weights load most on a channel.

The backbone's classifier is global average pooling + one linear layer, so class k's
score is sum_c W[k, c] * mean(channel c): the classes with the largest W[:, c] are
the ones channel c votes for. Their names ("wheel, sports car, tyre") describe what
the channel responds to far better than its number. Computed once at export time
from the real head (the runtime has no torch) and kept in the network's manifest.
"""
from __future__ import annotations

import numpy as np

CLASSES_PER_NAME = 3


def names_from_head(weights: np.ndarray, classes: list[str], top: int = CLASSES_PER_NAME) -> list[str]:
    """weights (C, n_classes): per channel, its `top` classes by weight, joined by commas."""
    w = np.asarray(weights)
    if w.shape[1] != len(classes):
        raise ValueError(f"{w.shape[1]} head outputs but {len(classes)} class names")
    order = np.argsort(-w, axis=1, kind="stable")[:, :top]
    return [", ".join(classes[i] for i in row) for row in order]


def detector_label(channel: int, names: list[str] | None) -> str:
    """What the Why view shows for a detector."""
    if names and 0 <= channel < len(names):
        return names[channel]
    return f"detector {channel}"
