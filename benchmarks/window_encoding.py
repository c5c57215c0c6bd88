"""Forced-alignment windows: encoded at their own length (plus ``forced.WINDOW_PAD_S``) against
padded to 30 s, side by side on the same windows.

Aligns each evaluation song's known lyrics once with the product's code, recording every window
it force-aligns (``forced.align_window``: the line windows and the drift re-alignment windows).
Then times each recorded window both ways, alternating which goes first, in one process on one
thread, and prints per song and pooled: windows, their mean length, the seconds each way, the
ratio, and how far the two put the same words apart (median and share within 20 ms). The word
times the product gets from the padding it uses are in ``benchmarks/alignment.py``.

    .venv/bin/python benchmarks/window_encoding.py [--songs SUBSTRING] [--stems-dir DIR]
        [--models-dir DIR]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

FULL_PAD_S = 30.0  # pads every window to Whisper's 30 s input (3000 frames), as faster-whisper does


def row(label: str, model: str, lengths: list[float], spent: dict[str, Any], diffs: list[float]) -> str:
    """One line of the table: windows, their mean length, seconds each way, ratio, and how far apart
    the two ways put the words (median, share within 20 ms)."""
    import numpy as np

    d = np.asarray(diffs) if diffs else np.zeros(1)
    return (f"{label:<36} {model:>7} {len(lengths):7d} {np.mean(lengths) if lengths else 0.0:6.1f} "
            f"{spent['padded']:8.2f} {spent['own']:6.2f} {spent['own'] / max(spent['padded'], 1e-9):6.2f} "
            f"{len(diffs):6d} {1000 * np.median(d):9.1f} {np.mean(d <= 0.02):7.1%}")


def main() -> None:
    from alignment import experiment_args, songs_or_exit, vocals_stem

    from app.audio import drift, forced, known_lyrics, whisper_models

    args = experiment_args(__doc__)
    songs = songs_or_exit(args.songs)
    print(f"# windows encoded at their length + {forced.WINDOW_PAD_S} s against padded to {FULL_PAD_S} s; "
          "whisper int8, one thread, one replica; times are the align_window calls alone")
    print(f"{'song':<36} {'model':>7} {'windows':>7} {'mean s':>6} {'padded s':>8} {'own s':>6} {'ratio':>6} "
          f"{'words':>6} {'median ms':>9} {'<=20 ms':>7}")
    recorded: list[tuple[Any, ...]] = []
    original = forced.align_window

    def recording(model: Any, tokenizer: Any, audio: Any, t0: float, t1: float, words: list[str],
                  pad_s: float = forced.WINDOW_PAD_S) -> Any:
        recorded.append((tokenizer, audio, t0, t1, list(words)))
        return original(model, tokenizer, audio, t0, t1, words, pad_s)

    totals: dict[str, Any] = {"padded": 0.0, "own": 0.0, "lengths": [], "diffs": []}
    for song in songs:
        name = whisper_models.default_model(args.models_dir, song.language)
        model, _ = whisper_models.load_whisper(name, args.models_dir, cpu_threads=1, workers=1)
        stem = vocals_stem(song, args.stems_dir, args.models_dir)
        recorded.clear()
        forced.align_window = drift.align_window = recording  # the line windows and the re-alignment's
        try:
            known_lyrics.align(stem, song.lyrics, model, language=song.language)
        finally:
            forced.align_window = drift.align_window = original
        spent = {"padded": 0.0, "own": 0.0}
        diffs: list[float] = []
        for k, (tokenizer, audio, t0, t1, words) in enumerate(recorded):
            out = {}
            order = ("padded", "own") if k % 2 == 0 else ("own", "padded")
            for way in order:
                started = time.perf_counter()
                out[way] = original(model, tokenizer, audio, t0, t1, words,
                                    FULL_PAD_S if way == "padded" else forced.WINDOW_PAD_S)
                spent[way] += time.perf_counter() - started
            diffs += [abs(a[0] - b[0]) for a, b in zip(out["padded"], out["own"], strict=True)]
        lengths = [t1 - t0 for _, _, t0, t1, _ in recorded]
        print(row(song.name[:36], name, lengths, spent, diffs), flush=True)
        for key in ("padded", "own"):
            totals[key] += spent[key]
        totals["lengths"] += lengths
        totals["diffs"] += diffs
    print(row("POOLED", "", totals["lengths"], totals, totals["diffs"]))


if __name__ == "__main__":
    main()
