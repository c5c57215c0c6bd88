"""Model-free pieces of lyrics alignment: window plans, reconciling two timings, clean-up.

All times are seconds from the start of the audio. Used by :mod:`app.audio.known_lyrics`; the
voice-activity map lives in :mod:`app.audio.vocals`, the time estimates in
:mod:`app.audio.estimates`, the pairing of given and heard words in :mod:`app.audio.word_matching`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Sequence

import numpy as np

from app.audio.estimates import SECONDS_PER_WEIGHT, estimate_times
from app.audio.vocals import REGION_GAP_S, VAD_FRAME_S, SpeechMap

PAUSE_MIN_S = 0.08
"""The shortest run of quiet frames (seconds) that :func:`skip_leading_pauses` takes for a pause."""
PAUSE_REACH_S = 0.4
"""How far (seconds) after a word's onset a pause may begin and still be skipped (see
:func:`skip_leading_pauses`); LONG_REACH after a note held longer than the word needs."""
LONG_REACH = 1.0
"""How far (seconds) after a word's onset a pause may begin and still be skipped (see
:func:`skip_leading_pauses`) when the voice before it lasts longer than the word itself needs.
Measured on the 12 evaluation songs at 0, 3.7 and 8.9 s of silence before them (Zen 4 host): 0.6 s
left te-amo's chorus `que` (held `palabras` to 0.7 s after the onset the window gave it) and its
last `te` 0.9-1.2 s early; 1.0 s: 8861 against 8853 words within 0.3 s, 76 against 78 more than
1 s off, and no other song better or worse than by one word; 0.8 s caught fewer of them."""
SUNG_BEFORE_PAUSE_S = 0.3
"""A word voiced this long (seconds) from its onset up to a pause was sung before the pause, when
moving it past the pause would leave it less than half the time it needs (see
:func:`skip_leading_pauses`)."""
MIN_ALIGNED_WORD_S = 0.1
"""An aligned word shorter than this (seconds) is squeezed: a window that lost its place there."""
BREAK_S = 1.0
"""A pause of this much (seconds) after the singing a word starts in ends the word (see
:func:`voiced_ends`)."""
CROWDED_SHARE = 0.35
"""Words left less than this share of the time they need between two kept words were crowded out
by a wrong one of those two (see :func:`crowded`)."""


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
    kept = release_held(kept, weights, keep=fixed)
    return estimate_times(weights, line_of, kept, speech, breaks=breaks), source


def release_held(
    kept: dict[int, tuple[float, float]], weights: Sequence[float], keep: Collection[int] = ()
) -> dict[int, tuple[float, float]]:
    """Kept words (index -> (start, end)) with the time they were held over given back: a word
    (not in ``keep``) that ends later than the words after it need before the next kept onset
    (SECONDS_PER_WEIGHT per weight) keeps only its own share of that time, no less than it needs
    itself. The window that lost those words stretched the word before them; placed after its
    end, they would pile up, or come after the next kept word. Applied again to the words kept
    after the drift re-alignment (a word held by the first window over a run now timed again):
    with 8.9 s of silence before it, mes-larmes's `les` held over 3 s put the five re-aligned words
    after it 2 s late (0.155 -> 0.108 s); on the 12 evaluation songs 0.1015 -> 0.0996 s, 2938 ->
    2949 words within 0.3 s at shift 0, and better at 1.3-8.9 s."""
    out = dict(kept)
    order = sorted(out)
    for a, b in zip(order, order[1:], strict=False):
        if b - a > 1 and a not in keep:
            start, end = out[a]
            need = float(np.sum(weights[a + 1 : b])) * SECONDS_PER_WEIGHT
            if out[b][0] - end < need:
                out[a] = (start, min(end, max(start + weights[a] * SECONDS_PER_WEIGHT, out[b][0] - need)))
    return out


def crowded(
    kept: dict[int, tuple[float, float]], weights: Sequence[float], share: float = CROWDED_SHARE
) -> set[int]:
    """Kept words (index -> (start, end)) on either side of a run of other words that has less than
    ``share`` of the time it needs (SECONDS_PER_WEIGHT per weight) between their onsets, after half
    of what the first of the two needs itself. Sung words take time, so one of the two is wrong (a
    chorus line paired with the wrong repetition); which one, the timings do not tell, so both
    are returned, and the words between them are placed from the others. Measured on the 12
    evaluation songs: 55 -> 36 words shorter than 50 ms, mes-larmes 0.139 -> 0.123 s mean, no
    song worse; with 8.9 s of silence before every song, words more than 1 s off 48 -> 43."""
    order = sorted(kept)
    out: set[int] = set()
    for a, b in zip(order, order[1:], strict=False):
        if b - a > 1 and _squeezed_between(a, kept[a][0], b, kept[b][0], weights, share):
            out |= {a, b}
    return out


def _squeezed_between(
    a: int, start_a: float, b: int, start_b: float, weights: Sequence[float], share: float
) -> bool:
    """Whether words ``a`` < ``b``, starting at ``start_a`` and ``start_b``, leave the words between
    them less than ``share`` of the time they need (SECONDS_PER_WEIGHT per weight), after half of
    what ``a`` needs itself."""
    need = float(np.sum(weights[a + 1 : b])) * SECONDS_PER_WEIGHT
    return start_b - start_a - 0.5 * weights[a] * SECONDS_PER_WEIGHT < share * need


def is_piled(times: Sequence[tuple[float, float]], i: int, min_s: float) -> bool:
    """Whether word ``i`` of ``times`` ((start, end) per word) got no time of its own: it lasts
    less than ``min_s`` seconds or starts less than that after the word before it (an alignment
    window that skipped over it piled it onto its neighbour)."""
    return times[i][1] - times[i][0] < min_s or (i > 0 and times[i][0] - times[i - 1][0] < min_s)


def wrong_repeats(
    aligned: Sequence[tuple[float, float]],
    anchors: dict[int, tuple[float, float]],
    texts: Sequence[str],
    tolerance: float = 0.5,
    same: float = 0.3,
    weights: Sequence[float] | None = None,
    share: float = CROWDED_SHARE,
    piled: float = 0.0,
) -> set[int]:
    """Anchored words paired with another repetition of their word: the window alignment puts the
    word more than ``tolerance`` seconds from its heard time and another occurrence of the same
    text within ``same`` seconds of that heard time (a chorus of "right now, right now" whose
    heard words paired one repetition off). With ``weights`` (letters + 1 per word), only where the
    window leaves the words between the two occurrences at least ``share`` of the time they need,
    as :func:`crowded` counts it: a window that put the other occurrence on the heard time and
    piled the words after it slipped onto a later repetition itself, and the heard word stays (a
    French chorus whose window slipped by two lines at p 0.99: with 8.9 s of silence before it,
    mes-larmes 0.178 -> 0.155 s, and 0.122 -> 0.116 s at 1.3-5.3 s; no other song changed). With
    ``piled`` (seconds), an occurrence the window gave less time than that, or started less than
    that after the word before it, counts for nothing: the window skipped over it (mes-larmes's
    second `les` of a chorus line heard 0.24 s after the window piled the first one and five words
    onto one instant: the heard word was dropped and the line placed 1-2 s late)."""
    where: dict[str, list[int]] = {}
    for k, text in enumerate(texts):
        where.setdefault(text, []).append(k)

    def window_fits(i: int, k: int) -> bool:  # the window leaves the words between i and k their time
        a, b = min(i, k), max(i, k)
        return weights is None or not _squeezed_between(a, aligned[a][0], b, aligned[b][0], weights, share)

    return {
        i
        for i, (heard, _) in anchors.items()
        if abs(aligned[i][0] - heard) > tolerance
        and any(
            k != i and abs(aligned[k][0] - heard) <= same and not is_piled(aligned, k, piled) and window_fits(i, k)
            for k in where.get(texts[i], ())
        )
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
    """Move word onsets that fall in silence to the next speech onset (before the word's end, or
    before the next word's onset when the word lies wholly in silence: it then moves onto the
    voice with its length), and cut word ends that run into silence back to the last speech
    frame. Onsets move by at most ``max_shift`` seconds, come out non-decreasing, and every end
    is at or after its onset.
    Measured on the 12 evaluation songs at 0, 3.7 and 8.9 s of silence before them (Zen 4 host):
    a word wholly in silence moved up to the next word's onset changes one word, northern-star's
    line-initial `I`, placed in the pause 1.6 s before its line and now 0.04 s off.
    """
    out: list[tuple[float, float]] = []
    for k, (start, end) in enumerate(times):
        if out and start < out[-1][0]:
            start = out[-1][0]
        if not speech.is_speech(start):
            following = times[k + 1][0] if k + 1 < len(times) else end
            onset = speech.next_onset(start, min(max(end, following), start + max_shift))
            if onset is not None:
                end = end if onset < end else onset + (end - start)
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
    min_pause: float = PAUSE_MIN_S,
    reach: float = PAUSE_REACH_S,
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
    noise at the end of the song (13 and 17 s late on two evaluation songs). The pause is the first
    run of quiet frames at least ``min_pause`` long: a shorter dip before it is passed over, not
    taken as the only candidate (measured on the 12 evaluation songs at 0, 3.7 and 8.9 s of
    silence before them: 2963 / 2963 / 2959 words within 0.3 s against 2956 / 2956 / 2950, 31
    words closer to the reference and 6 further off; te-amo's `lo` and `que`, veranderung's `und`
    and `für`, fantasma's `se`: 0.5-0.9 s early on the end of the note before a one-frame dip)."""
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
        pause = _first_pause(quiet, lo, hi, min_pause)
        if pause is not None:
            run_start, run_end = pause
            resume = run_end * VAD_FRAME_S
            offset = run_start * VAD_FRAME_S - start
            skipped = offset <= reach or (inner and offset > sung)
            # voiced for a while from its onset and no room after the pause: sung before it
            squeezed = (weights is not None and offset >= SUNG_BEFORE_PAUSE_S
                        and next_onset - resume < 0.5 * sung)
            if skipped and not squeezed and resume < min(limit, start + max_shift):
                start = resume
        out.append((start, max(end, start)))
    return out


def _first_pause(quiet: np.ndarray, lo: int, hi: int, min_pause: float) -> tuple[int, int] | None:
    """(first, end) frames of the first run of ``quiet`` frames at least ``min_pause`` seconds long
    that starts in frames [lo, hi), or None. A shorter run is a dip in the voice, not a pause."""
    f = lo
    while f < hi:
        if not quiet[f]:
            f += 1
            continue
        end = f
        while end < len(quiet) and quiet[end]:
            end += 1
        if (end - f) * VAD_FRAME_S >= min_pause:
            return f, end
        f = end
    return None


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


def voiced_ends(
    times: Sequence[tuple[float, float]], speech: SpeechMap, keep: Collection[int] = (), min_pause: float = BREAK_S
) -> list[tuple[float, float]]:
    """Word ends fitted to the voice (onsets unchanged; ``times`` in order, as :func:`monotonic`
    leaves them; the words in ``keep`` untouched). A word whose end lies in a sung stretch (pauses
    under REGION_GAP_S bridged) that stops before the next word starts holds to the end of that
    stretch: the held note of a line's last word, which the window alignment ends early. A word
    that runs on over a pause of ``min_pause`` seconds or more after the stretch its onset is in
    ends with that stretch: an instrumental break is not part of it. No end passes the next
    onset. Measured on the 12 evaluation songs: mean absolute word-end error 0.181 s -> 0.163 s,
    ends more than 1 s off 66 -> 44.
    """
    regions = speech.regions(REGION_GAP_S)
    region_starts = [a for a, _ in regions]
    region_ends = [b for _, b in regions]
    out: list[tuple[float, float]] = []
    for i, (start, end) in enumerate(times):
        following = times[i + 1][0] if i + 1 < len(times) else max(end, speech.duration)
        if i in keep:
            out.append((start, end))
            continue
        new_end = end
        k = bisect_right(region_starts, end) - 1  # the stretch the end is in, if any
        if speech.is_speech(end) and k >= 0 and end <= region_ends[k] < following:
            new_end = region_ends[k]
        j = bisect_right(region_ends, start)  # the stretch the onset is in, or the next one
        if j < len(regions) and region_starts[j] < end and region_ends[j] < end:
            later = region_starts[j + 1] if j + 1 < len(regions) else end
            if min(later, end) - region_ends[j] >= min_pause:
                new_end = min(new_end, max(region_ends[j], start))
        out.append((start, max(start, min(new_end, following))))
    return out
