"""What an alignment keeps from an earlier timing of the same lyrics (a lyrics edit): the unchanged
lines' words, held in place while the others are aligned between them."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.audio.heard import drop_squeezed, transcribe_clips
from app.audio.types import LyricsTiming
from app.audio.vocals import SAMPLE_RATE


def previous_words(
    previous: LyricsTiming, lines: list[list[str]]
) -> tuple[dict[int, tuple[float, float, float]], dict[int, bool]]:
    """(word index in ``lines`` -> (start, end, confidence), line index -> needs_review) from
    ``previous``, for the lines whose text is unchanged (paired in order, as an edit leaves the
    lines around it in place)."""
    from difflib import SequenceMatcher

    old = [[w.text for w in line.words] for line in previous.lines]
    first = np.cumsum([0] + [len(line) for line in lines])
    out: dict[int, tuple[float, float, float]] = {}
    flags: dict[int, bool] = {}
    matcher = SequenceMatcher(a=[" ".join(x) for x in old], b=[" ".join(x) for x in lines], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            flags[block.b + k] = previous.lines[block.a + k].needs_review
            for j, w in enumerate(previous.lines[block.a + k].words):
                out[int(first[block.b + k]) + j] = (w.start, w.end, w.confidence)
    return out, flags


def between_kept(
    times: list[tuple[float, float]], fixed: dict[int, tuple[float, float, float]]
) -> list[tuple[float, float]]:
    """Kept words at their previous times exactly; every other word held between the kept word
    before it (from its end) and the kept word after it (up to its start), so that making the
    times playable in order never moves a kept word."""
    out = [fixed[i][:2] if i in fixed else t for i, t in enumerate(times)]
    low, high = 0.0, [float("inf")] * (len(out) + 1)
    for i in range(len(out) - 1, -1, -1):
        high[i] = out[i][0] if i in fixed else high[i + 1]
    for i, (start, end) in enumerate(out):
        if i in fixed:
            low = end
            continue
        start = min(max(start, low), high[i + 1])
        out[i] = (start, min(max(end, start), high[i + 1]))
    return out


def heard_between(
    model: Any, audio: np.ndarray, language: str, kept: dict[int, tuple[float, float]], n: int
) -> list[dict[str, Any]]:
    """Words heard in the stretches between kept words where the words in between are not kept
    (the changed lines of an edit), each stretch transcribed on its own."""
    duration = len(audio) / SAMPLE_RATE
    stretches, i = [], 0
    while i < n:
        if i in kept:
            i += 1
            continue
        j = i
        while j < n and j not in kept:
            j += 1
        a = kept[i - 1][1] if i - 1 in kept else 0.0
        b = kept[j][0] if j in kept else duration
        if b - a > 0.3:
            stretches.append((a, b))
        i = j
    return drop_squeezed(transcribe_clips(model, audio, language, stretches), duration) if stretches else []
