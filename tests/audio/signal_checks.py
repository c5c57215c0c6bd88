"""Signal comparisons the audio tests share: time offset by cross-correlation, correlation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def xcorr_lag(reference: np.ndarray, estimate: np.ndarray, max_lag: int = 4410) -> int:
    """Samples by which ``estimate`` lags ``reference`` (positive = late), channel means compared."""
    a = np.atleast_2d(reference).mean(axis=0)
    b = np.atleast_2d(estimate).mean(axis=0)
    n = min(a.size, b.size)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(b[:n], size) * np.conj(np.fft.rfft(a[:n], size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    return int(lags[np.argmax(corr[lags])])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally shaped signals."""
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])
