"""Drift in a window alignment: the aligned words not to trust, and the runs of them aligned again
in windows of their own between the words kept."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from app.audio import alignment
from app.audio.estimates import SECONDS_PER_WEIGHT
from app.audio.forced import align_window, make_tokenizer
from app.audio.heard import in_lanes
from app.audio.types import ProgressCallback, no_progress
from app.audio.vocals import SpeechMap

DRIFT_S = 1.2
"""An aligned word further than this (seconds) from its anchor-based estimate is a drift suspect: aligned
again between the words kept, or placed from them (1.5 s before drifted runs were aligned again;
with that, 1.2 s was the best of 0.6-1.5 s on the 12 evaluation songs)."""
CONFIDENT_P = 0.9
"""An aligned word at this probability or more is not placed again for being far from its estimate
(measured on the 12 evaluation songs: of the 9 such words, placing them again moved 7 away from
the reference and none closer; an estimate far from any anchor is the weaker of the two)."""
PILED_S = 0.02
REALIGN_MIN_RUN = 2
"""Drift: a run of at least this many words between two kept words, holding a suspect, is aligned
again in a window of its own (see :func:`realign_runs`)."""
REALIGN_PAD_S = 0.2
"""Seconds of audio a re-alignment window takes beyond its bounding words' onsets."""
REALIGN_SLACK = 2.0
REALIGN_EXTRA_S = 2.0
"""A run is aligned again only where its stretch is at most REALIGN_SLACK times what its words need
plus REALIGN_EXTRA_S seconds: over a long instrumental or vocalise stretch the window smears them."""
MIN_REALIGNED_S = 0.05
"""A re-aligned word shorter than this (seconds) was skipped over by its window: it is placed instead."""


def drift_suspects(
    times: list[tuple[float, float]],
    source: list[str],
    estimates: list[tuple[float, float]],
    line_of: list[int],
    confident: Collection[int] = (),
) -> set[int]:
    """Aligned words not to trust: far (> DRIFT_S) from where the anchors and the voice activity
    put them (unless ``confident``: the window aligned them with probability CONFIDENT_P or more),
    piled onto the previous word's onset, given no time at all (the window skipped over them: of
    such words, 31% within 0.3 s of the reference against 86% of the others), or cut off from the
    rest of their line; every aligned word of a line where more than half the words are suspects."""
    out = {
        i
        for i, src in enumerate(source)
        if src == "aligned" and abs(times[i][0] - estimates[i][0]) > DRIFT_S and i not in confident
    }
    out |= {i for i in range(len(times)) if source[i] == "aligned" and alignment.is_piled(times, i, PILED_S)}
    out |= alignment.line_outliers({i: t[0] for i, t in enumerate(times)}, line_of)
    # a line mostly gone wrong is placed again whole: its remaining words would hold the rest back;
    # a line with as many good words as suspects keeps the good ones (on the 12 evaluation songs:
    # 8 more words within 0.3 s than when half a line took the rest with it, no song worse)
    size = np.bincount(line_of)
    bad = np.bincount([line_of[i] for i in out], minlength=len(size)) if out else np.zeros(len(size))
    out |= {i for i, k in enumerate(line_of) if 2 * bad[k] > size[k] > 1}
    return {i for i in out if source[i] != "heard"}


def realign_runs(
    model: Any,
    language: str,
    audio: np.ndarray,
    given: list[str],
    weights: list[float],
    kept: dict[int, tuple[float, float]],
    suspects: set[int],
    anchored: set[int],
    speech: SpeechMap,
    on_progress: ProgressCallback = no_progress,
) -> dict[int, tuple[float, float]]:
    """Each run of words between two kept words that holds a drift suspect, aligned again in a
    window of its own, from the kept word before it (aligned with the run, so a word the first
    window held over the run's singing gets its own end) to the kept word after it; a run before
    the first kept word or after the last one, from or to the end of the singing within reach.
    A run whose stretch is far longer than its words need (REALIGN_SLACK, REALIGN_EXTRA_S:
    instrumental or vocalise the window would smear them over) is left to the estimate, and so
    is a run longer than one window. The windows are spread over the model's replicas. Returns
    word index -> (start, end) for the words that came out in order between their neighbours and
    not piled, and for a word held over the run, its own end. Progress goes to
    ``on_progress(0.95..1.0, "aligning")`` before each window; a JobCanceled raised there stops."""
    if not kept:
        return {}
    order = sorted(kept)
    plans: list[tuple[int | None, int | None, float, float, float]] = []  # (a, b, t0, t1, first onset)
    for a, b in [(None, order[0]), *zip(order, order[1:], strict=False), (order[-1], None)]:
        lo, hi = 0 if a is None else a + 1, len(given) if b is None else b
        if hi - lo < REALIGN_MIN_RUN or not any(i in suspects for i in range(lo, hi)):
            continue
        need = float(np.sum(weights[lo if a is None else a : hi])) * SECONDS_PER_WEIGHT
        reach = min(29.0, REALIGN_SLACK * need + REALIGN_EXTRA_S)
        if a is None:  # the song's first words: from where the singing starts within reach
            t1 = kept[b][0] + REALIGN_PAD_S
            onset = speech.next_onset(max(0.0, t1 - reach), t1)
            if onset is None or (t1 > reach and speech.is_speech(t1 - reach)):  # not from inside a phrase
                continue
            t0 = max(0.0, onset - REALIGN_PAD_S)
        elif b is None:  # the song's last words: to where the singing ends within reach
            t0, onset = max(0.0, kept[a][0] - REALIGN_PAD_S), kept[a][0]
            offset = speech.last_offset(t0 + reach, t0)
            if offset is None or (t0 + reach < speech.duration and speech.is_speech(t0 + reach)):
                continue
            t1 = offset + REALIGN_PAD_S
        else:
            t0, t1, onset = max(0.0, kept[a][0] - REALIGN_PAD_S), kept[b][0] + REALIGN_PAD_S, kept[a][0]
        if 0.5 < t1 - t0 <= reach:
            plans.append((a, b, t0, t1, onset))
    tokenizer = make_tokenizer(model, language) if plans else None

    def work(plan: tuple[int | None, int | None, float, float, float], main: bool) -> list[tuple[float, float, float]]:
        a, b, t0, t1, _ = plan
        if main:
            on_progress(0.95 + 0.05 * plans.index(plan) / len(plans), "aligning")
        first, hi = 0 if a is None else a, len(given) if b is None else b
        return align_window(model, tokenizer, audio, t0, t1, given[first:hi])

    out: dict[int, tuple[float, float]] = {}
    for (a, b, t0, t1, onset), done in zip(plans, in_lanes(model, plans, work), strict=True):
        first, lo, hi = 0 if a is None else a, 0 if a is None else a + 1, len(given) if b is None else b
        bound_hi = t1 if b is None else kept[b][0]
        # the song's first word may sit at the window's start: it starts where the singing does
        starts = [t0 - PILED_S if a is None else onset] + [done[i - first][0] for i in range(lo, hi)]
        starts.append(bound_hi)
        for k, i in enumerate(range(lo, hi), start=1):
            start, end, _ = done[i - first]
            if starts[k - 1] + PILED_S <= start <= starts[k + 1] - PILED_S and end - start >= MIN_REALIGNED_S:
                start = max(start, onset) if a is None and k == 1 else start
                out[i] = (start, max(start, min(end, bound_hi)))
        if a is not None and a not in anchored and a + 1 in out:  # the word before ends where the run starts
            out[a] = (kept[a][0], max(kept[a][0], min(kept[a][1], out[a + 1][0])))
    return out
