"""Lyrics-timing metrics (JamendoLyrics style): pair predicted and reference words, measure onsets.

Pairing uses an edit-distance alignment of normalised word sequences, not difflib, because
difflib happily pairs a repeated chorus with the wrong repetition.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def normalize(word: str) -> str:
    """Lower-case letters and digits only (accents kept), for comparing words."""
    text = unicodedata.normalize("NFC", word).lower()
    return re.sub(r"[^\w]|_", "", text)


def align_sequences(predicted: list[str], reference: list[str]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` of matching words on a minimum edit-distance path (substitutions kept)."""
    a = [normalize(w) for w in predicted]
    b = [normalize(w) for w in reference]
    n, m = len(a), len(b)
    cost = np.zeros((n + 1, m + 1), dtype=np.int32)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = cost[i - 1, j - 1] + (0 if a[i - 1] == b[j - 1] else 1)
            cost[i, j] = min(sub, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + (0 if a[i - 1] == b[j - 1] else 1):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


@dataclass
class OnsetReport:
    """Word-onset errors in seconds over the paired words."""

    words: int
    paired: int
    mean_abs: float
    median_abs: float
    within_0_3: float
    within_1_0: float

    def line(self) -> str:
        return (f"words={self.words} paired={self.paired} mean={self.mean_abs:.3f}s median={self.median_abs:.3f}s "
                f"<=0.3s={self.within_0_3:.1%} <=1.0s={self.within_1_0:.1%}")


def onset_report(predicted: list[tuple[str, float]], reference: list[tuple[str, float]]) -> OnsetReport:
    """Compare ``(word, onset seconds)`` lists. Shares are over all reference words (unpaired count as misses)."""
    pairs = align_sequences([w for w, _ in predicted], [w for w, _ in reference])
    return errors_report([abs(predicted[i][1] - reference[j][1]) for i, j in pairs], len(reference))


def errors_report(errors: Sequence[float], words: int) -> OnsetReport:
    """The report for the absolute onset errors of the paired words, out of ``words`` reference
    words (unpaired ones count as misses)."""
    e = np.asarray(errors, dtype=float)
    total = max(words, 1)
    if e.size == 0:
        return OnsetReport(words, 0, float("inf"), float("inf"), 0.0, 0.0)
    return OnsetReport(
        words=words,
        paired=int(e.size),
        mean_abs=float(e.mean()),
        median_abs=float(np.median(e)),
        within_0_3=float((e <= 0.3).sum() / total),
        within_1_0=float((e <= 1.0).sum() / total),
    )


def word_error_rate(predicted: list[str], reference: list[str]) -> float:
    """WER = (substitutions + deletions + insertions) / reference words, on normalised words."""
    a = [normalize(w) for w in predicted if normalize(w)]
    b = [normalize(w) for w in reference if normalize(w)]
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j - 1] + (a[i - 1] != b[j - 1]), prev[j] + 1, cur[j - 1] + 1)
        prev = cur
    return prev[-1] / max(len(b), 1)
