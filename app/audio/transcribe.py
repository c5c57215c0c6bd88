"""Lyrics transcription (no lyrics given) with faster-whisper: timed words broken into lines.

Input is the vocals stem (any rate / channel count); it is resampled here to 16 kHz mono.
Times in the results are seconds from the start of the input. Known lyrics are aligned by
:func:`app.audio.known_lyrics.align`.
"""

from __future__ import annotations

from typing import Any

from app.audio import alignment
from app.audio.heard import heard_and_gaps
from app.audio.types import Line, LyricsTiming, ProgressCallback, Waveform, Word, no_progress
from app.audio.vocals import speech_map, to_16k_mono
from app.audio.whisper_models import model_name, onset_bias

LINE_GAP_S = 0.6
"""A pause longer than this (seconds) between two heard words starts a new line."""
MAX_LINE_WORDS = 10
MIN_LINE_WORDS = 3
MAX_LINE_CHARS = 48


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
    run into silence (voice activity of the stem) are pulled in before lines are formed, and then
    word ends follow the voice (:func:`app.audio.alignment.voiced_ends`).
    """
    audio = to_16k_mono(wf)
    if not getattr(model.model, "is_multilingual", True):
        language = "en"
    speech = speech_map(audio)
    heard, detected = heard_and_gaps(model, audio, language, speech, on_progress, "transcribing", 0.9)
    bias = onset_bias(model)
    times = [(max(0.0, w["start"] - bias), max(0.0, w["end"] - bias)) for w in heard]
    times = alignment.snap_to_speech(times, speech) if heard else []
    words = [
        Word(w["text"], float(s), float(e), float(w["p"])) for w, (s, e) in zip(heard, times, strict=True)
    ]
    lines = _lines_from_words(words)  # broken at the pauses heard, before the ends follow the voice
    for word, (_, end) in zip(words, alignment.voiced_ends([(w.start, w.end) for w in words], speech), strict=True):
        word.end = end
    for line in lines:
        line.end = line.words[-1].end
    on_progress(1.0, "transcribing")
    return LyricsTiming(language or detected, lines, {"transcription": model_name(model)})
