"""What Whisper hears in a vocals stem: the first pass (one conditioned transcription with word
timestamps) and the second (the sung stretches it skipped, each transcribed on its own).

Heard words are dicts ``{"text", "start", "end", "p"}`` (seconds from the start of the audio,
before the model's onset bias is corrected).
"""

from __future__ import annotations

import itertools
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from app.audio.lyrics import normalize_word
from app.audio.types import ProgressCallback
from app.audio.vocals import REGION_GAP_S, SAMPLE_RATE, SpeechMap
from app.audio.whisper_models import replicas

SQUEEZED_WORD_S = 0.03
GAP_PAD_S = 0.3
GAP_SETTLED_S = 2.0  # a stretch this far behind the first pass is settled: no later word can cover it
GAP_MAX_TOKENS = 120
BEAM_SIZE = 5
"""Whisper's beam in both passes (measured: greedy decoding loops more and misplaces more words)."""
GAP_CLIP_S = 15.0
"""Unheard stretches longer than this (seconds) are transcribed in pieces cut at pauses."""
MAX_HEARD_WORD_S = 2.0
"""A heard word hides at most this much (seconds) of the singing from the second pass."""
LOOP_RATIO = 2.4
"""A decoded segment whose text compresses better than this (zlib, Whisper's own test for failed
decoding) is a repetition loop ("right now, right now, ..." over a whole verse): its words are
dropped, so the stretch counts as unheard and the second pass transcribes it again."""


def _heard_words(
    model: Any,
    audio: np.ndarray,
    language: str | None,
    on_progress: ProgressCallback,
    stage: str,
    share: float,
    on_segment: Callable[[list[dict[str, Any]], float, str], None] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Transcribe with word timestamps and VAD; return (words as dicts, detected language).
    ``on_segment(words so far, end of the last segment, language)`` follows the pass.

    One pass over the whole song, each window conditioned on the text before it: cutting the song
    in two halves transcribed side by side was measured 18% faster but less accurate (the second
    half starts without context; pooled onset error 0.128 s against 0.124 s, see benchmarks/ALIGNMENT.md).
    """
    duration = max(len(audio) / SAMPLE_RATE, 1e-6)
    segments, info = model.transcribe(
        audio,
        language=language,
        word_timestamps=True,
        vad_filter=True,
        condition_on_previous_text=True,
        temperature=0.0,  # measured: the fallback temperatures lose words on songs and cost 2-3x time
        beam_size=BEAM_SIZE,
    )
    words: list[dict[str, Any]] = []
    on_progress(0.0, stage)
    for segment, looped in _marked_loops(segments):  # a loop is dropped whole: the second pass hears it again
        words += [] if looped else _segment_words(segment)
        on_progress(share * min(1.0, segment.end / duration), stage)
        if on_segment is not None:
            on_segment(words, segment.end, info.language)
    return drop_squeezed(join_elisions(words), duration), info.language


def in_lanes(model: Any, items: Sequence[Any], work: Callable[[Any, bool], Any]) -> list[Any]:
    """``work(item, main)`` for every item, spread round-robin over the model's replicas.

    The first lane runs in this thread (``main`` True: progress and cancellation belong there);
    the others run in threads that stop taking items once this one raises. Results in item order.
    """
    lanes = min(replicas(model), len(items))
    if lanes <= 1:
        return [work(item, True) for item in items]
    results: list[Any] = [None] * len(items)
    stop = threading.Event()

    def lane(indices: range) -> None:
        for k in indices:
            if stop.is_set():
                return
            results[k] = work(items[k], False)

    with ThreadPoolExecutor(lanes - 1) as pool:
        others = [pool.submit(lane, range(j, len(items), lanes)) for j in range(1, lanes)]
        try:
            for k in range(0, len(items), lanes):
                results[k] = work(items[k], True)
        except BaseException:
            stop.set()
            raise
        for future in others:
            future.result()
    return results


def _looped(text: str) -> bool:
    """Whether decoded text is a repetition loop (compression ratio above LOOP_RATIO)."""
    data = text.strip().encode("utf-8")
    return len(data) > 0 and len(data) / len(zlib.compress(data)) > LOOP_RATIO


def _marked_loops(segments: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    """Each decoded segment of the first pass with whether it is a repetition loop: its own text
    compresses past LOOP_RATIO, or it repeats the segment before it word for word in a window
    whose decoded text does (Whisper's test is over the whole 30 s window, ``compression_ratio``:
    a decoder conditioned on the previous text can write one lyric line as segment after segment
    over a verse, "Wir leben die Veränderungen" six times over 25 s of other words, each with
    p 0.9, which pairs the lyrics one repetition off), or its text is one already found looping
    (the next window, conditioned on the loop, goes on with it). A chorus that repeats itself
    has the window's ratio but not the same segment twice in a row."""
    loops: set[str] = set()
    previous = ""
    for segment in segments:
        text = " ".join(filter(None, map(normalize_word, segment.text.split())))
        looped = _looped(segment.text) or text in loops or (
            text == previous and segment.compression_ratio > LOOP_RATIO
        )
        if looped:
            loops.add(text)
        previous = text
        yield segment, looped


def _segment_words(segment: Any) -> list[dict[str, Any]]:
    """A decoded segment's words as dicts; of a repetition loop, only the words before it.

    A loop is text repeated past LOOP_RATIO; its beginning can be real (a chorus that repeats a
    phrase, decoded right until the decoder went on repeating it), so the longest prefix of words
    below LOOP_RATIO is kept, cut where the timing collapses (the first word shorter than
    SQUEEZED_WORD_S: a repeated word with no audio left to time it against).
    """
    words = [w for w in segment.words or [] if w.word.strip()]
    if _looped(segment.text):
        size = 0
        while size < len(words) and not _looped("".join(w.word for w in words[: size + 1])):
            size += 1
        cut = next((k for k, w in enumerate(words[:size]) if w.end - w.start < SQUEEZED_WORD_S), size)
        words = words[:cut]
    return [{"text": w.word.strip(), "start": w.start, "end": w.end, "p": w.probability} for w in words]


def _unheard_speech(
    heard: list[dict[str, Any]],
    speech: SpeechMap,
    min_speech: float = 1.0,
    margin: float = 0.5,
    before: float = float("inf"),
) -> list[tuple[float, float]]:
    """Stretches of voice activity (at least ``min_speech`` seconds of it) that no heard word
    covers (each heard word covers its span, at most MAX_HEARD_WORD_S of it, plus ``margin`` on
    both sides: a "word" that lasts longer is a decoder that lost its place and smeared the
    words it skipped over the singing), in the active regions that end by ``before``."""
    covered = sorted((w["start"] - margin, min(w["end"], w["start"] + MAX_HEARD_WORD_S) + margin) for w in heard)
    out: list[tuple[float, float]] = []
    for t0, t1 in (r for r in speech.regions() if r[1] <= before):
        cursor = t0
        for c0, c1 in [*[c for c in covered if c[1] > t0 and c[0] < t1], (t1, t1)]:
            if c0 > cursor and speech.speech_time(c0) - speech.speech_time(cursor) >= min_speech:
                out.append((cursor, c0))
            cursor = max(cursor, c1)
    return out


def _gap_clips(
    heard: list[dict[str, Any]], speech: SpeechMap, duration: float, before: float = float("inf")
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(stretches, clips): the sung stretches no heard word covers, in pieces of at most
    GAP_CLIP_S, and the clips to transcribe them (each padded by GAP_PAD_S)."""
    gaps = [piece for gap in _unheard_speech(heard, speech, before=before) for piece in _split_stretch(gap, speech)]
    return gaps, [(max(0.0, a - GAP_PAD_S), min(duration, b + GAP_PAD_S)) for a, b in gaps]


def _fill_gaps(
    model: Any,
    audio: np.ndarray,
    language: str,
    heard: list[dict[str, Any]],
    speech: SpeechMap,
    lane: _GapLane | None = None,
) -> list[dict[str, Any]]:
    """Heard words plus those of a second pass over the sung stretches the first pass skipped.

    Whisper's own voice detector (Silero on its default settings) drops quiet or sustained
    singing, and conditioning on earlier text can make it stop early; the vocals stem's activity
    map is more inclusive. Each stretch is transcribed on its own (no conditioning: a clip of
    vocalise otherwise gets the previous chorus hallucinated into it). ``lane``: the clips are
    transcribed there (see :func:`heard_and_gaps`), else spread over the model's replicas.
    """
    duration = len(audio) / SAMPLE_RATE
    gaps, clips = _gap_clips(heard, speech, duration)
    if lane is not None:
        done = lane.finish(clips)
        found = [w for clip in clips if clip in done for w in done[clip]]
        found += transcribe_clips(model, audio, language, [clip for clip in clips if clip not in done])
    elif gaps:
        found = transcribe_clips(model, audio, language, clips)
    else:
        return heard
    return _with_gap_words(heard, gaps, found, duration)


def _with_gap_words(
    heard: list[dict[str, Any]], gaps: list[tuple[float, float]], found: list[dict[str, Any]], duration: float
) -> list[dict[str, Any]]:
    """The first pass's words with those the second pass ``found`` in its ``gaps`` (the words it
    heard in a clip's padding were heard already)."""
    found = join_elisions(sorted(found, key=lambda w: w["start"]))
    extra = [w for w in found if any(a <= w["start"] < b for a, b in gaps)]
    return sorted(heard + drop_squeezed(extra, duration), key=lambda w: w["start"])


Ahead = Callable[[list[dict[str, Any]], float, str], list[Callable[[], None]]]
"""``ahead(words, settled, language)`` -> jobs: given the words heard so far that no later word
can change (those before ``settled`` seconds), work that can start before the passes end (see
:func:`heard_and_gaps`)."""
AHEAD_EVERY_S = 30.0
"""The first pass's settled words are handed to ``ahead`` each time they reach this much further
(seconds of the song)."""


def heard_and_gaps(
    model: Any,
    audio: np.ndarray,
    language: str | None,
    speech: SpeechMap,
    on_progress: ProgressCallback,
    stage: str,
    share: float,
    ahead: Ahead | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """The first pass (:func:`_heard_words`) and the second (:func:`_fill_gaps`): (words, language).

    The first pass is one sequential decode on one replica. With more replicas, the sung
    stretches it has left behind unheard are transcribed on a spare one while it goes on, and
    what is left when it ends is shared by both: each clip is decoded on its own, so the words
    are the same as one pass after the other gives (checked on the 12 evaluation songs).
    When that replica has no clip to transcribe, it runs the jobs ``ahead`` returns for the
    words settled so far (the caller's work on them, done early; each job must be one whose
    result the caller checks before it uses it). Jobs still queued when the passes end are
    dropped; the one in progress is finished.
    """
    if replicas(model) < 2:
        heard, detected = _heard_words(model, audio, language, on_progress, stage, share)
        return _fill_gaps(model, audio, language or detected, heard, speech), detected
    duration = len(audio) / SAMPLE_RATE
    lane: _GapLane | None = None
    handed = 0.0  # how far the settled words handed to ``ahead`` reach

    def offer(words: list[dict[str, Any]], frontier: float, detected: str) -> None:
        nonlocal lane, handed
        lane = spare = lane or _GapLane(model, audio, language or detected)
        # later words start after the frontier: the stretches well behind it are settled
        settled = frontier - GAP_SETTLED_S
        heard = drop_squeezed(join_elisions(words), duration)
        gaps, clips = _gap_clips(heard, speech, duration, before=settled)
        lane.offer(clips)
        if ahead is not None and settled - handed >= AHEAD_EVERY_S:
            handed = settled

            def hand() -> None:
                if handed == settled:  # else a later hand-over is queued
                    _settled(spare, ahead, [w for w in heard if w["end"] < settled], gaps, clips, settled)

            lane.later(hand)

    try:
        heard, detected = _heard_words(model, audio, language, on_progress, stage, share, offer)
    except BaseException:
        if lane is not None:
            lane.close()
        raise
    return _fill_gaps(model, audio, language or detected, heard, speech, lane), detected


def _settled(
    lane: _GapLane,
    ahead: Ahead,
    heard: list[dict[str, Any]],
    gaps: list[tuple[float, float]],
    clips: list[tuple[float, float]],
    settled: float,
) -> None:
    """Hand ``ahead`` the settled words (the first pass's, with those of the gap clips done) up to
    the first clip not transcribed yet, and queue the jobs it returns on ``lane``."""
    done = dict(lane.done)
    pending = [clip[0] for clip in clips if clip not in done]
    settled = min([settled, *pending])
    found = [w for clip in clips if clip in done for w in done[clip]]
    words = _with_gap_words(heard, gaps, found, len(lane.audio) / SAMPLE_RATE)
    for job in ahead([w for w in words if w["end"] < settled], settled, lane.language):
        lane.later(job)


class _GapLane:
    """Gap clips transcribed (:func:`transcribe_clips`, one at a time) by a thread on a spare
    replica as they are offered; :meth:`finish` has the calling thread share the rest. Only an
    optimisation: a clip that fails here is transcribed again by the caller, which reports it.
    When no clip waits, the thread runs the jobs queued with :meth:`later` (in order)."""

    def __init__(self, model: Any, audio: np.ndarray, language: str) -> None:
        self.model, self.audio, self.language = model, audio, language
        # (rank, order, item): a clip (rank 1) before a job (rank 2); None (rank 0) stops the thread
        self.queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self.order = itertools.count()
        self.offered: set[tuple[float, float]] = set()
        self.done: dict[tuple[float, float], list[dict[str, Any]]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="gap-pass", daemon=True)
        self.thread.start()

    def offer(self, clips: list[tuple[float, float]]) -> None:
        for clip in clips:
            if clip not in self.offered:
                self.offered.add(clip)
                self.queue.put((1, next(self.order), clip))

    def later(self, job: Callable[[], None]) -> None:
        self.queue.put((2, next(self.order), job))

    def _transcribe(self, clip: tuple[float, float]) -> None:
        self.done[clip] = transcribe_clips(self.model, self.audio, self.language, [clip])

    def _run(self) -> None:
        while (item := self.queue.get()[2]) is not None and not self.stop.is_set():
            try:
                if callable(item):
                    item()
                else:
                    self._transcribe(item)
            except Exception:  # a clip is left to the caller; a job's result is only a head start
                if not callable(item):
                    return

    def finish(self, clips: list[tuple[float, float]]) -> dict[tuple[float, float], list[dict[str, Any]]]:
        """Offer ``clips`` and transcribe what is still queued here too, side by side with the
        thread (queued jobs are dropped); return every clip done (clip -> words)."""
        self.offer(clips)
        try:
            while True:
                try:
                    rank, _, item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if rank == 1:
                    self._transcribe(item)
        finally:
            self.close()
        return self.done

    def close(self) -> None:
        """Stop the thread after the clip or job in progress."""
        self.stop.set()
        self.queue.put((0, next(self.order), None))
        self.thread.join()


def _split_stretch(
    stretch: tuple[float, float], speech: SpeechMap, max_len: float = GAP_CLIP_S
) -> list[tuple[float, float]]:
    """A stretch cut at its pauses into pieces of at most ``max_len`` seconds where it can be
    (a piece is never cut inside a sung stretch). Whisper decodes a short clip whole; a long
    one it may cut off after ``max_new_tokens`` and time the rest of its words wrongly."""
    t0, t1 = stretch
    if t1 - t0 <= max_len:
        return [stretch]
    pieces: list[tuple[float, float]] = []
    for a, b in speech.regions(REGION_GAP_S):
        a, b = max(a, t0), min(b, t1)
        if b <= a:
            continue
        if pieces and b - pieces[-1][0] <= max_len:
            pieces[-1] = (pieces[-1][0], b)
        else:
            pieces.append((a, b))
    return pieces or [stretch]


def transcribe_clips(
    model: Any, audio: np.ndarray, language: str, clips: list[tuple[float, float]]
) -> list[dict[str, Any]]:
    """Words heard in each clip (start, end seconds), each clip transcribed on its own (no
    conditioning on the text before it)."""

    def work(group: list[tuple[float, float]], _main: bool) -> list[dict[str, Any]]:
        segments, _ = model.transcribe(
            audio,
            language=language,
            word_timestamps=True,
            vad_filter=False,
            clip_timestamps=[x for clip in group for x in clip],
            condition_on_previous_text=False,
            temperature=0.0,
            beam_size=BEAM_SIZE,
            max_new_tokens=GAP_MAX_TOKENS,
        )
        return [w for segment in segments for w in _segment_words(segment)]

    lanes = min(replicas(model), len(clips))  # one transcription per replica, each over its share of clips
    groups = [sorted(clips)[j::lanes] for j in range(lanes)]
    heard = [w for words in in_lanes(model, groups, work) for w in words]
    return join_elisions(sorted(heard, key=lambda w: w["start"]))


def join_elisions(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Glue a heard word that begins with an apostrophe to the word before it: Whisper often
    writes French and Italian elisions as two words ("j" + "'ai", "c" + "'est"), which would
    neither pair with the lyrics' "j'ai" nor read right in a transcription."""
    out: list[dict[str, Any]] = []
    for w in words:
        prev = out[-1] if out else None
        if prev and w["text"][:1] in "'’" and prev["text"][-1:].isalpha() and w["start"] - prev["end"] < 0.5:
            out[-1] = {"text": prev["text"] + w["text"], "start": prev["start"], "end": w["end"],
                       "p": min(prev["p"], w["p"])}
        else:
            out.append(w)
    return out


def drop_squeezed(words: list[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
    """Remove decoding loops: runs of 3+ words squeezed into no time (Whisper repeating itself
    at the end of a window, which greedy decoding without temperature fallback can do) and words
    placed at or after the end of the audio."""
    short = [w["end"] - w["start"] < SQUEEZED_WORD_S or w["start"] >= duration - 0.01 for w in words]
    keep = [True] * len(words)
    i = 0
    while i < len(words):
        j = i
        while j < len(words) and short[j]:
            j += 1
        if j - i >= 3 or (j > i and words[i]["start"] >= duration - 0.01):
            keep[i:j] = [False] * (j - i)
        i = max(j, i + 1)
    return [w for w, k in zip(words, keep, strict=True) if k]


def detect_language(model: Any, audio: np.ndarray) -> str:
    if not getattr(model.model, "is_multilingual", True):
        return "en"
    language, _, _ = model.detect_language(audio, vad_filter=True)
    return str(language)
