"""Lyrics alignment and transcription benchmark on the evaluation songs, through the product's own code.

For every song in ../shared/data/songs-en (English, words.json) and ../shared/data/songs-multi
(French/Spanish/German, words.txt + words.csv): decode the mix, separate vocals with Spleeter,
decode the vocals stem at 16 kHz mono as the worker does, then
- known-lyrics mode: ``align(vocals, lyrics.txt, model)`` and JamendoLyrics word-onset metrics
  (mean / median absolute onset error, share within 0.3 s and 1.0 s), per song and pooled, and
  the same for word ends (the references' word ends: UltraStar note ends, JamendoLyrics annotations);
- transcription mode: ``transcribe(vocals, model)`` and WER against the lyrics.txt words.
The Whisper model per language is the product default (``whisper_models.default_model``).

    .venv/bin/python benchmarks/alignment.py [--songs SUBSTRING] [--no-transcribe] [--shift SECONDS]
        [--models-dir /tmp/bench-models] [--stems-dir DIR]

``--stems-dir DIR`` keeps each song's 16 kHz mono vocals stem there (float32 .npy, exactly the
samples the alignment reads) and reuses it on later runs instead of separating again: runs that
compare code (or shifts) then read the same samples, and skip the separation.

``--shift 3.7`` prepends 3.7 s of silence to every vocals stem (the reference moves alike and the
times are reported in the song's own time): the same singing falls on other 30 s windows, so the
figures show how much of them is the luck of where Whisper's windows happen to fall.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THREADS = os.cpu_count() or 1
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))  # CTranslate2 (faster-whisper) reads it at import

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
LANGUAGES = {"french": "fr", "spanish": "es", "german": "de", "english": "en"}


@dataclass
class Song:
    name: str
    language: str
    audio: Path
    lyrics: str
    reference: list[tuple[str, float]]  # (word, onset seconds)
    ends: list[float]  # the reference words' ends (seconds)


def _audio_file(folder: Path) -> Path:
    return next(p for p in sorted(folder.iterdir()) if p.stem == "audio" and p.suffix in (".mp3", ".ogg", ".flac"))


def load_songs(pattern: str | None) -> list[Song]:
    songs: list[Song] = []
    for folder in sorted((DATA / "songs-en").iterdir()):
        if not folder.is_dir():
            continue
        data = json.loads((folder / "words.json").read_text(encoding="utf-8"))
        words = [w for line in data["lines"] for w in line["words"]]
        songs.append(Song(folder.name, "en", _audio_file(folder), (folder / "lyrics.txt").read_text("utf-8"),
                          [(w["text"], float(w["start"])) for w in words], [float(w["end"]) for w in words]))
    for folder in sorted((DATA / "songs-multi").iterdir()):
        if not folder.is_dir():
            continue
        source = (folder / "SOURCE.md").read_text(encoding="utf-8").lower()
        language = next(code for name, code in LANGUAGES.items() if f"language: {name}" in source)
        words = (folder / "words.txt").read_text(encoding="utf-8").split()
        with open(folder / "words.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        starts = [float(row["word_start"]) for row in rows]
        if len(words) != len(starts):
            raise ValueError(f"{folder.name}: {len(words)} words in words.txt but {len(starts)} rows in words.csv")
        songs.append(Song(folder.name, language, _audio_file(folder), (folder / "lyrics.txt").read_text("utf-8"),
                          list(zip(words, starts, strict=True)), [float(row["word_end"]) for row in rows]))
    return [s for s in songs if not pattern or pattern in s.name]


def pooled_line(label: str, errors: list[float], total: int) -> str:
    import numpy as np

    if not errors:
        return f"{label:<34} words={total} (nothing paired)"
    e = np.array(errors)
    return (f"{label:<34} words={total:5d} paired={e.size:5d} mean={e.mean():.3f}s median={np.median(e):.3f}s "
            f"<=0.3s={(e <= 0.3).sum() / total:6.1%} ({(e <= 0.3).sum()}) <=1.0s={(e <= 1.0).sum() / total:6.1%} "
            f"({total - (e <= 1.0).sum()} off)")


def paired_errors(words: list[Any], song: Song, shift: float = 0.0) -> tuple[dict[int, float], list[float]]:
    """The timed ``words`` (``text``, ``start``, ``end``; ``shift`` seconds late) paired with the
    reference by edit distance: word index -> absolute onset error, and the absolute end errors."""
    from app.audio.metrics import align_sequences

    pairs = align_sequences([w.text for w in words], [w for w, _ in song.reference])
    onsets = {i: abs(words[i].start - shift - song.reference[j][1]) for i, j in pairs}
    return onsets, [abs(words[i].end - shift - song.ends[j]) for i, j in pairs]


def ends_line(label: str, errors: list[float]) -> str:
    import numpy as np

    e = np.array(errors) if errors else np.array([np.nan])
    return (f"{label:<34} words={e.size:5d} end mean={e.mean():.3f}s median={np.median(e):.3f}s "
            f"<=0.3s={(e <= 0.3).mean():6.1%} ({(e <= 0.3).sum()}) >1.0s={(e > 1.0).sum()}")


def review_counts(timing: Any, error: dict[int, float]) -> dict[str, int]:
    """How the lines flagged ``needs_review`` cover the timing errors (``error``: word index ->
    onset error): lines, lines flagged, lines with a word more than 1 s off (and how many of them
    are flagged), words more than 0.3 s off (and how many of them are in flagged lines)."""
    line_of = [k for k, line in enumerate(timing.lines) for _ in line.words]
    flagged = {k for k, line in enumerate(timing.lines) if line.needs_review}
    worst: dict[int, float] = {}
    for i, e in error.items():
        worst[line_of[i]] = max(worst.get(line_of[i], 0.0), e)
    return {
        "lines": len(timing.lines),
        "flagged": len(flagged),
        "lines_1s": sum(1 for e in worst.values() if e > 1.0),
        "lines_1s_flagged": sum(1 for k, e in worst.items() if e > 1.0 and k in flagged),
        "words_03": sum(1 for e in error.values() if e > 0.3),
        "words_03_flagged": sum(1 for i, e in error.items() if e > 0.3 and line_of[i] in flagged),
    }


def with_silence(wf: Any, seconds: float) -> Any:
    """``wf`` with ``seconds`` of silence before it."""
    import numpy as np

    from app.audio.types import Waveform

    if seconds <= 0:
        return wf
    pad = np.zeros((wf.channels, round(seconds * wf.sample_rate)), dtype=wf.samples.dtype)
    return Waveform(np.concatenate([pad, wf.samples], axis=1), wf.sample_rate)


def kept_stem(stems_dir: str | None, name: str) -> tuple[Path | None, Any]:
    """(where ``--stems-dir`` keeps song ``name``'s 16 kHz vocals stem, that stem if an earlier
    run kept it there, else None)."""
    import numpy as np

    from app.audio.types import Waveform

    kept = Path(stems_dir) / f"{name}.npy" if stems_dir else None
    return kept, Waveform(np.load(kept), 16000) if kept is not None and kept.exists() else None


def stem_16k(vocals: Any, tmp: Path, kept: Path | None = None) -> Any:
    """The vocals stem as the worker reads it (written as FLAC, decoded at 16 kHz mono), kept at
    ``kept`` when given (never half-written)."""
    import numpy as np

    from app.audio.io import decode
    from app.audio.writing import write_audio

    stem = decode(write_audio(tmp / "vocals.flac", vocals, "flac"), sample_rate=16000, channels=1)
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        np.save(kept.with_suffix(".part.npy"), stem.samples)
        os.replace(kept.with_suffix(".part.npy"), kept)
    return stem


def experiment_args(doc: str, extra: Any = None) -> argparse.Namespace:
    """The command line of the side-by-side alignment experiments (``--songs``, ``--models-dir``,
    ``--stems-dir``; ``extra(parser)`` adds an experiment's own options)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--songs", help="only songs whose folder name contains this substring")
    parser.add_argument("--models-dir", default="/tmp/bench-models")
    parser.add_argument("--stems-dir", help="16 kHz vocals stems kept by benchmarks/alignment.py --stems-dir")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def songs_or_exit(pattern: str | None) -> list[Song]:
    songs = load_songs(pattern)
    if not songs:
        sys.exit(f"no song matches {pattern!r}")
    return songs


def vocals_stem(song: Song, stems_dir: str | None, models_dir: str) -> Any:
    """``song``'s 16 kHz vocals stem: the one kept in ``stems_dir`` by an earlier run, else
    separated with Spleeter (and kept there when given)."""
    from app.audio import separation
    from app.audio.io import decode

    kept, stem = kept_stem(stems_dir, song.name)
    if stem is None:
        stems = separation.separate(decode(song.audio), "spleeter", models_dir)
        with tempfile.TemporaryDirectory(prefix="bench-stem-") as tmp:
            stem = stem_16k(stems.vocals, Path(tmp), kept)
    return stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--songs", help="only songs whose folder name contains this substring")
    parser.add_argument("--no-transcribe", action="store_true", help="skip transcription mode (no lyrics)")
    parser.add_argument("--shift", type=float, default=0.0,
                        help="seconds of silence prepended to every vocals stem (a robustness check)")
    parser.add_argument("--models-dir", default="/tmp/bench-models")
    parser.add_argument("--stems-dir", help="keep the 16 kHz vocals stems here and reuse them on later runs")
    args = parser.parse_args()

    import torch

    from app.audio import separation, whisper_models
    from app.audio.io import decode
    from app.audio.known_lyrics import align
    from app.audio.lyrics import parse_lyrics
    from app.audio.metrics import errors_report, word_error_rate
    from app.audio.transcribe import transcribe
    from app.audio.types import Waveform

    torch.set_num_threads(THREADS)
    models_dir = Path(args.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    songs = load_songs(args.songs)
    if not songs:
        sys.exit(f"no song matches {args.songs!r}")
    names = {lang: whisper_models.default_model(models_dir, lang) for lang in sorted({s.language for s in songs})}
    print("# Lyrics alignment benchmark (product code: app.audio.separation / known_lyrics.align / "
          "transcribe.transcribe)")
    print(f"# separation=spleeter  whisper per language: {', '.join(f'{k}={v}' for k, v in names.items())}  "
          f"device=cpu int8  whisper threads x replicas={'x'.join(map(str, whisper_models.cpu_layout(THREADS)))}  "
          f"torch threads={torch.get_num_threads()}  OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}  "
          f"models_dir={models_dir}" + (f"  shift={args.shift}s of silence before each stem" if args.shift else ""))
    from app.audio import alignment, drift, estimates, heard, known_lyrics, vocals

    print(f"# settings: onset bias {whisper_models.ONSET_BIAS_S}, drift {drift.DRIFT_S}s, "
          f"piled {drift.PILED_S}s, second pass over unheard singing >= 1 s "
          f"(max {heard.GAP_MAX_TOKENS} tokens), sung stretches split at "
          f"{vocals.REGION_GAP_S}s pauses, {estimates.SECONDS_PER_WEIGHT}s per letter+1, "
          f"VAD = Silero | level within {vocals.ENERGY_RANGE_DB} dB of the loud frames "
          f"(faint: {vocals.FAINT_RANGE_DB} dB, used below {estimates.FAINT_SHARE:.0%} "
          f"of the time words need), a stanza starting with no pause costs {estimates.BREAK_COST}, "
          f"a line may leave the held note before a >= {estimates.HELD_BREAK_S} s break, "
          f"loops dropped above compression ratio {heard.LOOP_RATIO}, "
          f"a heard word covers <= {heard.MAX_HEARD_WORD_S} s, unheard stretches in "
          f"<= {heard.GAP_CLIP_S} s clips, beam {heard.BEAM_SIZE}, "
          f"heard words under p {known_lyrics.MIN_ANCHOR_P} anchor nothing, aligned words at p >= "
          f"{drift.CONFIDENT_P} are not placed again for drift, runs left under "
          f"{alignment.CROWDED_SHARE:.0%} of their time placed again, line starts aligned over "
          f"{known_lyrics.STRETCHED_S} s start no earlier than their estimate, an onset skips a pause "
          f"(>= {alignment.PAUSE_MIN_S} s) up to {alignment.PAUSE_REACH_S} s after it ({alignment.LONG_REACH} s "
          "after a note held longer than the word needs)")
    models: dict[str, Any] = {}
    for lang, name in names.items():
        started = time.perf_counter()
        threads, workers = whisper_models.cpu_layout(THREADS)  # as a worker with this host's cores
        models[lang], load_s = whisper_models.load_whisper(name, models_dir, cpu_threads=threads, workers=workers)
        wall = time.perf_counter() - started
        print(f"# loaded whisper {name} for {lang}: load {load_s:.1f}s, {wall:.1f}s wall")

    vocals: dict[str, Waveform] = {}
    durations: dict[str, float] = {}
    print("\n## Separation (spleeter, decode + separate + FLAC write/decode at 16 kHz mono)")
    print(f"{'song':<48} {'dur s':>6} {'decode':>7} {'separate':>9} {'load':>6} {'stem16k':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-align-") as tmp:
        for song in songs:
            kept, stem = kept_stem(args.stems_dir, song.name)
            if stem is not None:  # separated by an earlier run: the same samples
                vocals[song.name] = with_silence(stem, args.shift)
                durations[song.name] = stem.duration
                print(f"{song.name[:48]:<48} {stem.duration:6.1f} (stem from {kept})", flush=True)
                continue
            t0 = time.perf_counter()
            mix = decode(song.audio)
            t1 = time.perf_counter()
            stems = separation.separate(mix, "spleeter", models_dir)
            t2 = time.perf_counter()
            stem = stem_16k(stems.vocals, Path(tmp), kept)
            vocals[song.name] = with_silence(stem, args.shift)
            t3 = time.perf_counter()
            durations[song.name] = mix.duration
            print(f"{song.name[:48]:<48} {mix.duration:6.1f} {t1 - t0:6.1f}s {stems.compute_seconds:8.1f}s "
                  f"{stems.load_seconds:5.1f}s {t3 - t2:7.1f}s", flush=True)

    print("\n## Known lyrics (align): word-onset error vs reference")
    print(f"{'song':<48} {'lang':>4} {'model':>7} {'words':>5} {'paired':>6} {'mean s':>7} {'median':>7} "
          f"{'<=0.3s':>7} {'<=1.0s':>7} {'time s':>7} {'x dur':>6} {'end s':>6}")
    errors: dict[str, list[float]] = {"all": [], "en": [], "multi": []}
    end_errs: dict[str, list[float]] = {"all": [], "en": [], "multi": []}
    totals = {"all": 0, "en": 0, "multi": 0}
    align_time = {"all": 0.0, "en": 0.0, "multi": 0.0}
    review: dict[str, int] = {}
    for song in songs:
        started = time.perf_counter()
        timing = align(vocals[song.name], song.lyrics, models[song.language], language=song.language)
        elapsed = time.perf_counter() - started
        by_word, ends = paired_errors(timing.words, song, args.shift)
        errs = list(by_word.values())
        report = errors_report(errs, len(song.reference))
        for group in ("all", "en" if song.language == "en" else "multi"):
            errors[group] += errs
            end_errs[group] += ends
            totals[group] += len(song.reference)
            align_time[group] += elapsed
        for key, value in review_counts(timing, by_word).items():
            review[key] = review.get(key, 0) + value
        print(f"{song.name[:48]:<48} {song.language:>4} {names[song.language]:>7} {report.words:5d} {report.paired:6d} "
              f"{report.mean_abs:7.3f} {report.median_abs:7.3f} {report.within_0_3:7.1%} {report.within_1_0:7.1%} "
              f"{elapsed:7.1f} {elapsed / durations[song.name]:6.3f} {sum(ends) / max(len(ends), 1):6.3f}", flush=True)
    total_dur = {"all": sum(durations.values()), "en": sum(durations[s.name] for s in songs if s.language == "en")}
    total_dur["multi"] = total_dur["all"] - total_dur["en"]
    for group, label in (("all", "POOLED all"), ("en", "POOLED English"), ("multi", "POOLED multilingual")):
        if totals[group]:
            print(pooled_line(label, errors[group], totals[group])
                  + f"  time={align_time[group]:.1f}s x dur={align_time[group] / total_dur[group]:.3f}")
    for group, label in (("all", "WORD ENDS all"), ("en", "WORD ENDS English"), ("multi", "WORD ENDS multilingual")):
        if end_errs[group]:
            print(ends_line(label, end_errs[group]))
    if r := review:
        print(f"REVIEW FLAGS (needs_review): {r['flagged']}/{r['lines']} lines flagged "
              f"({r['flagged'] / max(r['lines'], 1):.1%}); they hold {r['lines_1s_flagged']}/{r['lines_1s']} "
              f"of the lines with a word > 1 s off and {r['words_03_flagged']}/{r['words_03']} words > 0.3 s off")

    if args.no_transcribe:
        return
    print("\n## Transcription (no lyrics): WER vs lyrics.txt words")
    print(f"{'song':<48} {'lang':>4} {'model':>7} {'ref words':>9} {'hyp words':>9} {'WER':>7} {'time s':>7} "
          f"{'x dur':>6}")
    edits, ref_total, t_total = 0.0, 0, 0.0
    heard_ends: list[float] = []
    for song in songs:
        started = time.perf_counter()
        timing = transcribe(vocals[song.name], models[song.language], language=song.language)
        elapsed = time.perf_counter() - started
        hyp = [w.text for w in timing.words]
        heard_ends += paired_errors(timing.words, song, args.shift)[1]
        ref = [w for line in parse_lyrics(song.lyrics) for w in line]
        wer = word_error_rate(hyp, ref)
        edits += wer * len(ref)
        ref_total += len(ref)
        t_total += elapsed
        print(f"{song.name[:48]:<48} {song.language:>4} {names[song.language]:>7} {len(ref):9d} {len(hyp):9d} "
              f"{wer:7.1%} {elapsed:7.1f} {elapsed / durations[song.name]:6.3f}", flush=True)
    print(f"{'POOLED WER (edits / ref words)':<48} {'':>4} {'':>7} {ref_total:9d} {'':>9} "
          f"{edits / max(ref_total, 1):7.1%} {t_total:7.1f} {t_total / total_dur['all']:6.3f}")
    print(ends_line("WORD ENDS (words paired with the lyrics)", heard_ends))


if __name__ == "__main__":
    main()
