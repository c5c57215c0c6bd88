"""Known-lyrics alignment: every word of given lyrics timed against a vocals stem (:func:`align`).

Input is the vocals stem (any rate / channel count); it is resampled here to 16 kHz mono.
Times in the results are seconds from the start of the input.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from functools import partial
from typing import Any

import numpy as np

from app.audio import alignment, word_matching
from app.audio.drift import CONFIDENT_P, PILED_S, drift_suspects, realign_runs
from app.audio.estimates import SECONDS_PER_WEIGHT, estimate_times, word_weights
from app.audio.forced import WindowKey, align_window, align_windows, make_tokenizer, plan_line_windows, window_key
from app.audio.heard import detect_language, heard_and_gaps
from app.audio.lyrics import normalize_word, parse_stanzas
from app.audio.lyrics_edits import between_kept, heard_between, previous_words
from app.audio.types import Line, LyricsTiming, ProgressCallback, Waveform, Word, no_progress
from app.audio.vocals import SAMPLE_RATE, VAD_FRAME_S, SpeechMap, speech_map, to_16k_mono
from app.audio.whisper_models import model_name, onset_bias

STRETCHED_S = 1.0
"""A line's first word aligned longer than this (and four times its need) starts no earlier than
its estimate (see :func:`_stretched_line_starts`)."""
AHEAD_MARGIN_S = 5.0
"""A line window is aligned while the passes go on when it ends this far (seconds) before the words
settled so far (see :class:`_WindowsAhead`): the lines after those words are only estimated yet."""
UNMATCHED_WORDS = 4
"""Heard words in a row that no given word explains before they are reported as unmatched singing."""
MIN_ANCHOR_P = 0.05
"""A heard word the decoder gave a lower probability than this does not anchor a given word (a
word decoded with no time of its own at the end of a window, "Right" at p 0.002, paired with the
wrong repetition of a chorus line)."""
AGREED_S = 0.25
"""A word heard and window-aligned at onsets this close (seconds) has two timings that agree."""
CONFIDENCE = {"agreed": 0.97, "one timing": 0.92, "aligned again": 0.64}
"""A known-lyrics word's confidence by the evidence for its time: the share of such words within
0.3 s of the reference on the 12 evaluation songs (pooled, 3140 words; Zen 4 host, 2026-12-07).
"agreed": heard and window-aligned within AGREED_S (2041 words, 97.3%; 98.2% on the English songs,
95.4% on the others); "one timing": only one of the two, or the two apart (918 words, 92.4%). A
word placed from its neighbours has no timing of its own: confidence 0 (139 words, 69.8% within
0.3 s). "aligned again": a drifted word timed by a window of its own between the words kept (42
words, 64.3%). Whisper's token probability was measured and left out: aligned words at
p >= 0.5 were off more often than those below (14.6% against 10.5% more than 0.3 s off)."""
REVIEW_BELOW_ALIGNED = 0.7
"""A known-lyrics line whose mean confidence is below this needs review: a line of four words with
one placed and three of one timing is flagged, one with a placed word among three whose timings
agree is not. Measured on the evaluation songs (Zen 4 host): 6.9% of the lines flagged, holding 7 of
the 15 lines with a word more than 1 s off and 60 of the 202 words more than 0.3 s off; the former
flag (mean token probability below 0.25) flagged 5% of the lines and held 7 of 20 such lines and 39
words on an earlier host."""
REVIEW_WEAK_WORDS = 3
"""A known-lyrics line with this many words that drifted (aligned again, or placed from their
neighbours) needs review whatever its mean: a long line keeps a high mean with three of them.
With REVIEW_BELOW_ALIGNED, on the evaluation songs (Zen 4 host), from the same word times: 44 of
554 lines flagged instead of 38, holding 10 instead of 7 of the 15 lines with a word more than 1 s
off and 76 instead of 60 of the 202 words more than 0.3 s off (1.3 s of silence before each song:
53 instead of 48 lines, 9 instead of 6 of 13, 77 instead of 60 of 196). Two such words instead of
three: 52 lines, 10 of 15, 82 of 202. With the drift rules of 2026-12-07: 44 lines, 10 of 15, 67
of the 191 words more than 0.3 s off."""


def align(
    wf: Waveform,
    lyrics_text: str,
    model: Any,
    language: str | None = None,
    on_progress: ProgressCallback = no_progress,
    previous: LyricsTiming | None = None,
    keep_unchanged: bool = True,
) -> LyricsTiming:
    """Time every word of known lyrics against a vocals stem (forced alignment).

    The result has exactly the lines and words of ``parse_lyrics(lyrics_text)``, each with start
    and end in seconds and a confidence in 0..1 (0 for words whose time was estimated).
    How: a transcription with word timestamps locates the sung text (its words are paired with the
    given ones by an edit-distance alignment; sung stretches it skipped are transcribed again on
    their own), words without a reliable pair are placed on the sung stretches between the paired
    ones, the lines are force-aligned in windows of up to 30 s planned from those estimates, and
    drift is caught: the aligned words far from their estimates, piled onto a neighbour, given no
    time or cut off from their line are aligned again in windows of their own between the words
    kept, else placed from those (:mod:`app.audio.drift`). Onsets are corrected for the model's
    bias and moved out of silences detected on the vocals; word ends follow the voice (a held
    note is held to its end, an instrumental break is not part of a word).

    ``previous`` (an earlier timing of these lyrics, or one imported from LRC / UltraStar) replaces
    the transcription: with ``keep_unchanged`` its lines whose text is unchanged keep their timing
    exactly and only the other lines are aligned, between them (a lyrics edit); without it, every
    line is aligned again around the previous times (an import refined against the audio).
    Stages: "transcribing" (fractions 0-0.5) then "aligning". Raises ValueError when the lyrics
    contain no words; a JobCanceled raised by ``on_progress`` stops the work.
    """
    lines, stanza_starts = parse_stanzas(lyrics_text)
    given = [w for line in lines for w in line]
    if not given:
        raise ValueError("the lyrics contain no words")
    audio = to_16k_mono(wf)
    if not getattr(model.model, "is_multilingual", True):
        language = "en"
    bias = onset_bias(model)
    line_of = [k for k, line in enumerate(lines) for _ in line]
    first = np.cumsum([0] + [len(line) for line in lines])
    texts = [normalize_word(w) for w in given]
    weights = word_weights(texts)
    stanza_words = {int(first[k]) for k in stanza_starts}
    breaks = [i in stanza_words for i in range(len(given))]
    speech = speech_map(audio)
    prior, prior_flags = previous_words(previous, lines) if previous is not None else ({}, {})
    fixed = prior if keep_unchanged else {}
    kept_flags = prior_flags if keep_unchanged else {}  # an unchanged line keeps its review flag
    heard_at: dict[int, float] = {}  # onsets of the heard words that anchor given words
    heard: list[dict[str, Any]] = []
    duration = len(audio) / SAMPLE_RATE

    def heard_anchors(words: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        anchors = _anchors(given, words, duration, speech)
        for i in alignment.line_outliers({i: w["start"] for i, w in anchors.items()}, line_of):
            del anchors[i]
        return anchors

    def line_spans(estimates: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """The estimated span of each line whose words ``estimates`` times (the first lines)."""
        return [
            _sung_span(estimates[first[k] : first[k + 1]], speech) if k + 1 in stanza_starts
            else (estimates[first[k]][0], estimates[first[k + 1] - 1][1])
            for k in range(line_of[len(estimates) - 1] + 1 if estimates else 0)
        ]

    early: dict[WindowKey, list[tuple[float, float, float]]] = {}  # windows aligned during the passes
    if previous is not None and (prior or not keep_unchanged):
        language = language or previous.language or detect_language(model, audio)
        anchor_times = {i: (s + bias, e + bias) for i, (s, e, _) in fixed.items()}
        guide = {i: (s + bias, e + bias) for i, (s, e, _) in prior.items()}
        if keep_unchanged:  # the changed lines' stretches (between kept words) are transcribed alone
            heard_in = heard_between(model, audio, language, anchor_times, len(given))
            found = {i: w for i, w in _anchors(given, heard_in, duration).items() if i not in fixed}
            guide = anchor_times | _times(found)
            heard_at = {i: float(w["start"]) for i, w in found.items()}
        on_progress(0.5, "aligning")
    else:

        def settled_spans(words: list[dict[str, Any]]) -> list[tuple[float, float]]:
            """Spans of the lines up to the last one with an anchor among ``words`` (the rest,
            not heard yet, would only be spread over the song's remaining singing)."""
            anchors = _times(heard_anchors(words))
            if not anchors:
                return []
            end = slice(0, int(first[line_of[max(anchors)] + 1]))
            return line_spans(
                estimate_times(weights[end], line_of[end], anchors, speech, texts=texts[end], breaks=breaks[end])
            )

        ahead = _WindowsAhead(model, audio, lines, early, settled_spans)
        heard, detected = heard_and_gaps(model, audio, language, speech, on_progress, "transcribing", 0.5, ahead)
        language = language or detected
        anchors = heard_anchors(heard)
        anchor_times = guide = _times(anchors)
        heard_at = {i: float(w["start"]) for i, w in anchors.items()}
    estimates = estimate_times(weights, line_of, guide, speech, texts=texts, breaks=breaks)
    todo = [any(i not in fixed for i in range(first[k], first[k + 1])) for k in range(len(lines))]
    windows = plan_line_windows(lines, line_spans(estimates), todo, duration)
    timed = align_windows(model, language, audio, lines, windows, on_progress, early)
    aligned = [timed[i][:2] if i in timed else anchor_times[i] for i in range(len(given))]
    wrong = alignment.wrong_repeats(aligned, anchor_times, texts, weights=weights, piled=PILED_S) if heard else set()
    if wrong:  # heard words paired with the wrong repetition give way to the window alignment
        anchor_times = guide = {i: t for i, t in anchor_times.items() if i not in wrong}
        heard_at = {i: t for i, t in heard_at.items() if i not in wrong}
        estimates = estimate_times(weights, line_of, guide, speech, texts=texts, breaks=breaks)
    merged, source = alignment.reconcile(aligned, anchor_times, weights, line_of, speech, breaks=breaks)
    confident = {i for i, (_, _, p) in timed.items() if p >= CONFIDENT_P}
    suspects = drift_suspects(merged, source, estimates, line_of, confident) - set(fixed)
    realigned: set[int] = set()
    kept = {i: t for i, t in enumerate(merged) if i not in suspects and source[i] != "estimated"}
    if suspects:  # drift: the doubtful words are aligned again between the words kept, else placed from them
        again = realign_runs(
            model, language, audio, given, weights, kept, suspects, set(anchor_times) | set(fixed), speech, on_progress
        )
        realigned = set(again) - set(kept)  # the others are kept words given back the time they held
        source = ["aligned" if i in realigned else src for i, src in enumerate(source)]
        kept |= again
    # two kept words that leave the words between them no time: one of those is wrong, both go
    crowd = alignment.crowded(kept, weights) - set(fixed)
    if suspects or crowd:  # the words not kept are placed from the others
        # a kept word held over the run after it (the re-aligned words, or a dropped crowd) gives
        # that time back, as in reconcile
        kept = alignment.release_held({i: t for i, t in kept.items() if i not in crowd}, weights, keep=set(fixed))
        realigned -= crowd
        merged = estimate_times(weights, line_of, kept, speech, texts=texts, breaks=breaks)
        source = [src if i in kept else "estimated" for i, src in enumerate(source)]
    times = [(max(0.0, s - bias), max(0.0, e - bias)) for s, e in merged]
    times = alignment.skip_leading_pauses(times, speech, weights=weights, line_of=line_of)
    times = alignment.snap_to_speech(times, speech)
    for i in _stretched_line_starts(source, set(anchor_times), timed, line_of, weights):
        start = max(times[i][0], estimates[i][0] - bias)  # not before the estimate, packed before its line
        times[i] = (start, max(times[i][1], start))
    times = alignment.monotonic(between_kept(times, fixed))
    times = alignment.voiced_ends(times, speech, keep=fixed)
    confidence = _confidences(source, timed, heard_at, fixed, realigned)
    review = [
        kept_flags[k] if k in kept_flags
        else _needs_review(confidence[first[k] : first[k + 1]])
        for k in range(len(lines))
    ]
    on_progress(1.0, "aligning")
    return LyricsTiming(language, _timed_lines(lines, times, confidence, review), {"alignment": model_name(model)},
                        _unmatched(heard, times, bias, previous.unmatched if previous and keep_unchanged else ()))


def _times(anchors: dict[int, dict[str, Any]]) -> dict[int, tuple[float, float]]:
    return {i: (w["start"], w["end"]) for i, w in anchors.items()}


class _WindowsAhead:
    """The line windows aligned while Whisper's passes go on (:data:`app.audio.heard.Ahead`).

    The words settled so far are paired and placed as :func:`align` does with all of them
    (``spans(words)``: the estimated spans of the lines they reach), and each window planned from
    those that ends AHEAD_MARGIN_S before the settled words do is aligned into ``early``, by its
    key. :func:`align` takes a window from there only when its own plan has the same one (same
    times, same words), so the timing is the same as without it."""

    def __init__(
        self,
        model: Any,
        audio: np.ndarray,
        lines: list[list[str]],
        early: dict[WindowKey, list[tuple[float, float, float]]],
        spans: Callable[[list[dict[str, Any]]], list[tuple[float, float]]],
    ) -> None:
        self.model, self.audio, self.lines, self.early, self.spans = model, audio, lines, early, spans
        self.started: set[WindowKey] = set()
        self.tokenizer: Any = None

    def __call__(self, words: list[dict[str, Any]], settled: float, language: str) -> list[Callable[[], None]]:
        duration = len(self.audio) / SAMPLE_RATE
        spans = self.spans(words)
        windows = plan_line_windows(self.lines[: len(spans)], spans, [True] * len(spans), duration)
        # the last line's window may take in lines not heard yet
        keys = [window_key(self.lines, w) for w in windows if w[1] <= settled - AHEAD_MARGIN_S and w[3] < len(spans)]
        fresh = [key for key in keys if key not in self.started]
        self.started.update(fresh)
        self.tokenizer = self.tokenizer or make_tokenizer(self.model, language)  # one language per song
        return [partial(self._align, key) for key in fresh]

    def _align(self, key: WindowKey) -> None:
        self.early[key] = align_window(self.model, self.tokenizer, self.audio, key[0], key[1], list(key[2]))


def _anchors(
    given: list[str], heard: list[dict[str, Any]], duration: float, speech: SpeechMap | None = None
) -> dict[int, dict[str, Any]]:
    """Given-word index -> the heard word it was reliably recognised as (edit-distance pairing).

    The room for given words the recogniser missed is the pause around each heard word, counted
    in sung time when ``speech`` is known (an instrumental outro is no room for a missed chorus).
    A heard word below MIN_ANCHOR_P, or decoded with no duration (shorter than PILED_S: the decoder
    gave it no time of its own, as on-the-run's "run," put on the next word's onset 1.4 s late),
    anchors nothing."""
    norm_given = [normalize_word(w) for w in given]
    norm_heard = [normalize_word(w["text"]) for w in heard]
    starts = [w["start"] for w in heard] + [duration]
    ends = [0.0] + [w["end"] for w in heard]
    pauses = [
        b - a if speech is None else speech.speech_time(b) - speech.speech_time(a)
        for a, b in zip(ends, starts, strict=True)
    ]
    matches = word_matching.match_words(norm_given, norm_heard, pauses)
    matches = [
        j if j is not None and heard[j]["p"] >= MIN_ANCHOR_P and heard[j]["end"] - heard[j]["start"] >= PILED_S
        else None
        for j in matches
    ]
    matches = word_matching.trusted_anchors(matches, norm_given, norm_heard)
    anchors = {i: heard[j] for i, j in enumerate(matches) if j is not None}
    kept = word_matching.rate_consistent({i: (w["start"], w["end"]) for i, w in anchors.items()})
    return {i: w for i, w in anchors.items() if i in kept}


def _confidences(
    source: list[str],
    timed: dict[int, tuple[float, float, float]],
    heard_at: dict[int, float],
    fixed: dict[int, tuple[float, float, float]],
    again: Collection[int] = (),
) -> list[float]:
    """Per word, the confidence of the evidence for its time (see CONFIDENCE): a kept word keeps its
    own, a word placed from its neighbours ("estimated") has 0, a drifted word aligned again
    (``again``) has CONFIDENCE["aligned again"], a word whose heard and aligned onsets
    (``heard_at``, ``timed``: before the bias correction) agree within AGREED_S has
    CONFIDENCE["agreed"], any other CONFIDENCE["one timing"]."""
    return [
        fixed[i][2] if i in fixed
        else 0.0 if src == "estimated"
        else CONFIDENCE["aligned again"] if i in again
        else CONFIDENCE["agreed"] if i in timed and i in heard_at and abs(timed[i][0] - heard_at[i]) <= AGREED_S
        else CONFIDENCE["one timing"]
        for i, src in enumerate(source)
    ]


def _needs_review(confidence: Sequence[float]) -> bool:
    """Whether a known-lyrics line with these word confidences needs review: a mean below
    REVIEW_BELOW_ALIGNED, or REVIEW_WEAK_WORDS words that drifted (confidence at most
    CONFIDENCE["aligned again"]: aligned again, or placed from their neighbours)."""
    weak = sum(1 for c in confidence if c <= CONFIDENCE["aligned again"])
    return float(np.mean(confidence)) < REVIEW_BELOW_ALIGNED or weak >= REVIEW_WEAK_WORDS


def _stretched_line_starts(
    source: list[str],
    anchored: set[int],
    timed: dict[int, tuple[float, float, float]],
    line_of: list[int],
    weights: list[float],
) -> set[int]:
    """Unanchored first words of lines that keep an aligned time the window held for more than
    STRETCHED_S and four times what the word needs (0.08 s per letter + 1): stretched back over the
    pause before the line (flickr's line-initial "A" under a backing voice, 1.0-1.1 s early; of
    the 22 such words on the evaluation songs, starting them no earlier than their estimate left
    21 within 0.3 s and none over 1 s off, against 19 and 2)."""
    return {
        i
        for i, (start, end, _) in timed.items()
        if source[i] == "aligned" and i not in anchored and (i == 0 or line_of[i] != line_of[i - 1])
        and end - start > max(STRETCHED_S, 4 * weights[i] * SECONDS_PER_WEIGHT)
    }


def _sung_span(words: list[tuple[float, float]], speech: SpeechMap) -> tuple[float, float]:
    """(start, end) of a line that ends a stanza, from its words' estimates: it ends where the
    singing of its last word stops (an estimated word runs on to the next word's onset, over the
    pause between stanzas, which would join them in one alignment window)."""
    start, end = words[-1]
    return words[0][0], min(end, max(speech.run_end(start), start + VAD_FRAME_S))


def _unmatched(
    heard: list[dict[str, Any]],
    times: list[tuple[float, float]],
    bias: float,
    earlier: Sequence[dict[str, Any]] = (),
    min_words: int = UNMATCHED_WORDS,
) -> list[dict[str, Any]]:
    """Runs of at least ``min_words`` heard words (pauses under 2 s) that no given word's final
    time covers: singing the lyrics do not contain. Passages reported ``earlier`` (before a
    lyrics edit) stay reported unless the edited lyrics now cover them."""
    spans = sorted(times)
    starts = np.array([s for s, _ in spans])
    ends = np.maximum.accumulate(np.array([e for _, e in spans])) if spans else np.array([])

    def covered(t: float) -> bool:
        k = int(np.searchsorted(starts, t + 0.3, side="right")) - 1
        return k >= 0 and ends[k] >= t - 0.3

    runs: list[list[dict[str, Any]]] = []
    for w in heard:
        mid = (w["start"] + w["end"]) / 2 - bias
        if covered(mid) or not normalize_word(w["text"]):
            continue
        if runs and w["start"] - runs[-1][-1]["end"] < 2.0:
            runs[-1].append(w)
        else:
            runs.append([w])
    found = [
        {"start": round(max(0.0, r[0]["start"] - bias), 3), "end": round(max(0.0, r[-1]["end"] - bias), 3),
         "heard": " ".join(w["text"] for w in r)}
        for r in runs
        if len(r) >= min_words
    ]
    return found + [dict(u) for u in earlier if not covered((u["start"] + u["end"]) / 2)]


def _timed_lines(
    lines: list[list[str]], times: list[tuple[float, float]], confidence: list[float], review: list[bool]
) -> list[Line]:
    """Lines of Words from flat per-word times and confidences (in lyrics order), each line with
    its review flag."""
    out, k = [], 0
    for line, flag in zip(lines, review, strict=True):
        words = [
            Word(text, float(times[k + i][0]), float(times[k + i][1]), float(confidence[k + i]))
            for i, text in enumerate(line)
        ]
        k += len(line)
        out.append(Line(" ".join(line), words[0].start, words[-1].end, words, review=flag))
    return out
