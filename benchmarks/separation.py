"""Separation benchmark (issue 4, "Done when"): the product's separation against the demucs CLI.

Prints, in one run, side by side:

(a) One 4-minute stereo song (44.1 kHz 16-bit WAV cut from ../shared/data/songs-en) separated by a
    random-weight HTDemucs of the released ``htdemucs`` shape (41.5 M parameters, saved in Demucs's
    local repo format): wall time of ``python -m demucs --two-stems vocals ... --float32 --clip-mode
    clamp`` against wall time of our separation job (POST /api/v1/songs/<id>/separate with
    ``{model: htdemucs, stems: two, format: wav, sample_format: f32}`` through Redis and a real Celery
    worker whose model is already cached, request -> the ``finished_at`` the service records; the
    harness polls once a second, so that its own requests do not take CPU from the job it times);
    the largest sample difference between our vocals/instrumental and the CLI's vocals/no_vocals; the pure
    model-forward time (the job's ``forward_seconds``, else timed here over every segment
    ``apply_model`` runs) and the ratios ours/CLI and ours/forward.
(b) Ten 30-second songs: ten sequential CLI runs against ten jobs submitted at once to the same worker.
(c) Spleeter (the bundled default) on ../shared/data/separation/musicdelta-80s-rock: BSSEval v4
    SDR/SIR/SAR of our vocals and accompaniment (median over 1 s windows) next to Spleeter's
    published MUSDB18 vocals SDR, and real-time factors (compute seconds / audio seconds).
(d) Peak RSS of one separation job (ingest + ``run_job(id, separate_work)``, as the worker runs it)
    in a fresh process on a 60-minute file against the 4-minute file, with Spleeter and with a small
    random HTDemucs; the ratio 60-min / 4-min.

It ends with a table of the issue's targets and PASS/FAIL for each.

    .venv/bin/python benchmarks/separation.py            # everything (15-25 min on 2 CPU cores)
    .venv/bin/python benchmarks/separation.py --quick    # smoke run: 20 s song, small model, 3-min "long" file
    .venv/bin/python benchmarks/separation.py --only c,d # some parts
    .venv/bin/python benchmarks/separation.py --workdir /tmp/sepbench  # keep and reuse the built files

The test audio and models go to a temporary folder (removed at the end unless ``--workdir``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _separation_util import (  # noqa: E402 - the path above makes the helper importable as a script
    RATE,
    SEPARATION_DATA,
    DemucsRepo,
    SongLibrary,
    Stack,
    excerpt_set,
    forward_seconds,
    max_abs_diff,
    released_shape_repo,
    rss_child,
    run_demucs_cli,
    seconds_to_finish,
    small_repo,
    write_concat,
)

SPLEETER_PUBLISHED_VOCALS_SDR = 6.86  # dB, MUSDB18 test set (Hennequin et al. 2020, JOSS)
TARGETS = {"a_ratio": 0.95, "a_diff": 1e-4, "a_forward": 1.05, "b_ratio": 0.6, "d_ratio": 1.5}


@dataclass(frozen=True)
class Settings:
    song_s: float  # (a)
    batch_count: int  # (b)
    batch_s: float
    long_s: float  # (d)
    full_model: bool
    rss_limit_mb: float


FULL = Settings(song_s=240, batch_count=10, batch_s=30, long_s=3600, full_model=True, rss_limit_mb=12000)
QUICK = Settings(song_s=20, batch_count=2, batch_s=8, long_s=180, full_model=False, rss_limit_mb=8000)


@dataclass
class Row:
    what: str
    value: str
    target: str
    ok: bool | None  # None: nothing to judge (not measured, or informational)


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def job_options(model: DemucsRepo) -> dict[str, Any]:
    # segment: the model's own on both sides (the CLI's --segment takes whole seconds only)
    return {"model": model.name, "stems": "two", "format": "wav", "sample_format": "f32",
            "overlap": 0.25, "shifts": 0}


def warm_up(stack: Stack, lib: SongLibrary, model: DemucsRepo, work: Path) -> float:
    """One separation job on a 10 s song, so that the worker has the model loaded; its wall time."""
    song_id = stack.ingest(write_concat(lib, work / "warmup-10s.wav", 10, 1, 5.0))
    started = time.perf_counter()
    stack.wait([stack.start_separation(song_id, job_options(model))])
    return time.perf_counter() - started


def part_a(stack: Stack, model: DemucsRepo, song: Path, work: Path, measure_forward: bool) -> tuple[list[Row], dict]:
    song_id = stack.ingest(song)
    posted = time.time()
    job_id = stack.start_separation(song_id, job_options(model))
    job = stack.wait([job_id])[job_id]
    ours = seconds_to_finish(posted, [job])
    cli, cli_dir = run_demucs_cli(model, song, work / "cli-a")
    result = job.get("result") or {}
    ours_files = stack.artifact_paths(job)
    diffs = {name: max_abs_diff(ours_files[ours_name], cli_dir / f"{cli_name}.wav")
             for name, ours_name, cli_name in (("vocals", "vocals", "vocals"),
                                               ("instrumental", "instrumental", "no_vocals"))}
    job_forward = result.get("forward_seconds")
    measured, forwards = (None, 0)
    if job_forward is None or measure_forward:
        measured, forwards = forward_seconds(model, song)
    forward = job_forward if job_forward is not None else measured
    duration = song_duration(song)
    shape = "of the released htdemucs shape" if model.params > 10_000_000 else "(the tests' small one)"
    print(f"\n(a) one {duration:.0f} s stereo song, random HTDemucs {shape} "
          f"({model.params / 1e6:.1f} M parameters), segment {model.segment:g} s, overlap 0.25, shifts 0")
    print(f"  demucs CLI (subprocess, loads the model)   {cli:8.2f} s")
    print(f"  ours (POST -> completed, model cached)      {ours:8.2f} s   ratio ours/CLI {ours / cli:.3f}")
    print(f"  job result: wall {fmt(result.get('wall_seconds'))} s, load {fmt(result.get('load_seconds'))} s, "
          f"compute {fmt(result.get('compute_seconds'))} s, forward_seconds {fmt(job_forward)}")
    if measured is not None:
        print(f"  model forward timed here: {measured:.2f} s over {forwards} segments (batch 1)")
    if forward:
        print(f"  ratio ours/forward {ours / forward:.3f}")
    for name, d in diffs.items():
        print(f"  max |ours - CLI| {name:<12} {d['max']:.3g} (all samples), {fmt(d['max_unclipped'], '.3g')} "
              f"(samples under the CLI's ±0.99 clamp; {d['clipped']} sample(s) at it); frames {d['frames']}")
    worst = max(d["max"] for d in diffs.values())
    rows = [
        Row("(a) wall ours / CLI", f"{ours / cli:.3f} ({ours:.1f} s / {cli:.1f} s)",
            f"<= {TARGETS['a_ratio']}", ours / cli <= TARGETS["a_ratio"]),
        Row("(a) max |ours - CLI| vocals, instrumental", f"{worst:.3g}", f"< {TARGETS['a_diff']:g}",
            worst < TARGETS["a_diff"]),
        Row("(a) wall ours / model forward",
            f"{ours / forward:.3f} ({ours:.1f} s / {forward:.1f} s)" if forward else "n/a",
            f"<= {TARGETS['a_forward']}", ours / forward <= TARGETS["a_forward"] if forward else None),
    ]
    return rows, {"compute_s": result.get("compute_seconds"), "duration_s": duration, "forward_s": forward}


def part_b(stack: Stack, model: DemucsRepo, songs: list[Path], work: Path) -> list[Row]:
    song_ids = [stack.ingest(song) for song in songs]
    posted = time.time()
    job_ids = [stack.start_separation(song_id, job_options(model)) for song_id in song_ids]
    ours = seconds_to_finish(posted, list(stack.wait(job_ids).values()))
    cli = sum(run_demucs_cli(model, song, work / "cli-b")[0] for song in songs)
    print(f"\n(b) {len(songs)} songs of {song_duration(songs[0]):.0f} s each")
    print(f"  demucs CLI, {len(songs)} sequential runs        {cli:8.2f} s")
    print(f"  ours, {len(songs)} jobs submitted at once         {ours:8.2f} s   ratio ours/CLI {ours / cli:.3f}")
    return [Row(f"(b) {len(songs)} songs: wall ours / CLI", f"{ours / cli:.3f} ({ours:.1f} s / {cli:.1f} s)",
                f"<= {TARGETS['b_ratio']}", ours / cli <= TARGETS["b_ratio"])]


def part_c(models_dir: Path, song: Path | None, demucs: dict | None) -> list[Row]:
    from app.audio import separation
    from app.audio.io import decode
    from app.audio.separation.quality import bss_eval

    folder = SEPARATION_DATA / "musicdelta-80s-rock"
    mix = decode(folder / "mixture.flac", sample_rate=RATE, channels=2)
    refs = {name: decode(folder / f"{name}.flac", sample_rate=RATE, channels=2) for name in ("vocals", "accompaniment")}
    separation.separate(mix, "spleeter", models_dir)  # loads the model; the next call is timed warm
    stems = separation.separate(mix, "spleeter", models_dir)
    scores = bss_eval(refs, {"vocals": stems.vocals, "accompaniment": stems.instrumental})
    clip_s = mix.samples.shape[1] / RATE
    print(f"\n(c) Spleeter 2 stems on {folder.name} ({clip_s:.1f} s), BSSEval v4 (museval), median over 1 s windows")
    print(f"  {'source':<15}{'SDR dB':>9}{'SIR dB':>9}{'SAR dB':>9}")
    for name, s in scores.items():
        print(f"  {name:<15}{fmt(s['SDR']):>9}{fmt(s['SIR']):>9}{fmt(s['SAR']):>9}")
    print(f"  Spleeter's published MUSDB18 vocals SDR: {SPLEETER_PUBLISHED_VOCALS_SDR:.2f} dB (test set, 50 songs)")
    rows = [Row("(c) Spleeter vocals SDR / SIR / SAR (dB)",
                " / ".join(fmt(scores["vocals"][k]) for k in ("SDR", "SIR", "SAR")),
                f"published SDR {SPLEETER_PUBLISHED_VOCALS_SDR}", None),
            Row("(c) Spleeter accompaniment SDR / SIR / SAR (dB)",
                " / ".join(fmt(scores["accompaniment"][k]) for k in ("SDR", "SIR", "SAR")), "-", None)]
    rtf = stems.compute_seconds / clip_s
    print(f"  RTF Spleeter on the clip: {rtf:.3f} ({stems.compute_seconds:.2f} s / {clip_s:.1f} s)")
    rows.append(Row("(c) RTF Spleeter (clip)", f"{rtf:.3f}", "-", None))
    if song is not None:
        long_stems = separation.separate(decode(song, sample_rate=RATE, channels=2), "spleeter", models_dir)
        duration = song_duration(song)
        rtf = long_stems.compute_seconds / duration
        print(f"  RTF Spleeter on the (a) song: {rtf:.3f} ({long_stems.compute_seconds:.2f} s / {duration:.0f} s)")
        rows.append(Row("(c) RTF Spleeter ((a) song)", f"{rtf:.3f}", "-", None))
    if demucs and demucs.get("compute_s") is not None:
        rtf = demucs["compute_s"] / demucs["duration_s"]
        print(f"  RTF HTDemucs-shaped model (job compute of (a)): {rtf:.3f}")
        rows.append(Row("(c) RTF HTDemucs shape ((a) job compute)", f"{rtf:.3f}", "-", None))
    return rows


def part_d(short: Path, long: Path, spleeter_dir: Path, small: DemucsRepo, work: Path, limit_mb: float) -> list[Row]:
    print(f"\n(d) peak RSS of one separation job in a fresh process: {song_duration(long) / 60:.0f}-min file "
          f"vs {song_duration(short) / 60:.1f}-min file (default output: FLAC + MP3 stems)")
    print(f"  {'model':<22}{'file':>9}{'peak MB':>10}{'after ingest':>14}{'job s':>9}  status")
    rows = []
    for label, model, models_dir in (("spleeter", "spleeter", spleeter_dir), ("small random htdemucs", "htdemucs",
                                                                               small.models_dir)):
        peaks = {}
        for tag, path in (("short", short), ("long", long)):
            r = rss_child(path, model, models_dir, work / f"rss-{model}-{tag}", limit_mb)
            peaks[tag] = r["peak_mb"] if r["status"] == "completed" else None
            print(f"  {label:<22}{song_duration(path) / 60:>7.1f} m{r['peak_mb']:>10.0f}"
                  f"{fmt(r.get('after_ingest_mb'), '.0f'):>14}{fmt(r.get('job_wall_s'), '.1f'):>9}  {r['status']}"
                  + (f": {r['error']}" if r.get("error") else ""))
        ratio = peaks["long"] / peaks["short"] if peaks["long"] and peaks["short"] else None
        print(f"  {label}: ratio long / short {fmt(ratio, '.2f')}")
        rows.append(Row(f"(d) peak RSS long / short, {label}",
                        f"{fmt(ratio, '.2f')} ({fmt(peaks['long'], '.0f')} MB / {fmt(peaks['short'], '.0f')} MB)",
                        f"<= {TARGETS['d_ratio']}", ratio <= TARGETS["d_ratio"] if ratio else False))
    return rows


def song_duration(path: Path) -> float:
    import soundfile as sf

    return sf.info(str(path)).frames / RATE


def summary(rows: list[Row]) -> None:
    width = max(len(r.what) for r in rows)
    value_width = max(len(r.value) for r in rows)
    print("\nSummary")
    print(f"  {'measure':<{width}}  {'value':<{value_width}}  {'target':<18} result")
    for r in rows:
        verdict = "-" if r.ok is None else ("PASS" if r.ok else "FAIL")
        print(f"  {r.what:<{width}}  {r.value:<{value_width}}  {r.target:<18} {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke run of the harness")
    parser.add_argument("--only", default="a,b,c,d", help="comma-separated parts to run (a,b,c,d)")
    parser.add_argument("--workdir", type=Path, help="keep the built audio/models here (reused when present)")
    parser.add_argument("--measure-forward", action="store_true",
                        help="(a) time the model forward here even when the job reports forward_seconds")
    parser.add_argument("--rss-limit-mb", type=float,
                        help="(d) kill a child whose RSS passes this (the machine is shared); "
                             "default 12000 (quick: 8000)")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if parts - set("abcd"):
        parser.error(f"unknown part(s): {', '.join(sorted(parts - set('abcd')))}")
    settings = QUICK if args.quick else FULL
    if args.rss_limit_mb:
        settings = replace(settings, rss_limit_mb=args.rss_limit_mb)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="sepbench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run(parts, settings, work, args.measure_forward)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def run(parts: set[str], settings: Settings, work: Path, measure_forward: bool) -> int:
    lib = SongLibrary()
    audio = work / "audio"
    song = write_concat(lib, audio / f"song-{settings.song_s:.0f}s.wav", settings.song_s)
    big = (released_shape_repo(work / "models-full") if settings.full_model else small_repo(work / "models-small"))
    print(f"separation benchmark ({'quick' if settings.song_s == QUICK.song_s else 'full'}), work folder {work}")
    rows: list[Row] = []
    demucs: dict | None = None
    if parts & {"a", "b"}:
        with Stack(work / "stack", big.models_dir) as stack:
            print(f"  warm-up job (10 s song, the worker loads the model): {warm_up(stack, lib, big, audio):.2f} s")
            if "a" in parts:
                found, demucs = part_a(stack, big, song, work, measure_forward)
                rows += found
            if "b" in parts:
                batch = excerpt_set(lib, audio / "batch", settings.batch_count, settings.batch_s)
                rows += part_b(stack, big, batch, work)
    if "c" in parts:
        (work / "models-none").mkdir(exist_ok=True)
        rows += part_c(work / "models-none", song, demucs)
    if "d" in parts:
        long = write_concat(lib, audio / f"long-{settings.long_s:.0f}s.wav", settings.long_s, 2)
        (work / "models-none").mkdir(exist_ok=True)
        small = big if not settings.full_model else small_repo(work / "models-small")
        rows += part_d(song, long, work / "models-none", small, work / "rss", settings.rss_limit_mb)
    summary(rows)
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
