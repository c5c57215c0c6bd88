"""Known-lyrics alignment with the line windows aligned during Whisper's passes (the product) and
with every window aligned after them, side by side.

With two Whisper replicas, the spare one transcribes the stretches the first pass skipped while
it goes on; when it has none, it pairs the words settled so far with the lyrics and aligns the line
windows planned from them (``app.audio.known_lyrics._WindowsAhead``). ``align`` takes such a window
only when its own plan, made after the passes, has the same one, so the timing must be the same
both ways: this script checks it word for word and stops if it is not.

For each song, ``align`` both ways in one process (the order alternates from song to song, so a
host that slows down over the run weighs on both): the time of each as a share of the song's
duration, their ratio, and how many windows of the final plan were aligned early. Pooled: the
same for all songs, the English ones and the others.

    .venv/bin/python benchmarks/windows_ahead.py [--songs SUBSTRING] [--stems-dir DIR] [--models-dir DIR]
"""

from __future__ import annotations

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


def main() -> None:
    from alignment import experiment_args, songs_or_exit, vocals_stem

    from app.audio import forced, heard, known_lyrics, whisper_models

    args = experiment_args(__doc__)
    songs = songs_or_exit(args.songs)
    threads, workers = whisper_models.cpu_layout(THREADS)
    if workers < 2:
        sys.exit("needs two Whisper replicas (BENCH_THREADS >= 2)")
    print(f"# whisper int8 {threads} thread(s) x {workers} replicas; settled words handed over every "
          f"{heard.AHEAD_EVERY_S} s, windows ending {known_lyrics.AHEAD_MARGIN_S} s before them aligned early")
    print(f"{'song':<36} {'model':>7} {'windows':>7} {'early':>5} | {'ahead x dur':>11} {'after x dur':>11} | "
          f"{'ratio':>5}")
    used: list[int] = []
    plain = known_lyrics.align_windows

    def counting(model: Any, language: str, audio: Any, lines: list[list[str]], windows: list[Any],
                 on_progress: Any, done: dict[Any, Any] | None = None) -> dict[int, Any]:
        used[:] = [len(windows), sum(forced.window_key(lines, w) in (done or {}) for w in windows)]
        return plain(model, language, audio, lines, windows, on_progress, done)

    known_lyrics.align_windows = counting
    every = heard.AHEAD_EVERY_S
    pooled: dict[str, dict[str, float]] = {}
    for n, song in enumerate(songs):
        name = whisper_models.default_model(args.models_dir, song.language)
        model, _ = whisper_models.load_whisper(name, args.models_dir, cpu_threads=threads, workers=workers)
        stem = vocals_stem(song, args.stems_dir, args.models_dir)
        row: dict[str, tuple[Any, float]] = {}
        counts: list[int] = []
        for label in ("ahead", "after") if n % 2 == 0 else ("after", "ahead"):
            heard.AHEAD_EVERY_S = every if label == "ahead" else float("inf")
            try:
                started = time.perf_counter()
                timing = known_lyrics.align(stem, song.lyrics, model, language=song.language)
                row[label] = (timing, time.perf_counter() - started)
            finally:
                heard.AHEAD_EVERY_S = every
            if label == "ahead":
                counts = list(used)
        if row["ahead"][0] != row["after"][0]:
            sys.exit(f"{song.name}: the timing differs with the windows aligned early")
        ahead_s, after_s = row["ahead"][1], row["after"][1]
        for group in ("all", "English" if song.language == "en" else "French/Spanish/German"):
            p = pooled.setdefault(group, {"ahead": 0.0, "after": 0.0, "dur": 0.0})
            p["ahead"] += ahead_s
            p["after"] += after_s
            p["dur"] += stem.duration
        print(f"{song.name[:36]:<36} {name:>7} {counts[0]:7d} {counts[1]:5d} | {ahead_s / stem.duration:10.3f}x "
              f"{after_s / stem.duration:10.3f}x | {ahead_s / after_s:5.2f}", flush=True)
    for group, p in pooled.items():
        print(f"{'POOLED ' + group:<58} | {p['ahead'] / p['dur']:10.3f}x {p['after'] / p['dur']:10.3f}x | "
              f"{p['ahead'] / p['after']:5.2f}")
    print("timing identical both ways on every song")


if __name__ == "__main__":
    main()
