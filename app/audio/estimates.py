"""Where the words of lyrics fall when nothing has timed them yet: each word placed on the sung
stretches between the anchors around it (:func:`estimate_times`). Seconds from the start of the audio."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.audio.vocals import REGION_GAP_S, VAD_FRAME_S, SpeechMap

SECONDS_PER_WEIGHT = 0.08
"""Sung time per unit of word weight (letters + 1) where nothing else bounds it."""
MAX_REGION_WORDS = 60
BREAK_COST = 10.0
"""Cost of a stanza (after a blank line in the lyrics) that starts with no pause before it: more
than any fit, so only where nothing else is possible."""
HELD_BREAK_S = 3.0
"""A line's first word that would follow the held end of the word before, where that voice is
followed by this long a pause (seconds: an instrumental break), may leave it to the held word
and start after the break (see :func:`_region_edges`)."""
FAINT_SHARE = 0.5
"""Words placed between two anchors whose sung time there is under this share of what they need
are placed on the faint voice activity as well."""


def word_weights(texts: Sequence[str]) -> list[int]:
    """Each word's weight, the unit of the sung time it needs (SECONDS_PER_WEIGHT each): its
    letters + 1, of the normalised text (:func:`app.audio.lyrics.normalize_word`)."""
    return [len(text) + 1 for text in texts]


def _spread(speech: SpeechMap, s0: float, s1: float, cum: np.ndarray, t0: float, t1: float) -> list[float]:
    """Edges for words with cumulative weights ``cum`` spread over speech time s0..s1
    (or over clock time t0..t1 when there is no speech in between)."""
    if s1 - s0 > 1e-3:
        # word starts go to the end of a pause (the next onset), the last word's end to its start
        edges = [speech.time_at_speech(s0 + (s1 - s0) * c / cum[-1], latest=True) for c in cum[:-1]]
        return [*edges, speech.time_at_speech(s1)]
    return [t0 + (t1 - t0) * c / cum[-1] for c in cum]


def _region_edges(
    speech: SpeechMap,
    cum: np.ndarray,
    kind: Sequence[int],
    t0: float,
    t1: float,
    spw: float,
    breaks: Sequence[bool] | None = None,
    after_word: bool = False,
) -> list[float] | None:
    """Edges for words with cumulative weights ``cum`` placed on the sung stretches in [t0, t1].

    Each stretch of voice activity (pauses under REGION_GAP_S merged) receives a run of
    consecutive words (possibly none), chosen by dynamic programming: a stretch whose length
    differs from what its words need (``spw`` seconds per weight) costs the log of the ratio
    (stretching is cheap, sung vowels last; squeezing is not), a stretch left without words costs
    more (singing that no word explains), and a stretch whose first word is inside a lyric line
    costs by the pause before it (``kind``: 0 a line's first word, free; 1 a repeated token such
    as "ooh ooh" or "da da", one per held note, a flat 0.5; 2 a word inside a phrase, 0.5 plus
    0.5 per second of pause). ``breaks`` marks the words that begin a stanza (a blank line in
    the lyrics): one sung with no pause before it costs BREAK_COST, and when ``after_word`` (t0 is
    the end of a sung word) a first stretch that carries on from t0 may stay empty for free (the
    word before is held there), before a stanza or before a line where an instrumental break
    (HELD_BREAK_S) follows that stretch: a line is not sung into the held note before the break
    (on-the-run with 1.3 or 3.7 s of silence before it: `Twentytwo, to see you soon` estimated
    into the 4 s `soon` held before a 12 s break, 15 s early, 0.363 s -> 0.097 s mean). Within a
    stretch the words share its speech time by weight. So a line of sustained vocalises lands one
    word per stretch, unanchored lines start where singing resumes, and a phrase is not torn
    across an instrumental break. None when there is no speech.
    """
    regions = [(max(a, t0), min(b, t1)) for a, b in speech.regions(REGION_GAP_S) if b > t0 and a < t1]
    regions = [(a, b) for a, b in regions if b - a >= VAD_FRAME_S]
    n, r_count = len(cum) - 1, len(regions)
    if not regions or n == 0:
        return None
    need = np.diff(cum) * spw
    dur = [speech.speech_time(b) - speech.speech_time(a) for a, b in regions]
    pause = [min(a - (regions[r - 1][1] if r else t0), 6.0) for r, (a, _) in enumerate(regions)]
    brk = list(breaks) if breaks is not None else [False] * n
    inner_breaks = np.concatenate([[0], np.cumsum(brk)])  # breaks among words 0..i-1
    continues = after_word and pause[0] <= VAD_FRAME_S  # region 0 carries on the word that ends at t0

    def fit(d: float, w: float) -> float:
        ratio = np.log((d + 0.3) / (w + 0.3))
        return float(abs(ratio) * (0.5 if ratio > 0 else 1.5))

    inf = float("inf")
    best = np.full((n + 1, r_count + 1), inf)
    back = np.zeros((n + 1, r_count + 1), dtype=int)
    best[0, 0] = 0.0
    held = continues and (brk[0] or (kind[0] == 0 and r_count > 1 and pause[1] >= HELD_BREAK_S))
    for r in range(1, r_count + 1):
        d = dur[r - 1]
        empty = 0.0 if r == 1 and held else 2.0 * fit(d, 0.0)
        for i in range(n + 1):
            best[i, r], back[i, r] = best[i, r - 1] + empty, i
            for j in range(max(0, i - MAX_REGION_WORDS), i):
                if best[j, r - 1] == inf:
                    continue
                split = 0.0 if kind[j] == 0 or pause[r - 1] <= VAD_FRAME_S else 0.5
                if kind[j] == 2:
                    split += 0.5 * pause[r - 1]
                unpaused = inner_breaks[i] - inner_breaks[j + 1] + (brk[j] and r == 1 and continues)
                split += BREAK_COST * unpaused
                cost = best[j, r - 1] + fit(d, float(need[j:i].sum())) + split
                if cost < best[i, r]:
                    best[i, r], back[i, r] = cost, j
    if best[n, r_count] == inf:
        return None
    starts: list[float] = [0.0] * n
    i, last_end = n, regions[-1][1]
    for r in range(r_count, 0, -1):
        j = back[i, r]
        if j < i:
            a, b = regions[r - 1]
            sub = cum[j : i + 1] - cum[j]
            edges = _spread(speech, speech.speech_time(a), speech.speech_time(b), sub, a, b)
            starts[j:i] = edges[:-1]
            if i == n:
                last_end = edges[-1]
        i = j
    return [*starts, last_end]


def _squeeze(speech: SpeechMap, edges: Sequence[float], cum: np.ndarray) -> float:
    """The largest ratio of the sung time a word needs (SECONDS_PER_WEIGHT per weight) to the
    speech time its ``edges`` give it."""
    got = np.diff([speech.speech_time(t) for t in edges])
    return float(np.max(np.diff(cum) * SECONDS_PER_WEIGHT / np.maximum(got, VAD_FRAME_S)))


def _gap_edges(
    speech: SpeechMap,
    cum: np.ndarray,
    head: int,
    tail: int,
    t0: float,
    t1: float,
    spw: float,
    kind: Sequence[int],
    breaks: Sequence[bool],
    after_word: bool,
) -> list[float]:
    """Word edges for an unanchored run between times t0 and t1: ``head`` words packed right
    after t0, ``tail`` words right before t1 (``spw`` seconds per weight: line-mates are sung
    back to back, whatever the voice detector says), the rest placed on the sung stretches
    between (see :func:`_region_edges`; ``after_word``: t0 ends a sung word)."""
    n = len(cum) - 1
    h_end = t0 + cum[head] * spw
    t_start = t1 - (cum[-1] - cum[n - tail]) * spw
    mid = cum[head : n - tail + 1] - cum[head]
    middle: list[float] = []
    if len(mid) > 1:
        # a stanza does not start on the held end of the word before: that singing is not its own
        free = speech.run_end(h_end) if after_word and breaks[head] else h_end
        if speech.speech_time(t_start) - speech.speech_time(free) < FAINT_SHARE * mid[-1] * SECONDS_PER_WEIGHT:
            speech = speech.with_faint()  # far too little singing for these words: quiet singing counts
        args = (mid, kind[head : n - tail], h_end, t_start, SECONDS_PER_WEIGHT, breaks[head : n - tail],
                after_word or head > 0)
        placed = _region_edges(speech, *args)
        if placed is not None and any(breaks[head : n - tail]) and speech.faint is not None:
            # stanzas kept apart may leave one far too little singing: then its quiet singing counts
            squeeze = _squeeze(speech, placed, mid)
            if squeeze * FAINT_SHARE > 1.0:
                quiet_map = speech.with_faint()
                quiet = _region_edges(quiet_map, *args)
                if quiet is not None and _squeeze(quiet_map, quiet, mid) < squeeze:
                    speech, placed = quiet_map, quiet
        if placed is None:
            placed = _spread(speech, speech.speech_time(h_end), speech.speech_time(t_start), mid, h_end, t_start)
        middle = placed[:-1]
    return (
        [t0 + c * spw for c in cum[:head]]
        + middle
        + [t_start + (c - cum[n - tail]) * spw for c in cum[n - tail :]]
    )


def estimate_times(
    weights: Sequence[float],
    line_of: Sequence[int],
    anchors: dict[int, tuple[float, float]],
    speech: SpeechMap,
    seconds_per_weight: float | None = None,
    texts: Sequence[str] | None = None,
    breaks: Sequence[bool] | None = None,
) -> list[tuple[float, float]]:
    """Rough (start, end) for every word: anchors as given, the rest placed in speech time.

    ``weights`` (one per word, e.g. letters + 1) decide how much speech time each word gets
    (``seconds_per_weight`` each where it is not bounded by anchors); ``line_of`` gives each word's
    line; ``texts`` (normalised words) tells repeated tokens apart and ``breaks`` marks the words
    that begin a stanza (see :func:`_region_edges`).
    Unanchored words that share a line with the anchor before (after) them are packed right
    after (before) it, so a line's first word is not pulled back across a pause; words of
    unanchored lines are spread over the speech between (before the first anchor: from the first
    speech on; after the last: up to the end of the last speech). Without anchors, words are
    spread over all detected speech.
    """
    seconds_per_weight = seconds_per_weight or SECONDS_PER_WEIGHT
    n = len(weights)
    w = np.asarray(weights, dtype=float)
    total = speech.speech_time(speech.duration)
    kind = [
        0 if i == 0 or line_of[i] != line_of[i - 1] else 1 if texts and texts[i] == texts[i - 1] else 2
        for i in range(n)
    ]
    brk = list(breaks) if breaks is not None else [False] * n
    if not anchors:
        cum = np.concatenate([[0.0], np.cumsum(w)])
        edges = _region_edges(speech, cum, kind, 0.0, speech.duration, seconds_per_weight, brk)
        if edges is None:
            edges = _spread(speech, 0.0, total, cum, 0.0, speech.duration)
        return [(edges[i], edges[i + 1]) for i in range(n)]
    result: list[tuple[float, float] | None] = [anchors.get(i) for i in range(n)]
    keys = sorted(anchors)
    for a, b in [(-1, keys[0]), *zip(keys, keys[1:], strict=False), (keys[-1], n)]:
        if b - a <= 1:
            continue
        idx = list(range(a + 1, b))
        cum = np.concatenate([[0.0], np.cumsum(w[idx])])
        need = cum[-1] * seconds_per_weight
        if a < 0:  # before the first anchor: its line-mates packed, earlier lines over the speech
            t1 = anchors[b][0]
            head, tail = 0, sum(1 for i in idx if line_of[i] == line_of[b])
            t0 = speech.time_at_speech(0.0, latest=True)
            if tail == len(idx) or t0 >= t1 - need:
                t0, tail = speech.time_at_speech(max(0.0, speech.speech_time(t1) - need)), len(idx)
        elif b >= n:  # after the last anchor: the same, mirrored
            t0 = anchors[a][1]
            head, tail = sum(1 for i in idx if line_of[i] == line_of[a]), 0
            t1 = speech.time_at_speech(total)
            if head == len(idx) or t1 <= t0 + need:
                t1 = max(t0, speech.time_at_speech(min(total, speech.speech_time(t0) + need), latest=True))
                head = len(idx)
        else:
            t0, t1 = anchors[a][1], anchors[b][0]
            head = sum(1 for i in idx if line_of[i] == line_of[a])
            tail = sum(1 for i in idx if line_of[i] == line_of[b])
            if line_of[a] == line_of[b]:
                head = tail = 0
        spw = min(seconds_per_weight, (t1 - t0) / cum[-1])
        edges = _gap_edges(speech, cum, head, tail, t0, t1, spw, [kind[i] for i in idx], [brk[i] for i in idx], a >= 0)
        for k, i in enumerate(idx):
            result[i] = (edges[k], max(edges[k], edges[k + 1]))
    return [r if r is not None else (0.0, 0.0) for r in result]
