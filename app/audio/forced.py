"""Forced alignment of known words with Whisper's cross-attention, in windows of at most 30 s."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.audio import alignment
from app.audio.heard import in_lanes
from app.audio.types import ProgressCallback
from app.audio.vocals import SAMPLE_RATE

WINDOW_PAD_S = 5.0
"""Padding (seconds) a forced-alignment window is encoded with, after its own audio, instead of
faster-whisper's padding to 30 s. The encoder's time grows faster than its input (base, one core:
0.21 s for 15 s, 0.31 s for 20 s, 0.87 s for 30 s), and the text is given, so only the
cross-attention matters. Measured on the 12 evaluation songs at 0, 3.7 and 8.9 s of silence before
them (benchmarks/ALIGNMENT.md, step 5): 8853 words within 0.3 s against 8867 padded to 30 s, 78
more than 1 s off both ways, at 0.56x of the windows' time; with no padding at all, 91 off."""


def make_tokenizer(model: Any, language: str) -> Any:
    from faster_whisper.tokenizer import Tokenizer

    multilingual = model.model.is_multilingual
    return Tokenizer(
        model.hf_tokenizer, multilingual, task="transcribe", language=language if multilingual else None
    )


def align_window(
    model: Any,
    tokenizer: Any,
    audio: np.ndarray,
    t0: float,
    t1: float,
    words: list[str],
    pad_s: float = WINDOW_PAD_S,
) -> list[tuple[float, float, float]]:
    """Force-align ``words`` to audio[t0:t1] (at most 30 s): (start, end, probability) per word.

    The window is encoded with ``pad_s`` seconds of padding after it (up to Whisper's 30 s input)."""
    chunk = audio[int(t0 * SAMPLE_RATE) : int(t1 * SAMPLE_RATE)]
    features = model.feature_extractor(chunk)[..., :-1]
    full = model.feature_extractor.nb_max_frames  # Whisper's 30 s input
    num_frames = max(2, min(features.shape[-1] + features.shape[-1] % 2, full))  # the encoder halves them
    padded = min(full, num_frames + 2 * round(pad_s * model.frames_per_second / 2))
    from faster_whisper.audio import pad_or_trim

    encoder_output = model.encode(np.ascontiguousarray(pad_or_trim(features, padded)))
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


Window = tuple[float, float, int, int]
"""A forced-alignment window: (start s, end s, first line, end line exclusive)."""
WindowKey = tuple[float, float, tuple[str, ...]]
"""What a window's alignment depends on besides the model and language: (start, end, words)."""


def plan_line_windows(
    lines: list[list[str]], spans: list[tuple[float, float]], todo: list[bool], duration: float
) -> list[Window]:
    """The windows of <= 30 s that align the lines marked in ``todo``, planned around their
    estimated ``spans`` (each run of consecutive lines on its own)."""
    runs: list[tuple[int, int]] = []
    for k, flag in enumerate(todo):
        if flag and runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1)
        elif flag:
            runs.append((k, k + 1))
    return [
        (t0, t1, a + lo, b + lo)
        for lo, hi in runs
        for t0, t1, a, b in alignment.plan_windows(
            spans[lo:hi], duration, line_words=[len(ln) for ln in lines[lo:hi]]
        )
    ]


def window_key(lines: list[list[str]], window: Window) -> WindowKey:
    t0, t1, a, b = window
    return t0, t1, tuple(w for line in lines[a:b] for w in line)


def align_windows(
    model: Any,
    language: str,
    audio: np.ndarray,
    lines: list[list[str]],
    windows: list[Window],
    on_progress: ProgressCallback,
    done: dict[WindowKey, list[tuple[float, float, float]]] | None = None,
) -> dict[int, tuple[float, float, float]]:
    """Force-align the lines of each window (see :func:`plan_line_windows`); word index ->
    (start, end, probability). ``done``: windows already aligned (by :func:`window_key`), taken
    as they are."""
    first = np.cumsum([0] + [len(line) for line in lines])
    keys = [window_key(lines, w) for w in windows]
    done = done or {}
    todo = [key for key in dict.fromkeys(keys) if key not in done]
    tokenizer = make_tokenizer(model, language) if todo else None

    def work(key: WindowKey, main: bool) -> list[tuple[float, float, float]]:
        if main:
            on_progress(0.5 + 0.45 * todo.index(key) / len(todo), "aligning")
        return align_window(model, tokenizer, audio, key[0], key[1], list(key[2]))

    aligned = done | dict(zip(todo, in_lanes(model, todo, work), strict=True))
    timed: dict[int, tuple[float, float, float]] = {}
    for window, key in zip(windows, keys, strict=True):
        timed.update(enumerate(aligned[key], start=int(first[window[2]])))
    return timed
