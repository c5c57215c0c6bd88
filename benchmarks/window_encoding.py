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

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

FULL_PAD_S = 30.0  # pads every window to Whisper's 30 s input (3000 frames), as faster-whisper does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--songs", help="only songs whose folder name contains this substring")
    parser.add_argument("--models-dir", default="/tmp/bench-models")
    parser.add_argument("--stems-dir", help="16 kHz vocals stems kept by benchmarks/alignment.py --stems-dir")
    args = parser.parse_args()

    import numpy as np
    from alignment import load_songs

    from app.audio import drift, forced, known_lyrics, separation, whisper_models
    from app.audio.io import decode
    from app.audio.types import Waveform
    from app.audio.writing import write_audio

    songs = load_songs(args.songs)
    if not songs:
        sys.exit(f"no song matches {args.songs!r}")
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

    totals = {"padded": 0.0, "own": 0.0, "windows": 0, "diffs": []}
    for song in songs:
        name = whisper_models.default_model(args.models_dir, song.language)
        model, _ = whisper_models.load_whisper(name, args.models_dir, cpu_threads=1, workers=1)
        kept = Path(args.stems_dir) / f"{song.name}.npy" if args.stems_dir else None
        if kept is not None and kept.exists():
            stem = Waveform(np.load(kept), 16000)
        else:  # as the worker reads it: the stem written as FLAC, decoded at 16 kHz mono
            stems = separation.separate(decode(song.audio), "spleeter", args.models_dir)
            with tempfile.TemporaryDirectory(prefix="bench-windows-") as tmp:
                path = write_audio(Path(tmp) / "vocals.flac", stems.vocals, "flac")
                stem = decode(path, sample_rate=16000, channels=1)
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
        mean_len = float(np.mean([t1 - t0 for _, _, t0, t1, _ in recorded])) if recorded else 0.0
        d = np.asarray(diffs) if diffs else np.zeros(1)
        print(f"{song.name[:36]:<36} {name:>7} {len(recorded):7d} {mean_len:6.1f} {spent['padded']:8.2f} "
              f"{spent['own']:6.2f} {spent['own'] / max(spent['padded'], 1e-9):6.2f} {len(diffs):6d} "
              f"{1000 * np.median(d):9.1f} {np.mean(d <= 0.02):7.1%}", flush=True)
        totals["padded"] += spent["padded"]
        totals["own"] += spent["own"]
        totals["windows"] += len(recorded)
        totals["diffs"] += diffs
    d = np.asarray(totals["diffs"]) if totals["diffs"] else np.zeros(1)
    print(f"POOLED windows={totals['windows']} padded={totals['padded']:.1f}s own={totals['own']:.1f}s "
          f"ratio={totals['own'] / max(totals['padded'], 1e-9):.2f} words={len(totals['diffs'])} "
          f"median diff={1000 * np.median(d):.1f} ms within 20 ms={np.mean(d <= 0.02):.1%}")


if __name__ == "__main__":
    main()
