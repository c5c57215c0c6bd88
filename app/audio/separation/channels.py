"""Running stereo models on any channel count: split into stereo pairs, merge back."""

from __future__ import annotations

import numpy as np


def stereo_pairs(samples: np.ndarray) -> list[np.ndarray]:
    """Split ``(channels, frames)`` into ``(2, frames)`` pairs; an odd last channel is doubled."""
    channels = samples.shape[0]
    return [np.ascontiguousarray(samples[[i, min(i + 1, channels - 1)]]) for i in range(0, channels, 2)]


def merge_pairs(pairs: list[np.ndarray], channels: int) -> np.ndarray:
    """Inverse of ``stereo_pairs`` for per-pair estimates; a doubled channel gets the mean of both."""
    if channels == 2 and len(pairs) == 1:
        return pairs[0].astype(np.float32, copy=False)
    frames = pairs[0].shape[1] if pairs else 0
    out = np.zeros((channels, frames), dtype=np.float32)
    for p, pair in enumerate(pairs):
        if 2 * p + 1 < channels:
            out[2 * p : 2 * p + 2] = pair
        else:
            out[2 * p] = pair.mean(axis=0)
    return out
