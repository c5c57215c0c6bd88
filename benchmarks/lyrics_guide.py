"""Experiment: the lyrics guide, a first pass for known lyrics without free transcription, side by
side with the product's first pass (Whisper transcribing the song, beam 5).

The guide force-aligns the given lyrics in order, one window after another. Each window starts at
the voice after the last word placed and ends 30 s later or at the first break in the voice (a
silence of at least ``BREAK_S``), whichever comes first. It is given more words than its sung time
can hold; cross-attention alignment spreads the text over the whole window, so what the window
cannot hold piles up at its end. Kept: the words aligned with a mean token probability of at
least ``SURE_P`` that start before the window's last ``TAIL_S`` (``END_S`` when the window ends
at a break); the words between them are passed over, and the next window starts where the last
kept word ends. A window that keeps nothing is skipped. The kept words then stand in for the
heard words of ``app.audio.heard.heard_and_gaps``: the rest of ``known_lyrics.align`` (pairing,
placement, line windows, drift check, onsets and ends) is the product's code, unchanged.

For each song: the product's ``align`` and the same with the guide, one after the other in one
process; prints the onset error of both (mean, within 0.3 s, more than 1 s off), their time as a
share of the song's duration, the time ratio, and the share of the lyrics' words the guide kept.
Findings: benchmarks/ALIGNMENT.md, "The lyrics guide (experiment, not adopted)".

    .venv/bin/python benchmarks/lyrics_guide.py [--songs SUBSTRING] [--stems-dir DIR] [--models-dir DIR]
        [--max-passed N] [--pass-lines] [--without-vocalises]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

WINDOW_S = 30.0
BREAK_S = 2.0  # a silence this long ends a window: alignment would stretch the words before it over it
TAIL_S = 4.0  # words starting this close to the end of a window that does not end at a break: next window
END_S = 0.4  # the same for a window that ends at a break (text it could not hold piles up there)
SURE_P = 0.3  # only words aligned with at least this mean token probability are kept
OVERFILL = 1.5  # words given: their sung time (0.08 s per weight) up to 1.5x the voiced time + 2 s
MAX_TOKENS = 150
LEAD_S = 0.3  # a window starts this long before the voice it is planned from


def lyrics_guide(
    model: Any,
    audio: Any,
    words: list[str],
    speech: Any,
    language: str,
    line_ends: list[int],
    max_passed: int | None = None,
    pass_lines: bool = False,
    without_vocalises: bool = False,
) -> list[dict[str, Any]]:
    """The given ``words`` force-aligned in order, as heard words ``{"text", "start", "end", "p"}``
    in the model's own time; the words passed over are left out. ``line_ends``: the index after
    each line's last word.

    Variants (ALIGNMENT.md): ``max_passed``, at most that many words passed over before and
    between kept ones; ``pass_lines``, a line passed over where a window keeps nothing and the
    line is a vocalise or failed the window before too (the skipped stretch is then tried again
    with the next line); ``without_vocalises``, the vocalise lines left out of what the windows
    are given."""
    import numpy as np

    from app.audio.estimates import SECONDS_PER_WEIGHT, word_weights
    from app.audio.forced import align_window, make_tokenizer
    from app.audio.lyrics import normalize_word
    from app.audio.vocals import SAMPLE_RATE

    if without_vocalises:  # the guide over the other lines
        keep_idx, sub_ends = [], []
        for start, end in zip([0, *line_ends], line_ends, strict=False):
            if not _vocalise(words[start:end]):
                keep_idx += list(range(start, end))
                sub_ends.append(len(keep_idx))
        return lyrics_guide(
            model, audio, [words[k] for k in keep_idx], speech, language, sub_ends, max_passed, pass_lines
        )
    tokenizer = make_tokenizer(model, language)
    duration = len(audio) / SAMPLE_RATE
    regions = speech.regions(BREAK_S)

    def next_voice(t: float) -> float:
        return next((max(a, t) for a, b in regions if b > t), duration)

    # sung time the words need, cumulated: need[k] - need[i] for words i..k-1
    need = np.concatenate([[0.0], np.cumsum(word_weights([normalize_word(w) for w in words]))]) * SECONDS_PER_WEIGHT
    tokens = [len(tokenizer.encode(" " + w)) for w in words]
    out: list[dict[str, Any]] = []
    i, pos = 0, next_voice(0.0)
    failed: tuple[int, float] | None = None  # (word, position) of the last window that kept nothing
    while i < len(words) and pos < duration - 0.1:
        t0 = max(0.0, pos - LEAD_S)
        region_end = next((b for a, b in regions if b > pos), duration)
        cut = region_end + LEAD_S < min(duration, t0 + WINDOW_S)
        t1 = min(duration, t0 + WINDOW_S, region_end + LEAD_S)
        at_end = t1 >= duration - 0.5
        voiced = speech.speech_time(t1) - speech.speech_time(t0)
        k, budget, used = i + 1, OVERFILL * voiced + 2.0, tokens[i]
        while k < len(words) and need[k + 1] - need[i] <= budget and used + tokens[k] <= MAX_TOKENS:
            used += tokens[k]
            k += 1
        timed = align_window(model, tokenizer, audio, t0, t1, words[i:k])
        limit = t1 if at_end else t1 - (END_S if cut else TAIL_S)
        sure: list[int] = []
        for j, (s, e, p) in enumerate(timed):
            if s >= limit or (max_passed is not None and j - (sure[-1] if sure else -1) > max_passed + 1):
                break
            if p >= SURE_P and e > s:
                sure.append(j)
        if not sure and pass_lines:
            end = next(e for e in line_ends if e > i)
            again = failed is not None and failed[0] == i
            if again or _vocalise(words[i:end]):
                i, pos, failed = end, failed[1] if failed is not None and again else pos, None
                continue
            failed = (i, pos)
        if not sure:  # these words are not sung here: go on after this stretch
            pos = next_voice(t1 if cut else t0 + WINDOW_S / 2)
            continue
        failed = None
        out += [{"text": words[i + j], "start": timed[j][0], "end": timed[j][1], "p": timed[j][2]} for j in sure]
        i += sure[-1] + 1
        pos = next_voice(timed[sure[-1]][1])
    return out


def main() -> None:
    import numpy as np
    from alignment import experiment_args, paired_errors, songs_or_exit, vocals_stem

    from app.audio import known_lyrics, whisper_models
    from app.audio.lyrics import parse_lyrics

    def variants(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--max-passed", type=int, help="variant: at most this many words passed over in a row")
        parser.add_argument(
            "--pass-lines",
            action="store_true",
            help="variant: a vocalise line, or one that failed twice, passed over when nothing is sure",
        )
        parser.add_argument(
            "--without-vocalises",
            action="store_true",
            help="variant: vocalise lines left out of what the windows are given (placed by the later steps)",
        )

    args = experiment_args(__doc__, variants)
    songs = songs_or_exit(args.songs)
    threads, workers = whisper_models.cpu_layout(THREADS)
    print(
        f"# guide: windows <= {WINDOW_S} s ending at >= {BREAK_S} s breaks, words kept at p >= {SURE_P}, "
        f"tail {TAIL_S} s / {END_S} s; at most {args.max_passed} words passed over in a row; "
        f"lines passed over: {'yes' if args.pass_lines else 'no'}; "
        f"vocalise lines left out: {'yes' if args.without_vocalises else 'no'}; "
        f"whisper int8 {threads} thread(s) x {workers} replica(s)"
    )
    print(
        f"{'song':<36} {'model':>7} {'words':>5} | {'first pass: mean':>16} {'<=0.3s':>6} {'>1s':>4} "
        f"{'x dur':>6} | {'guide: mean':>11} {'<=0.3s':>6} {'>1s':>4} {'x dur':>6} {'kept':>5} | {'ratio':>5}"
    )
    product_heard = known_lyrics.heard_and_gaps
    pooled: dict[str, dict[str, Any]] = {}
    for song in songs:
        name = whisper_models.default_model(args.models_dir, song.language)
        model, _ = whisper_models.load_whisper(name, args.models_dir, cpu_threads=threads, workers=workers)
        stem = vocals_stem(song, args.stems_dir, args.models_dir)
        lines = parse_lyrics(song.lyrics)
        words = [w for line in lines for w in line]
        line_ends = [int(e) for e in np.cumsum([len(line) for line in lines])]
        found: list[int] = []
        guided = _guided_pass(
            words, song.language, found, line_ends, args.max_passed, args.pass_lines, args.without_vocalises
        )
        row = {}
        for label, first_pass in (("heard", product_heard), ("guide", guided)):
            known_lyrics.heard_and_gaps = first_pass
            try:
                started = time.perf_counter()
                timing = known_lyrics.align(stem, song.lyrics, model, language=song.language)
                elapsed = time.perf_counter() - started
            finally:
                known_lyrics.heard_and_gaps = product_heard
            errors = np.array(list(paired_errors(timing.words, song)[0].values()))
            row[label] = (errors, elapsed)
            for group in ("all", "English" if song.language == "en" else "French/Spanish/German"):
                p = pooled.setdefault(group, {}).setdefault(label, {"errors": [], "time": 0.0, "dur": 0.0, "n": 0})
                p["errors"] += list(errors)
                p["time"] += elapsed
                p["dur"] += stem.duration
                p["n"] += len(song.reference)
        print(
            f"{song.name[:36]:<36} {name:>7} {len(song.reference):5d} | "
            + " | ".join(
                _cells(row[k][0], len(song.reference), row[k][1] / stem.duration)
                + (f" {found[0] / len(words):5.0%}" if k == "guide" else "")
                for k in ("heard", "guide")
            )
            + f" | {row['guide'][1] / row['heard'][1]:5.2f}",
            flush=True,
        )
    for group, by in pooled.items():
        print(
            f"{'POOLED ' + group:<50} | "
            + " | ".join(
                _cells(np.array(by[k]["errors"]), by[k]["n"], by[k]["time"] / by[k]["dur"])
                + ("      " if k == "guide" else "")
                for k in ("heard", "guide")
            )
            + f" | {by['guide']['time'] / by['heard']['time']:5.2f}"
        )


def _vocalise(line: list[str]) -> bool:
    """A line of short words (4 letters at most), one of them repeated: `ooh ooh`, `ba da da dam`."""
    from app.audio.lyrics import normalize_word

    norm = [normalize_word(w) for w in line]
    return all(len(w) <= 4 for w in norm) and len(set(norm)) < len(norm)


def _guided_pass(
    words: list[str],
    language: str,
    found: list[int],
    line_ends: list[int],
    max_passed: int | None,
    pass_lines: bool,
    without_vocalises: bool,
) -> Any:
    """A stand-in for ``heard_and_gaps`` that returns the lyrics guide (its length appended to ``found``)."""

    def first_pass(model: Any, audio: Any, lang: str | None, speech: Any, *_: Any) -> tuple[list[dict[str, Any]], str]:
        guide = lyrics_guide(
            model, audio, words, speech, lang or language, line_ends, max_passed, pass_lines, without_vocalises
        )
        found.append(len(guide))
        return guide, lang or language

    return first_pass


def _cells(errors: Any, total: int, share: float) -> str:
    """mean onset error, words within 0.3 s, words more than 1 s off (unpaired ones count), x duration."""
    within = int((errors <= 0.3).sum())
    off = total - int((errors <= 1.0).sum())
    return f"{errors.mean():16.3f} {within / total:6.1%} {off:4d} {share:6.3f}"


if __name__ == "__main__":
    main()
