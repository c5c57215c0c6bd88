"""Lyrics transcription and forced alignment with faster-whisper.

Input is the vocals stem (any rate / channel count); it is resampled here to 16 kHz mono.
Times in the results are seconds from the start of the input.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from app.audio import alignment, word_matching
from app.audio.lyrics import normalize_word, parse_stanzas
from app.audio.types import Line, LyricsTiming, ProgressCallback, Waveform, Word, no_progress

SAMPLE_RATE = 16000
LINE_GAP_S = 0.6
"""A pause longer than this (seconds) between two heard words starts a new line."""
ENERGY_RANGE_DB = 20.0
FAINT_RANGE_DB = 40.0
"""Faint voice activity: within this range (dB) of the loud frames and 20 dB above the stem's floor."""
SQUEEZED_WORD_S = 0.03
MAX_LINE_WORDS = 10
MIN_LINE_WORDS = 3
MAX_LINE_CHARS = 48
DRIFT_S = 1.2
"""An aligned word further than this (seconds) from its anchor-based estimate is a drift suspect: aligned
again between the words kept, or placed from them (1.5 s before drifted runs were aligned again;
with that, 1.2 s was the best of 0.6-1.5 s on the 12 evaluation songs)."""
CONFIDENT_P = 0.9
"""An aligned word at this probability or more is not placed again for being far from its estimate
(measured on the 12 evaluation songs: of the 9 such words, placing them again moved 7 away from
the reference and none closer; an estimate far from any anchor is the weaker of the two)."""
STRETCHED_S = 1.0
"""A line's first word aligned longer than this (and four times its need) starts no earlier than
its estimate (see :func:`_stretched_line_starts`)."""
PILED_S = 0.02
UNMATCHED_WORDS = 4
"""Heard words in a row that no given word explains before they are reported as unmatched singing."""
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
MIN_ANCHOR_P = 0.05
"""A heard word the decoder gave a lower probability than this does not anchor a given word (a
word decoded with no time of its own at the end of a window, "Right" at p 0.002, paired with the
wrong repetition of a chorus line)."""
AGREED_S = 0.25
"""A word heard and window-aligned at onsets this close (seconds) has two timings that agree."""
CONFIDENCE = {"agreed": 0.97, "one timing": 0.88, "aligned again": 0.71}
"""A known-lyrics word's confidence by the evidence for its time: the share of such words within
0.3 s of the reference on the 12 evaluation songs (pooled, 3140 words). "agreed": heard and
window-aligned within AGREED_S (2004 words; 97.2% on the English songs, 96.0% on the others);
"one timing": only one of the two, or the two apart (985 words). A word placed from its
neighbours has no timing of its own: confidence 0 (151 words, 66.9% within 0.3 s). "aligned again":
a drifted word timed by a window of its own between the words kept (96 words, 70.8%). Whisper's
token probability was measured and left out: aligned words at p >= 0.5 were off more often than
those below (14.6% against 10.5% more than 0.3 s off)."""
REVIEW_BELOW_ALIGNED = 0.7
"""A known-lyrics line whose mean confidence is below this needs review: a line of four words with
one placed and three of one timing is flagged, one with a placed word among three whose timings
agree is not. Measured on the evaluation songs: 7.8% of the lines flagged, holding 12 of the 20
lines with a word more than 1 s off and 78 of the 229 words more than 0.3 s off; the former flag
(mean token probability below 0.25) flagged 5% of the lines and held 7 of those 20 and 39 words."""
REALIGN_MIN_RUN = 2
"""Drift: a run of at least this many words between two kept words, holding a suspect, is aligned
again in a window of its own (see :func:`_realign_runs`)."""
REALIGN_PAD_S = 0.2
"""Seconds of audio a re-alignment window takes beyond its bounding words' onsets."""
REALIGN_SLACK = 2.0
REALIGN_EXTRA_S = 2.0
"""A run is aligned again only where its stretch is at most REALIGN_SLACK times what its words need
plus REALIGN_EXTRA_S seconds: over a long instrumental or vocalise stretch the window smears them."""
MIN_REALIGNED_S = 0.05
"""A re-aligned word shorter than this (seconds) was skipped over by its window: it is placed instead."""
ONSET_BIAS_S = {"tiny.en": 0.11, "base": -0.10}
"""How late (seconds) each model places word onsets; subtracted from every aligned time. The median
signed onset error of the words within 1 s of the reference on the evaluation songs (tiny.en:
0.114 s on the 7 English songs, 0.10 s on an earlier host; base: within 0.01 s of -0.10 s)."""


def to_16k_mono(wf: Waveform) -> np.ndarray:
    """The waveform as float32 mono at 16 kHz (channel mean, FFmpeg resampler, no added delay)."""
    from app.audio.io import resample

    mono = wf.mono()[None, :]
    return np.ascontiguousarray(resample(mono, wf.sample_rate, SAMPLE_RATE)[0], dtype=np.float32)


def model_name(model: Any) -> str:
    """The catalog name of a loaded model (set by ``load_whisper``), else ``"whisper"``."""
    return str(getattr(model, "catalog_name", "whisper"))


def _onset_bias(model: Any) -> float:
    return ONSET_BIAS_S.get(model_name(model), 0.0)


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
    half starts without context; pooled onset error 0.128 s against 0.124 s, see README).
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
    for segment in segments:  # a loop is dropped whole: the second pass hears its stretch again
        words += [] if _looped(segment.text) else _segment_words(segment)
        on_progress(share * min(1.0, segment.end / duration), stage)
        if on_segment is not None:
            on_segment(words, segment.end, info.language)
    return _drop_squeezed(_join_elisions(words), duration), info.language


def _replicas(model: Any) -> int:
    return max(1, int(getattr(model, "parallel", 1)))


def _in_lanes(model: Any, items: Sequence[Any], work: Callable[[Any, bool], Any]) -> list[Any]:
    """``work(item, main)`` for every item, spread round-robin over the model's replicas.

    The first lane runs in this thread (``main`` True: progress and cancellation belong there);
    the others run in threads that stop taking items once this one raises. Results in item order.
    """
    lanes = min(_replicas(model), len(items))
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
    speech: alignment.SpeechMap,
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
    heard: list[dict[str, Any]], speech: alignment.SpeechMap, duration: float, before: float = float("inf")
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
    speech: alignment.SpeechMap,
    lane: _GapLane | None = None,
) -> list[dict[str, Any]]:
    """Heard words plus those of a second pass over the sung stretches the first pass skipped.

    Whisper's own voice detector (Silero on its default settings) drops quiet or sustained
    singing, and conditioning on earlier text can make it stop early; the vocals stem's activity
    map is more inclusive. Each stretch is transcribed on its own (no conditioning: a clip of
    vocalise otherwise gets the previous chorus hallucinated into it). ``lane``: the clips are
    transcribed there (see :func:`_heard_and_gaps`), else spread over the model's replicas.
    """
    duration = len(audio) / SAMPLE_RATE
    gaps, clips = _gap_clips(heard, speech, duration)
    if lane is not None:
        done = lane.finish(clips)
        found = [w for clip in clips if clip in done for w in done[clip]]
        found += _transcribe_clips(model, audio, language, [clip for clip in clips if clip not in done])
    elif gaps:
        found = _transcribe_clips(model, audio, language, clips)
    else:
        return heard
    found = _join_elisions(sorted(found, key=lambda w: w["start"]))
    extra = [w for w in found if any(a <= w["start"] < b for a, b in gaps)]  # words in the padding were heard
    return sorted(heard + _drop_squeezed(extra, duration), key=lambda w: w["start"])


def _heard_and_gaps(
    model: Any,
    audio: np.ndarray,
    language: str | None,
    speech: alignment.SpeechMap,
    on_progress: ProgressCallback,
    stage: str,
    share: float,
) -> tuple[list[dict[str, Any]], str]:
    """The first pass (:func:`_heard_words`) and the second (:func:`_fill_gaps`): (words, language).

    The first pass is one sequential decode on one replica. With more replicas, the sung
    stretches it has left behind unheard are transcribed on a spare one while it goes on, and
    what is left when it ends is shared by both: each clip is decoded on its own, so the words
    are the same as one pass after the other gives (checked on the 12 evaluation songs).
    """
    if _replicas(model) < 2:
        heard, detected = _heard_words(model, audio, language, on_progress, stage, share)
        return _fill_gaps(model, audio, language or detected, heard, speech), detected
    duration = len(audio) / SAMPLE_RATE
    lane: _GapLane | None = None

    def offer(words: list[dict[str, Any]], frontier: float, detected: str) -> None:
        nonlocal lane
        lane = lane or _GapLane(model, audio, language or detected)
        # later words start after the frontier: the stretches well behind it are settled
        heard = _drop_squeezed(_join_elisions(words), duration)
        lane.offer(_gap_clips(heard, speech, duration, before=frontier - GAP_SETTLED_S)[1])

    try:
        heard, detected = _heard_words(model, audio, language, on_progress, stage, share, offer)
    except BaseException:
        if lane is not None:
            lane.close()
        raise
    return _fill_gaps(model, audio, language or detected, heard, speech, lane), detected


class _GapLane:
    """Gap clips transcribed (:func:`_transcribe_clips`, one at a time) by a thread on a spare
    replica as they are offered; :meth:`finish` has the calling thread share the rest. Only an
    optimisation: a clip that fails here is transcribed again by the caller, which reports it."""

    def __init__(self, model: Any, audio: np.ndarray, language: str) -> None:
        self.model, self.audio, self.language = model, audio, language
        self.queue: queue.SimpleQueue[tuple[float, float] | None] = queue.SimpleQueue()
        self.offered: set[tuple[float, float]] = set()
        self.done: dict[tuple[float, float], list[dict[str, Any]]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="gap-pass", daemon=True)
        self.thread.start()

    def offer(self, clips: list[tuple[float, float]]) -> None:
        for clip in clips:
            if clip not in self.offered:
                self.offered.add(clip)
                self.queue.put(clip)

    def _transcribe(self, clip: tuple[float, float]) -> None:
        self.done[clip] = _transcribe_clips(self.model, self.audio, self.language, [clip])

    def _run(self) -> None:
        while (clip := self.queue.get()) is not None and not self.stop.is_set():
            try:
                self._transcribe(clip)
            except Exception:  # left to the caller
                return

    def finish(self, clips: list[tuple[float, float]]) -> dict[tuple[float, float], list[dict[str, Any]]]:
        """Offer ``clips`` and transcribe what is still queued here too, side by side with the
        thread; return every clip done (clip -> words)."""
        self.offer(clips)
        try:
            while True:
                try:
                    clip = self.queue.get_nowait()
                except queue.Empty:
                    break
                if clip is not None:
                    self._transcribe(clip)
        finally:
            self.close()
        return self.done

    def close(self) -> None:
        """Stop the thread after the clip in progress."""
        self.stop.set()
        self.queue.put(None)
        self.thread.join()


def _split_stretch(
    stretch: tuple[float, float], speech: alignment.SpeechMap, max_len: float = GAP_CLIP_S
) -> list[tuple[float, float]]:
    """A stretch cut at its pauses into pieces of at most ``max_len`` seconds where it can be
    (a piece is never cut inside a sung stretch). Whisper decodes a short clip whole; a long
    one it may cut off after ``max_new_tokens`` and time the rest of its words wrongly."""
    t0, t1 = stretch
    if t1 - t0 <= max_len:
        return [stretch]
    pieces: list[tuple[float, float]] = []
    for a, b in speech.regions(alignment.REGION_GAP_S):
        a, b = max(a, t0), min(b, t1)
        if b <= a:
            continue
        if pieces and b - pieces[-1][0] <= max_len:
            pieces[-1] = (pieces[-1][0], b)
        else:
            pieces.append((a, b))
    return pieces or [stretch]


def _transcribe_clips(
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

    lanes = min(_replicas(model), len(clips))  # one transcription per replica, each over its share of clips
    groups = [sorted(clips)[j::lanes] for j in range(lanes)]
    heard = [w for words in _in_lanes(model, groups, work) for w in words]
    return _join_elisions(sorted(heard, key=lambda w: w["start"]))


def _join_elisions(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def _drop_squeezed(words: list[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
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


def _lines_from_words(words: list[Word]) -> list[Line]:
    """Break heard words into lines: at pauses > LINE_GAP_S, after sentence punctuation (once a
    line has MIN_LINE_WORDS), and at the maximum line length (MAX_LINE_WORDS / MAX_LINE_CHARS)."""
    lines: list[list[Word]] = []
    for word in words:
        current = lines[-1] if lines else None
        if (
            current is None
            or word.start - current[-1].end > LINE_GAP_S
            or (
                len(current) >= MIN_LINE_WORDS
                and current[-1].text.endswith((".", "?", "!", "。", "？", "！"))
            )
            or len(current) >= MAX_LINE_WORDS
            or sum(len(w.text) + 1 for w in current) + len(word.text) > MAX_LINE_CHARS
        ):
            lines.append([word])
        else:
            current.append(word)
    return [Line(" ".join(w.text for w in ws), ws[0].start, ws[-1].end, ws) for ws in lines]


def transcribe(
    wf: Waveform, model: Any, language: str | None = None, on_progress: ProgressCallback = no_progress
) -> LyricsTiming:
    """Transcribe sung lyrics from a vocals stem into timed lines and words.

    ``language`` is an ISO 639-1 code or None (detected; English-only models assume "en").
    Progress goes to ``on_progress(fraction, "transcribing")``; a JobCanceled raised there stops.
    Times are seconds, corrected by the model's onset bias; onsets in silence and word ends that
    run into silence (voice activity of the stem) are pulled in before lines are formed.
    """
    audio = to_16k_mono(wf)
    if not getattr(model.model, "is_multilingual", True):
        language = "en"
    speech = speech_map(audio)
    heard, detected = _heard_and_gaps(model, audio, language, speech, on_progress, "transcribing", 0.9)
    bias = _onset_bias(model)
    times = [(max(0.0, w["start"] - bias), max(0.0, w["end"] - bias)) for w in heard]
    times = alignment.snap_to_speech(times, speech) if heard else []
    words = [
        Word(w["text"], float(s), float(e), float(w["p"])) for w, (s, e) in zip(heard, times, strict=True)
    ]
    on_progress(1.0, "transcribing")
    return LyricsTiming(language or detected, _lines_from_words(words), {"transcription": model_name(model)})


def _tokenizer(model: Any, language: str) -> Any:
    from faster_whisper.tokenizer import Tokenizer

    multilingual = model.model.is_multilingual
    return Tokenizer(
        model.hf_tokenizer, multilingual, task="transcribe", language=language if multilingual else None
    )


def _align_window(
    model: Any, tokenizer: Any, audio: np.ndarray, t0: float, t1: float, words: list[str]
) -> list[tuple[float, float, float]]:
    """Force-align ``words`` to audio[t0:t1] (at most 30 s): (start, end, probability) per word."""
    chunk = audio[int(t0 * SAMPLE_RATE) : int(t1 * SAMPLE_RATE)]
    features = model.feature_extractor(chunk)[..., :-1]
    num_frames = min(features.shape[-1], 3000)
    from faster_whisper.audio import pad_or_trim

    encoder_output = model.encode(pad_or_trim(features))
    tokens_per_word = [tokenizer.encode(" " + w) for w in words]
    text_tokens = [t for toks in tokens_per_word for t in toks]
    result = model.model.align(
        encoder_output, tokenizer.sot_sequence, [text_tokens], num_frames, median_filter_width=7
    )[0]
    text_idx = np.array([p[0] for p in result.alignments])
    time_idx = np.array([p[1] for p in result.alignments])
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    jump_times = time_idx[jumps] / model.tokens_per_second
    probs = np.asarray(result.text_token_probs, dtype=float)
    bounds = np.concatenate([[0], np.cumsum([len(t) for t in tokens_per_word])])
    out = []
    for k in range(len(words)):
        a, b = int(bounds[k]), int(bounds[k + 1])
        start = float(jump_times[min(a, len(jump_times) - 1)])
        end = float(jump_times[min(b, len(jump_times) - 1)])
        p = float(probs[a:b].mean()) if b > a and len(probs) >= b else 0.0
        out.append((t0 + start, t0 + max(end, start), p))
    return out


def speech_map(audio: np.ndarray) -> alignment.SpeechMap:
    """Voice activity of 16 kHz vocals, per 32 ms frame.

    Silero VAD (bundled with faster-whisper) misses some singing (vocalises, soft or backing
    parts), so a frame also counts as active when its level is within ENERGY_RANGE_DB of the
    stem's loud frames (95th percentile): on a separated vocals stem the instruments are gone.
    """
    from faster_whisper.vad import get_vad_model

    frame = 512
    n = len(audio) // frame + 1
    padded = np.pad(audio, (0, n * frame - len(audio)))
    silero = np.asarray(get_vad_model()(padded), dtype=np.float32).reshape(-1)[:n] >= 0.5
    level = 10 * np.log10((padded.reshape(n, frame) ** 2).mean(axis=1) + 1e-12)
    loud = level >= np.percentile(level, 95) - ENERGY_RANGE_DB
    faint = (level >= np.percentile(level, 95) - FAINT_RANGE_DB) & (level >= np.percentile(level, 10) + 20.0)
    return alignment.SpeechMap(loud | silero, loud, faint)


def _anchors(
    given: list[str], heard: list[dict[str, Any]], duration: float, speech: alignment.SpeechMap | None = None
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


def _align_windows(
    model: Any,
    language: str,
    audio: np.ndarray,
    lines: list[list[str]],
    spans: list[tuple[float, float]],
    todo: list[bool],
    on_progress: ProgressCallback,
) -> dict[int, tuple[float, float, float]]:
    """Force-align the lines marked in ``todo`` in windows of <= 30 s planned around their estimated
    ``spans`` (each run of consecutive lines on its own); word index -> (start, end, probability)."""
    first = np.cumsum([0] + [len(line) for line in lines])
    runs: list[tuple[int, int]] = []
    for k, flag in enumerate(todo):
        if flag and runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1)
        elif flag:
            runs.append((k, k + 1))
    windows = [
        (t0, t1, a + lo, b + lo)
        for lo, hi in runs
        for t0, t1, a, b in alignment.plan_windows(
            spans[lo:hi], len(audio) / SAMPLE_RATE, line_words=[len(ln) for ln in lines[lo:hi]]
        )
    ]
    tokenizer = _tokenizer(model, language) if windows else None

    def work(window: tuple[float, float, int, int], main: bool) -> list[tuple[float, float, float]]:
        t0, t1, a, b = window
        if main:
            on_progress(0.5 + 0.5 * windows.index(window) / len(windows), "aligning")
        return _align_window(model, tokenizer, audio, t0, t1, [w for line in lines[a:b] for w in line])

    timed: dict[int, tuple[float, float, float]] = {}
    for (_, _, a, _), done in zip(windows, _in_lanes(model, windows, work), strict=True):
        timed.update(enumerate(done, start=int(first[a])))
    return timed


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
    drift is caught: an aligned word far from its estimate, piled onto its neighbour or cut off
    from its line is placed again from the words kept. Onsets are corrected for the model's bias
    and moved out of silences detected on the vocals.

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
    bias = _onset_bias(model)
    line_of = [k for k, line in enumerate(lines) for _ in line]
    first = np.cumsum([0] + [len(line) for line in lines])
    weights = [len(normalize_word(w)) + 1 for w in given]
    stanza_words = {int(first[k]) for k in stanza_starts}
    breaks = [i in stanza_words for i in range(len(given))]
    speech = speech_map(audio)
    prior, prior_flags = _previous_words(previous, lines) if previous is not None else ({}, {})
    fixed = prior if keep_unchanged else {}
    kept_flags = prior_flags if keep_unchanged else {}  # an unchanged line keeps its review flag
    heard_at: dict[int, float] = {}  # onsets of the heard words that anchor given words
    heard: list[dict[str, Any]] = []
    if previous is not None and (prior or not keep_unchanged):
        language = language or previous.language or _detect_language(model, audio)
        anchor_times = {i: (s + bias, e + bias) for i, (s, e, _) in fixed.items()}
        guide = {i: (s + bias, e + bias) for i, (s, e, _) in prior.items()}
        if keep_unchanged:  # the changed lines' stretches (between kept words) are transcribed alone
            heard_in = _heard_between(model, audio, language, anchor_times, len(given))
            found = {i: w for i, w in _anchors(given, heard_in, len(audio) / SAMPLE_RATE).items() if i not in fixed}
            guide = anchor_times | {i: (w["start"], w["end"]) for i, w in found.items()}
            heard_at = {i: float(w["start"]) for i, w in found.items()}
        on_progress(0.5, "aligning")
    else:
        heard, detected = _heard_and_gaps(model, audio, language, speech, on_progress, "transcribing", 0.5)
        language = language or detected
        anchors = _anchors(given, heard, len(audio) / SAMPLE_RATE, speech)
        for i in alignment.line_outliers({i: w["start"] for i, w in anchors.items()}, line_of):
            del anchors[i]
        anchor_times = guide = {i: (w["start"], w["end"]) for i, w in anchors.items()}
        heard_at = {i: float(w["start"]) for i, w in anchors.items()}
    texts = [normalize_word(w) for w in given]
    estimates = alignment.estimate_times(weights, line_of, guide, speech, texts=texts, breaks=breaks)
    spans = [
        _sung_span(estimates[first[k] : first[k + 1]], speech) if k + 1 in stanza_starts
        else (estimates[first[k]][0], estimates[first[k + 1] - 1][1])
        for k in range(len(lines))
    ]
    todo = [any(i not in fixed for i in range(first[k], first[k + 1])) for k in range(len(lines))]

    timed = _align_windows(model, language, audio, lines, spans, todo, on_progress)
    aligned = [timed[i][:2] if i in timed else anchor_times[i] for i in range(len(given))]
    wrong = alignment.wrong_repeats(aligned, anchor_times, texts) if heard else set()
    if wrong:  # heard words paired with the wrong repetition give way to the window alignment
        anchor_times = guide = {i: t for i, t in anchor_times.items() if i not in wrong}
        heard_at = {i: t for i, t in heard_at.items() if i not in wrong}
        estimates = alignment.estimate_times(weights, line_of, guide, speech, texts=texts, breaks=breaks)
    merged, source = alignment.reconcile(aligned, anchor_times, weights, line_of, speech, breaks=breaks)
    confident = {i for i, (_, _, p) in timed.items() if p >= CONFIDENT_P}
    suspects = _suspects(merged, source, estimates, line_of, confident) - set(fixed)
    realigned: set[int] = set()
    if suspects:  # drift: the doubtful words are aligned again between the words kept, else placed from them
        kept = {i: t for i, t in enumerate(merged) if i not in suspects and source[i] != "estimated"}
        again = _realign_runs(
            model, language, audio, given, weights, kept, suspects, set(anchor_times) | set(fixed), speech
        )
        realigned = set(again) - set(kept)  # the others are kept words given back the time they held
        source = ["aligned" if i in realigned else src for i, src in enumerate(source)]
        kept |= again
        merged = alignment.estimate_times(weights, line_of, kept, speech, texts=texts, breaks=breaks)
        source = [src if i in kept else "estimated" for i, src in enumerate(source)]
    times = [(max(0.0, s - bias), max(0.0, e - bias)) for s, e in merged]
    times = alignment.skip_leading_pauses(times, speech, weights=weights, line_of=line_of)
    times = alignment.snap_to_speech(times, speech)
    for i in _stretched_line_starts(source, set(anchor_times), timed, line_of, weights):
        start = max(times[i][0], estimates[i][0] - bias)  # not before the estimate, packed before its line
        times[i] = (start, max(times[i][1], start))
    times = alignment.monotonic(_between_kept(times, fixed))
    confidence = _confidences(source, timed, heard_at, fixed, realigned)
    review = [
        kept_flags[k] if k in kept_flags
        else float(np.mean(confidence[first[k] : first[k + 1]])) < REVIEW_BELOW_ALIGNED
        for k in range(len(lines))
    ]
    on_progress(1.0, "aligning")
    return LyricsTiming(language, _timed_lines(lines, times, confidence, review), {"alignment": model_name(model)},
                        _unmatched(heard, times, bias, previous.unmatched if previous and keep_unchanged else ()))


def _realign_runs(
    model: Any,
    language: str,
    audio: np.ndarray,
    given: list[str],
    weights: list[float],
    kept: dict[int, tuple[float, float]],
    suspects: set[int],
    anchored: set[int],
    speech: alignment.SpeechMap,
) -> dict[int, tuple[float, float]]:
    """Each run of words between two kept words that holds a drift suspect, aligned again in a
    window of its own, from the kept word before it (aligned with the run, so a word the first
    window held over the run's singing gets its own end) to the kept word after it; a run before
    the first kept word or after the last one, from or to the end of the singing within reach.
    A run whose stretch is far longer than its words need (REALIGN_SLACK, REALIGN_EXTRA_S:
    instrumental or vocalise the window would smear them over) is left to the estimate, and so
    is a run longer than one window. The windows are spread over the model's replicas. Returns
    word index -> (start, end) for the words that came out in order between their neighbours and
    not piled, and for a word held over the run, its own end."""
    if not kept:
        return {}
    order = sorted(kept)
    plans: list[tuple[int | None, int | None, float, float, float]] = []  # (a, b, t0, t1, first onset)
    for a, b in [(None, order[0]), *zip(order, order[1:], strict=False), (order[-1], None)]:
        lo, hi = 0 if a is None else a + 1, len(given) if b is None else b
        if hi - lo < REALIGN_MIN_RUN or not any(i in suspects for i in range(lo, hi)):
            continue
        need = float(np.sum(weights[lo if a is None else a : hi])) * alignment.SECONDS_PER_WEIGHT
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
    tokenizer = _tokenizer(model, language) if plans else None

    def work(plan: tuple[int | None, int | None, float, float, float], _main: bool) -> list[tuple[float, float, float]]:
        a, b, t0, t1, _ = plan
        first, hi = 0 if a is None else a, len(given) if b is None else b
        return _align_window(model, tokenizer, audio, t0, t1, given[first:hi])

    out: dict[int, tuple[float, float]] = {}
    for (a, b, t0, t1, onset), done in zip(plans, _in_lanes(model, plans, work), strict=True):
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
        and end - start > max(STRETCHED_S, 4 * weights[i] * alignment.SECONDS_PER_WEIGHT)
    }


def _sung_span(words: list[tuple[float, float]], speech: alignment.SpeechMap) -> tuple[float, float]:
    """(start, end) of a line that ends a stanza, from its words' estimates: it ends where the
    singing of its last word stops (an estimated word runs on to the next word's onset, over the
    pause between stanzas, which would join them in one alignment window)."""
    start, end = words[-1]
    return words[0][0], min(end, max(speech.run_end(start), start + alignment.VAD_FRAME_S))


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


def _heard_between(
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
    return _drop_squeezed(_transcribe_clips(model, audio, language, stretches), duration) if stretches else []


def _between_kept(
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


def _previous_words(
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


def _detect_language(model: Any, audio: np.ndarray) -> str:
    if not getattr(model.model, "is_multilingual", True):
        return "en"
    language, _, _ = model.detect_language(audio, vad_filter=True)
    return str(language)


def _suspects(
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
    rest of their line."""
    out = {
        i
        for i, src in enumerate(source)
        if src == "aligned" and abs(times[i][0] - estimates[i][0]) > DRIFT_S and i not in confident
    }
    out |= {
        i
        for i in range(len(times))
        if source[i] == "aligned"
        and ((i > 0 and times[i][0] - times[i - 1][0] < PILED_S) or times[i][1] - times[i][0] < PILED_S)
    }
    out |= alignment.line_outliers({i: t[0] for i, t in enumerate(times)}, line_of)
    # a line mostly gone wrong is placed again whole: its remaining words would hold the rest back
    size = np.bincount(line_of)
    bad = np.bincount([line_of[i] for i in out], minlength=len(size)) if out else np.zeros(len(size))
    out |= {i for i, k in enumerate(line_of) if 2 * bad[k] >= size[k] > 1}
    return {i for i in out if source[i] != "heard"}


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
