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


_DOWNMIX = {  # ITU-R BS.775 stereo downmix for FFmpeg's channel orders; the LFE is left out
    6: ([1.0, 0.0, 0.7071, 0.0, 0.7071, 0.0], [0.0, 1.0, 0.7071, 0.0, 0.0, 0.7071]),  # 5.1: FL FR FC LFE BL BR
    8: ([1.0, 0.0, 0.7071, 0.0, 0.7071, 0.0, 0.7071, 0.0],  # 7.1: FL FR FC LFE BL BR SL SR
        [0.0, 1.0, 0.7071, 0.0, 0.0, 0.7071, 0.0, 0.7071]),
}


def downmix_stereo(samples: np.ndarray) -> np.ndarray:
    """``(channels, frames)`` -> at most 2 channels, for formats that hold no more (MP3).

    5.1 and 7.1 (FFmpeg's channel order) by the ITU-R BS.775 coefficients without the LFE, other
    counts by averaging the even channels to the left and the odd ones to the right; each side is
    scaled by the sum of its coefficients, so a full-scale signal in every channel stays full scale.
    """
    channels = samples.shape[0]
    if channels <= 2:
        return samples
    left, right = _DOWNMIX.get(channels, ([float(i % 2 == 0) for i in range(channels)],
                                          [float(i % 2 == 1) for i in range(channels)]))
    matrix = np.array([left, right], dtype=np.float32)
    matrix /= matrix.sum(axis=1, keepdims=True)
    return (matrix @ samples.astype(np.float32, copy=False)).astype(np.float32)
