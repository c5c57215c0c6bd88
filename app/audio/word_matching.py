"""Pairing the given lyrics with the words a recogniser heard, and keeping the pairs to trust.

Words are compared in normalised form (see :func:`app.audio.lyrics.normalize_word`); times are
seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

import numpy as np

REPEAT_PHRASE_WORDS = 2  # longest phrase whose back-to-back repetitions count as repeated tokens


def _similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def _similarity_matrix(given: Sequence[str], heard: Sequence[str]) -> np.ndarray:
    """``sim[i, j]`` in 0..1, computed once per distinct pair of words (lyrics repeat a lot)."""
    gv, gi = np.unique(np.asarray(given, dtype=object), return_inverse=True)
    hv, hi = np.unique(np.asarray(heard, dtype=object), return_inverse=True)
    table = np.array([[_similarity(g, h) for h in hv] for g in gv], dtype=np.float32)
    return table[np.ix_(gi.reshape(-1), hi.reshape(-1))]


def match_words(
    given: Sequence[str],
    heard: Sequence[str],
    heard_pauses: Sequence[float] | None = None,
    gap: float = 0.4,
) -> list[int | None]:
    """Global (Needleman-Wunsch) alignment of two normalised word lists.

    Returns, for each given word, the index of the heard word it was paired with (similarity
    >= 0.5), or None. The pairing is monotonic, so repeated choruses pair with the right repeat.
    ``heard_pauses[j]`` (seconds, ``len(heard) + 1`` values) is the silence before heard word j
    (the last value: after the last word). Given words the recogniser missed are cheap to skip
    where it heard a long pause and expensive where it heard continuous singing, which decides
    which repetition of a repeated passage the heard words belong to.
    """
    n, m = len(given), len(heard)
    if n == 0 or m == 0:
        return [None] * n
    sim = _similarity_matrix(given, heard)
    pair = np.where(sim >= 0.5, 2.0 * sim - 1.0, -1.0).tolist()
    pauses = np.zeros(m + 1) if heard_pauses is None else np.asarray(heard_pauses, dtype=float)
    skip_given = (gap + 2 * gap * np.clip(1.0 - pauses / 2.0, 0.0, 1.0)).tolist()
    score = [[0.0] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]  # 0 pair, 1 skip given, 2 skip heard
    for j in range(1, m + 1):
        score[0][j], move[0][j] = -gap * j, 2
    for i in range(1, n + 1):
        prev, row, mv, pr = score[i - 1], score[i], move[i], pair[i - 1]
        row[0], mv[0] = prev[0] - skip_given[0], 1
        for j in range(1, m + 1):
            best, how = prev[j - 1] + pr[j - 1], 0
            cand = prev[j] - skip_given[j]
            if cand > best:
                best, how = cand, 1
            cand = row[j - 1] - gap
            if cand > best:
                best, how = cand, 2
            row[j], mv[j] = best, how
    result: list[int | None] = [None] * n
    i, j = n, m
    while i > 0 and j > 0:
        if move[i][j] == 0:
            if sim[i - 1, j - 1] >= 0.5:
                result[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif move[i][j] == 1:
            i -= 1
        else:
            j -= 1
    return result


def trusted_anchors(
    matches: Sequence[int | None], given: Sequence[str], heard: Sequence[str]
) -> list[int | None]:
    """Keep pairs that are exact (or nearly) and either part of a run of two or a long word.

    Single short words ("I", "you") paired in isolation are often a hallucination or the wrong
    repetition, so they are dropped; so are runs of repeated tokens ("da da da") that hold no
    other word heard as written: with 8.9 s of silence before a German song, its scat line
    "da da dam da dam da" + "das" heard as seven "da"s of the line before, 6 s early, was kept for
    "das" ~ "da" and took 13 words 5-8 s off (0.474 s -> 0.087 s mean).
    A long word paired alone must be the heard word, or hold it or be held in it (an elided
    pronoun or an ending the recogniser added or dropped: "fais" for "j'fais", "denk" for
    "denkt"); one letter changed inside makes another word ("j'avais" heard for "jamais",
    "j'ai" for "j'fais"), which anchored a French chorus line 2-4 s off.
    """
    kept: list[int | None] = [None] * len(matches)
    for i, j in enumerate(matches):
        if j is None or _similarity(given[i], heard[j]) < 0.75:
            continue
        run = (i > 0 and matches[i - 1] == j - 1) or (i + 1 < len(matches) and matches[i + 1] == j + 1)
        if run or (len(given[i]) >= 5 and _heard_as_written(given[i], heard[j])):
            kept[i] = j
    # a repeated token or phrase ("da da da", "oh oh", "right now right now") pairs with any of its
    # repetitions: it anchors only inside a run of pairs that also holds a distinctive word, one
    # heard as written ("das" heard as "da" after a scat "da da dam da dam" is one more "da")
    repeated = _in_repeats(given)
    i = 0
    while i < len(kept):
        if kept[i] is None:
            i += 1
            continue
        k = i
        while k + 1 < len(kept) and kept[k + 1] is not None and kept[k + 1] == kept[k] + 1:
            k += 1
        if any(repeated[x] for x in range(i, k + 1)) and not any(
            not repeated[x] and _heard_as_written(given[x], heard[kept[x]]) for x in range(i, k + 1)
        ):
            for x in range(i, k + 1):
                kept[x] = None
        i = k + 1
    return kept


def _heard_as_written(given: str, heard: str) -> bool:
    """Whether a given word was heard as written: the same, or for a long word (5 letters or more)
    holding the heard word or held in it (an elided pronoun, an ending added or dropped)."""
    return given == heard or (len(given) >= 5 and (given in heard or heard in given))


def _in_repeats(words: Sequence[str], longest: int = REPEAT_PHRASE_WORDS) -> list[bool]:
    """Per word: whether it is part of a phrase of 1..``longest`` words sung twice or more in a row."""
    out = [False] * len(words)
    for size in range(1, longest + 1):
        for s in range(len(words) - 2 * size + 1):
            if words[s : s + size] == words[s + size : s + 2 * size]:
                out[s : s + 2 * size] = [True] * (2 * size)
    return out


def rate_consistent(
    anchors: dict[int, tuple[float, float]], min_word_s: float = 0.1, slack: float = 0.5
) -> set[int]:
    """The largest chain of anchors (word index -> (start, end)) that leaves at least
    ``min_word_s`` seconds (minus ``slack``) for every unanchored word between two kept anchors.

    A passage paired with the wrong repetition shows up as dozens of given words squeezed into a
    short pause between two anchors; the chain drops the smaller side of such a conflict.
    """
    keys = sorted(anchors)
    best = [1] * len(keys)
    back = [-1] * len(keys)
    for k, wk in enumerate(keys):
        for i in range(k - 1, -1, -1):
            wi = keys[i]
            if best[i] + 1 <= best[k]:
                continue
            if anchors[wk][0] - anchors[wi][1] >= min_word_s * (wk - wi - 1) - slack:
                best[k], back[k] = best[i] + 1, i
    if not keys:
        return set()
    k = int(np.argmax(best))
    kept = set()
    while k >= 0:
        kept.add(keys[k])
        k = back[k]
    return kept
