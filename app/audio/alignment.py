"""Model-free pieces of lyrics alignment: voice activity, time estimates, windows, clean-up.

All times are seconds from the start of the audio. Used by :mod:`app.audio.known_lyrics`; the
pairing of given and heard words lives in :mod:`app.audio.word_matching`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

VAD_FRAME_S = 512 / 16000
"""Silero VAD resolution: one speech probability per 512 samples at 16 kHz (seconds)."""
SECONDS_PER_WEIGHT = 0.08
"""Sung time per unit of word weight (letters + 1) where nothing else bounds it."""
REGION_GAP_S = 0.3
"""Pauses shorter than this do not split a sung stretch (estimate placement)."""
MAX_REGION_WORDS = 60
LONG_REACH = 0.6
"""How far (seconds) after a word's onset a pause may begin and still be skipped (see
:func:`skip_leading_pauses`) when the voice before it lasts longer than the word itself needs."""
SUNG_BEFORE_PAUSE_S = 0.3
"""A word voiced this long (seconds) from its onset up to a pause was sung before the pause, when
moving it past the pause would leave it less than half the time it needs (see
:func:`skip_leading_pauses`)."""
MIN_ALIGNED_WORD_S = 0.1
"""An aligned word shorter than this (seconds) is squeezed: a window that lost its place there."""
BREAK_COST = 10.0
"""Cost of a stanza (after a blank line in the lyrics) that starts with no pause before it: more
than any fit, so only where nothing else is possible."""
FAINT_SHARE = 0.5
"""Words placed between two anchors whose sung time there is under this share of what they need
are placed on the faint voice activity as well."""


@dataclass
class SpeechMap:
    """Where the voice is active: one boolean per frame of VAD_FRAME_S seconds."""

    speech: np.ndarray
    loud: np.ndarray | None = None
    """Frames loud enough to be singing by level alone (no voice-detector smoothing), if known."""
    faint: np.ndarray | None = None
    """Frames too quiet to count as singing but clearly above the stem's silence, if known:
    where the words of a passage find far too little singing, they look for it there."""

    def __post_init__(self) -> None:
        self.speech = np.asarray(self.speech, dtype=bool)
        self.loud = self.speech if self.loud is None else np.asarray(self.loud, dtype=bool)
        self.probs = self.speech  # frame count via len()
        self.cumulative = np.concatenate([[0.0], np.cumsum(self.speech) * VAD_FRAME_S])

    def with_faint(self) -> SpeechMap:
        """This map with the faint frames counted as singing too."""
        return self if self.faint is None else SpeechMap(self.speech | self.faint, self.loud)

    @property
    def duration(self) -> float:
        return len(self.speech) * VAD_FRAME_S

    def _frame(self, t: float) -> int:
        return int(np.clip(t / VAD_FRAME_S, 0, len(self.probs) - 1)) if len(self.probs) else 0

    def is_speech(self, t: float) -> bool:
        return bool(len(self.probs)) and bool(self.speech[self._frame(t)])

    def speech_time(self, t: float) -> float:
        """Seconds of speech between 0 and ``t``."""
        x = np.clip(t / VAD_FRAME_S, 0, len(self.probs))
        return float(np.interp(x, np.arange(len(self.cumulative)), self.cumulative))

    def time_at_speech(self, s: float, latest: bool = False) -> float:
        """Inverse of :meth:`speech_time`: the earliest (or latest) time with ``s`` seconds of
        speech before it. Within a pause the earliest is the pause start, the latest its end."""
        if latest:
            idx = int(np.searchsorted(self.cumulative, s + 1e-9, side="right")) - 1
        else:
            idx = int(np.searchsorted(self.cumulative, s - 1e-9, side="left"))
        return float(np.clip(idx * VAD_FRAME_S, 0.0, self.duration))

    def regions(self, merge_gap: float = 1.0) -> list[tuple[float, float]]:
        """(start, end) of the active stretches, those less than ``merge_gap`` seconds apart merged."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], self.speech.astype(np.int8), [0]])))
        out: list[tuple[float, float]] = []
        for a, b in zip(edges[::2] * VAD_FRAME_S, edges[1::2] * VAD_FRAME_S, strict=True):
            if out and a - out[-1][1] < merge_gap:
                out[-1] = (out[-1][0], float(b))
            else:
                out.append((float(a), float(b)))
        return out

    def run_end(self, t: float) -> float:
        """The end of the sung stretch (pauses under REGION_GAP_S bridged) that ``t`` is in, or
        ``t`` itself when the voice is silent there."""
        if not self.is_speech(t):
            return t
        return next((b for a, b in self.regions(REGION_GAP_S) if a <= t <= b), t)

    def next_onset(self, t: float, limit: float) -> float | None:
        """The first speech frame start in [t, limit), or None."""
        lo, hi = self._frame(t), int(min(limit / VAD_FRAME_S, len(self.probs)))
        hits = np.flatnonzero(self.speech[lo:hi])
        return None if len(hits) == 0 else (lo + int(hits[0])) * VAD_FRAME_S

    def last_offset(self, t: float, limit: float) -> float | None:
        """The end of the last speech frame in (limit, t], or None."""
        lo, hi = int(max(limit / VAD_FRAME_S, 0)), self._frame(t) + 1
        hits = np.flatnonzero(self.speech[lo:hi])
        return None if len(hits) == 0 else (lo + int(hits[-1]) + 1) * VAD_FRAME_S


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
    word before is held there). Within a stretch the words share its speech time by weight. So a
    line of sustained vocalises lands one word per stretch, unanchored lines start where singing
    resumes, and a phrase is not torn across an instrumental break. None when there is no speech.
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
    for r in range(1, r_count + 1):
        d = dur[r - 1]
        empty = 0.0 if r == 1 and continues and brk[0] else 2.0 * fit(d, 0.0)
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


def plan_windows(
    line_spans: Sequence[tuple[float, float]],
    duration: float,
    max_len: float = 29.0,
    pad: float = 1.0,
    max_gap: float = 2.5,
    line_words: Sequence[int] | None = None,
    max_words: int = 120,
) -> list[tuple[float, float, int, int]]:
    """Group consecutive lines into windows of at most ``max_len`` seconds.

    Returns ``(t0, t1, first_line, end_line)`` (end exclusive); each window spans its lines'
    estimated times plus ``pad`` on both sides, clipped to the audio. A pause longer than
    ``max_gap`` between two lines starts a new window: the attention alignment tends to smear
    words into long pauses. With ``line_words`` (words per line) a window also holds at most
    ``max_words`` words (the decoder takes 448 tokens at most).
    """
    windows = []
    i, n = 0, len(line_spans)
    while i < n:
        t0 = max(0.0, line_spans[i][0] - pad)
        j, words = i + 1, line_words[i] if line_words else 0
        while (
            j < n
            and line_spans[j][1] + pad - t0 <= max_len
            and line_spans[j][0] - line_spans[j - 1][1] <= max_gap
            and (not line_words or words + line_words[j] <= max_words)
        ):
            words += line_words[j] if line_words else 0
            j += 1
        t1 = min(duration, max(line_spans[k][1] for k in range(i, j)) + pad, t0 + max_len)
        windows.append((t0, max(t1, min(duration, t0 + 1.0)), i, j))
        i = j
    return windows


def reconcile(
    aligned: Sequence[tuple[float, float]],
    anchors: dict[int, tuple[float, float]],
    weights: Sequence[float],
    line_of: Sequence[int],
    speech: SpeechMap,
    tolerance: float = 0.5,
    breaks: Sequence[bool] | None = None,
) -> tuple[list[tuple[float, float]], list[str]]:
    """Merge window alignment with transcription anchors; return (times, source per word).

    Anchored words take the mean of the aligned and the heard time (two estimates from different
    contexts: measured better than either alone on every evaluation song) unless they are more
    than ``tolerance`` seconds apart. Then the anchor wins (source "heard"), except where the
    aligned onset is the later one, the heard word the longer one and the aligned word at least
    MIN_ALIGNED_WORD_S long: a word stretched back over the pause before it has its onset in that
    pause (measured on the evaluation songs: in such disagreements the aligned onset was the
    closer one 23 times in 28; in the others the heard one, 120 times in 143). Unanchored words
    keep the aligned time ("aligned") when it lies between the neighbouring anchored words; the
    others are re-estimated from all kept times ("estimated"). An aligned word held over the time
    those need before the next kept word (the window lost them and stretched the word before)
    keeps only its own share (SECONDS_PER_WEIGHT per weight) of that time.
    """
    fixed, source = {}, ["estimated"] * len(aligned)
    for i, anchor in anchors.items():
        (a0, a1), (h0, h1) = aligned[i], anchor
        if abs(a0 - h0) <= tolerance:
            fixed[i], source[i] = ((a0 + h0) / 2, (a1 + h1) / 2), "aligned"
        elif a0 > h0 and h1 - h0 > a1 - a0 >= MIN_ALIGNED_WORD_S:
            fixed[i], source[i] = aligned[i], "aligned"
        else:
            fixed[i], source[i] = anchor, "heard"
    keys = sorted(fixed)
    kept = dict(fixed)
    prev_start, k = -1.0, 0
    for i, (start, end) in enumerate(aligned):
        while k < len(keys) and keys[k] <= i:
            prev_start = fixed[keys[k]][0]
            k += 1
        if i in fixed:
            continue
        next_start = fixed[keys[k]][0] if k < len(keys) else float("inf")
        if prev_start <= start <= next_start:  # it ends by the next anchored onset at the latest
            kept[i], source[i] = (start, min(end, next_start)), "aligned"
    if len(kept) == len(aligned):
        return [kept[i] for i in range(len(aligned))], source
    order = sorted(kept)
    for a, b in zip(order, order[1:], strict=False):
        if b - a > 1 and a not in fixed:  # a word the window held over the time the words it lost need
            start, end = kept[a]
            need = float(np.sum(weights[a + 1 : b])) * SECONDS_PER_WEIGHT
            if kept[b][0] - end < need:
                kept[a] = (start, min(end, max(start + weights[a] * SECONDS_PER_WEIGHT, kept[b][0] - need)))
    return estimate_times(weights, line_of, kept, speech, breaks=breaks), source


def wrong_repeats(
    aligned: Sequence[tuple[float, float]],
    anchors: dict[int, tuple[float, float]],
    texts: Sequence[str],
    tolerance: float = 0.5,
    same: float = 0.3,
) -> set[int]:
    """Anchored words paired with another repetition of their word: the window alignment puts the
    word more than ``tolerance`` seconds from its heard time and another occurrence of the same
    text within ``same`` seconds of that heard time (a chorus of "right now, right now" whose
    heard words paired one repetition off)."""
    where: dict[str, list[int]] = {}
    for k, text in enumerate(texts):
        where.setdefault(text, []).append(k)
    return {
        i
        for i, (heard, _) in anchors.items()
        if abs(aligned[i][0] - heard) > tolerance
        and any(k != i and abs(aligned[k][0] - heard) <= same for k in where.get(texts[i], ()))
    }


def line_outliers(
    starts: dict[int, float], line_of: Sequence[int], max_step: float = 3.0, per_word: float = 0.8
) -> set[int]:
    """Words cut off from the rest of their line by an implausible pause.

    ``starts`` maps word index -> onset (seconds) for the words to check. Within a line, a step
    between consecutive checked words longer than ``max_step`` plus ``per_word`` per word in
    between splits the line into groups (sung lines have no such pauses: at most 1.7 s between
    word onsets in the reference songs); every group but the largest is returned. These are
    typically a short word paired with the wrong occurrence, or pushed into a pause by the
    window alignment.
    """
    by_line: dict[int, list[int]] = {}
    for i in sorted(starts):
        by_line.setdefault(line_of[i], []).append(i)
    out: set[int] = set()
    for idx in by_line.values():
        groups = [[idx[0]]]
        for a, b in zip(idx, idx[1:], strict=False):
            if starts[b] - starts[a] > max_step + per_word * (b - a - 1):
                groups.append([b])
            else:
                groups[-1].append(b)
        if len(groups) > 1:
            keep = max(groups, key=len)
            out.update(i for group in groups if group is not keep for i in group)
    return out


def snap_to_speech(
    times: list[tuple[float, float]], speech: SpeechMap, max_shift: float = 3.0
) -> list[tuple[float, float]]:
    """Move word onsets that fall in silence to the next speech onset (before the word's end),
    and cut word ends that run into silence back to the last speech frame. Onsets come out
    non-decreasing and every end is at or after its onset.
    """
    out: list[tuple[float, float]] = []
    for start, end in times:
        if out and start < out[-1][0]:
            start = out[-1][0]
        if not speech.is_speech(start):
            onset = speech.next_onset(start, min(end, start + max_shift))
            if onset is not None:
                start = onset
        if end > start and not speech.is_speech(end):
            offset = speech.last_offset(end, start)
            if offset is not None and offset > start:
                end = offset
        out.append((start, max(end, start)))
    return out


def skip_leading_pauses(
    times: list[tuple[float, float]],
    speech: SpeechMap,
    min_pause: float = 0.08,
    reach: float = 0.4,
    max_shift: float = 3.0,
    weights: Sequence[float] | None = None,
    line_of: Sequence[int] | None = None,
) -> list[tuple[float, float]]:
    """Move a word's onset past a pause it would otherwise begin with: when the voice stops (at
    least ``min_pause`` seconds of frames neither loud nor voiced by the voice detector) within
    ``reach`` seconds after the onset and the word goes on after it, the onset was put on the
    fading end of the previous word (a short word after a held note is often pulled back so), and
    the word starts where the voice comes back. Quiet but voiced frames (a backing voice, a soft
    syllable) are not a pause (measured on the 12 evaluation songs: 6 more words within 0.3 s
    than with the level alone). With ``weights`` (letters + 1 per word) and ``line_of``, a pause
    that begins up to LONG_REACH seconds after the onset counts too when the voice before it
    lasts longer than the word needs (SECONDS_PER_WEIGHT per weight) and the word is not the
    last of its line (where the pause is the line's end, after a held word): the short words of
    a Spanish ballad ("te", "y", "que") sung after a held note were put 0.6-1.2 s early on its
    end (te-amo 0.126 -> 0.099 s mean), while long words keep the stop consonants inside them
    ("protectors"). A word voiced SUNG_BEFORE_PAUSE_S or more from its onset to the pause is not
    moved when that would leave it less than half what it needs before the next word's onset: it
    was sung before the pause ("best", "know", "you" 0.4-0.8 s late when squeezed in after the
    breath; measured on the 12 evaluation songs: 11 more words within 0.3 s, no more over 1 s
    off). An onset moves by at most ``max_shift`` seconds, as in
    :func:`snap_to_speech`: a word placed after the last singing would otherwise jump to any
    noise at the end of the song (13 and 17 s late on two evaluation songs)."""
    out: list[tuple[float, float]] = []
    quiet = ~speech.speech
    for k, (start, end) in enumerate(times):
        next_onset = times[k + 1][0] if k + 1 < len(times) else float("inf")
        limit = min(end, next_onset) - 0.05
        lo = int(start / VAD_FRAME_S)
        # the voice before a pause that outlasts the word itself is the note before it
        sung = weights[k] * SECONDS_PER_WEIGHT if weights is not None else float("inf")
        inner = line_of is not None and k + 1 < len(times) and line_of[k + 1] == line_of[k]
        far = LONG_REACH if inner and sung < LONG_REACH else reach
        hi = min(int((start + max(reach, far)) / VAD_FRAME_S) + 1, len(quiet))
        run_start = next((f for f in range(lo, hi) if quiet[f]), None)
        if run_start is not None:
            run_end = run_start
            while run_end < len(quiet) and quiet[run_end]:
                run_end += 1
            resume = run_end * VAD_FRAME_S
            offset = run_start * VAD_FRAME_S - start
            skipped = offset <= reach or (inner and offset > sung)
            long_enough = (run_end - run_start) * VAD_FRAME_S >= min_pause
            # voiced for a while from its onset and no room after the pause: sung before it
            squeezed = (weights is not None and offset >= SUNG_BEFORE_PAUSE_S
                        and next_onset - resume < 0.5 * sung)
            if skipped and long_enough and not squeezed and resume < min(limit, start + max_shift):
                start = resume
        out.append((start, max(end, start)))
    return out


def monotonic(times: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Make word times playable in order: onsets never go back, no word ends before it starts or
    after the next word starts (karaoke players and SYLT readers expect non-decreasing times)."""
    out: list[tuple[float, float]] = []
    for start, end in times:
        if out:
            start = max(start, out[-1][0])
            prev_start, prev_end = out[-1]
            out[-1] = (prev_start, min(prev_end, start))
        out.append((start, max(end, start)))
    return out
