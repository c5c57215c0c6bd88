"""The karaoke pipeline: which jobs a request starts, and the work each job does.

Work functions take a Job and a progress callback, call one domain function, store files (temp
name then rename) and Artifact rows, and return the job's result (model, timings, cache hit).
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from flask import current_app

from app.audio import separation, whisper_models
from app.audio.io import decode
from app.audio.separation import quality as separation_quality
from app.audio.separation import streaming
from app.audio.separation.channels import downmix_stereo
from app.audio.timed_lyrics import imported_timing, lyrics_text, timing_format
from app.audio.types import LyricsTiming
from app.audio.writing import AudioWriter
from app.errors import ApiError
from app.extensions import db
from app.models import Artifact, Job, Song
from app.services import storage
from app.services.jobs import Progress, create_job
from app.services.models_catalog import compute_device, whisper_options
from app.services.separation_options import stem_names

KARAOKE_KINDS = ("karaoke_mp3", "lrc", "words_lrc", "lyrics_json", "ass", "srt", "vtt", "ultrastar", "pitch")
OTHER_STEMS = ("drums", "bass", "other", "guitar", "piano")  # Demucs sources beyond vocals, stems="all"
MIME = {".flac": "audio/flac", ".mp3": "audio/mpeg", ".wav": "audio/wav", ".m4a": "audio/mp4", ".ogg": "audio/ogg",
        ".lrc": "text/plain; charset=utf-8",
        ".json": "application/json", ".ass": "text/x-ssa; charset=utf-8", ".srt": "application/x-subrip",
        ".vtt": "text/vtt; charset=utf-8", ".txt": "text/plain; charset=utf-8"}


def params_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


# ---- starting jobs --------------------------------------------------------------------------

def start_jobs(song: Song, kinds: list[str], params: dict[str, Any]) -> list[Job]:
    """Create the Job rows for ``kinds`` (a prefix-free subset of separate, transcribe, karaoke), commit,
    then enqueue them as one Celery chain. Missing inputs are taken from the song's latest results."""
    created: dict[str, Job] = {}
    sep_model = params.get("separation_model") or separation.default_model(current_app.config["MODELS_DIR"])
    if "separate" in kinds:
        options = params.get("separation_options")  # None: the default FLAC + MP3 stems
        job_params = {"model": sep_model, **({"output": options} if options else {})}
        created["separate"] = create_job(song, "separate", job_params)
    if "transcribe" in kinds:
        deps = [created["separate"]] if "separate" in created else []
        if not deps:
            _require_artifact(song, "vocals")
        created["transcribe"] = create_job(song, "transcribe", {
            "model": params.get("transcription_model"), "language": song.language,
            "previous_timing": params.get("previous_timing")}, deps)
    if "karaoke" in kinds:
        deps = [created[k] for k in ("separate", "transcribe") if k in created]
        if "separate" not in created:
            _require_artifact(song, "instrumental_mp3")
        if "transcribe" not in created:
            _require_artifact(song, "timing")
        created["karaoke"] = create_job(song, "karaoke", {}, deps)
    db.session.commit()
    _enqueue(list(created.values()))
    return list(created.values())


def _enqueue(jobs: list[Job]) -> None:
    from celery import chain

    from app.tasks import TASKS_BY_KIND

    signatures = [TASKS_BY_KIND[j.kind].si(j.id) for j in jobs]
    try:
        chain(*signatures).apply_async() if len(signatures) > 1 else signatures[0].apply_async()
    except Exception as exc:  # broker down: the jobs can never run, say so instead of leaving them queued
        for job in jobs:
            job.status, job.stage, job.error = "failed", "failed", f"could not enqueue: {exc}"
        db.session.commit()
        raise ApiError(503, "broker_unavailable", "The job queue is not reachable; try again later") from None


def latest_artifact(song: Song, kind: str) -> Artifact | None:
    found = [a for a in song.artifacts if a.kind == kind and Path(a.path).exists()]
    return found[-1] if found else None


def _require_artifact(song: Song, kind: str) -> Artifact:
    artifact = latest_artifact(song, kind)
    if artifact is None:
        needs = "transcribe" if kind == "timing" else "separate"
        raise ApiError(409, "missing_input", f"This song has no {kind} yet; run /{needs} first")
    return artifact


def _input(job: Job, kind: str) -> Artifact:
    """The ``kind`` file this job consumes: the one a job it depends on produced (or reused from
    cache), else the song's latest. Never just "the latest" when a dependency says otherwise: a
    cache hit reuses an older artifact while a newer one of another model or lyrics may exist."""
    for dep_id in job.depends_on or []:
        dep = db.session.get(Job, dep_id)
        artifact_id = ((dep.result or {}).get("artifacts") or {}).get(kind) if dep else None
        artifact = db.session.get(Artifact, artifact_id) if artifact_id else None
        if artifact is not None and Path(artifact.path).exists():
            return artifact
    return _require_artifact(job.song, kind)


def _stem_of(job: Job, partner: Artifact, kind: str) -> Artifact:
    """The ``kind`` stem separated together with ``partner`` (same separation inputs and model),
    else the one this job's dependencies name."""
    for artifact in reversed(job.song.artifacts):
        if artifact.kind == kind and artifact.params_key == partner.params_key and Path(artifact.path).exists():
            return artifact
    return _input(job, kind)


def _ids(artifacts: dict[str, Artifact]) -> dict[str, str]:
    return {kind: a.id for kind, a in artifacts.items()}


def _cached(song: Song, kinds: list[str], key: str) -> dict[str, Artifact] | None:
    found = {a.kind: a for a in song.artifacts if a.params_key == key and a.kind in kinds}
    if len(found) == len(kinds) and all(Path(a.path).exists() for a in found.values()):
        return found
    return None


def _store(job: Job, files: dict[str, Path], model: str | None, key: str,
           metrics: dict[str, Any] | None = None) -> dict[str, Artifact]:
    paths = {str(p) for p in files.values()}
    # rows for the same inputs, or for a file this job just overwrote (karaoke files keep their names
    # across lyrics revisions), no longer describe what is on disk
    for old in [a for a in job.song.artifacts if a.kind in files and (a.params_key == key or a.path in paths)]:
        db.session.delete(old)
    stored = {kind: Artifact(song=job.song, job_id=job.id, kind=kind, path=str(path), model=model, params_key=key,
                             mime=MIME.get(path.suffix, "application/octet-stream"), size_bytes=path.stat().st_size,
                             metrics=(metrics or {}).get(kind))
              for kind, path in files.items()}
    db.session.add_all(stored.values())
    db.session.commit()
    return stored


def _publish(staging: Path, final_dir: Path) -> dict[str, Path]:
    """Move every file of ``staging`` into ``final_dir`` (rename: each appears whole or not at all)."""
    final_dir.mkdir(parents=True, exist_ok=True)
    moved = {p.name: storage.move_into_place(p, final_dir / p.name) for p in sorted(staging.iterdir())}
    shutil.rmtree(staging, ignore_errors=True)
    return moved


class _Staging:
    """A private temp folder for one job; removed whatever happens (cancel, failure)."""

    def __init__(self, final_dir: Path, job: Job) -> None:
        self.path = final_dir.parent / f".tmp-{final_dir.name}-{job.id}"

    def __enter__(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# ---- the work of each job kind --------------------------------------------------------------

def separate_work(job: Job, progress: Progress) -> dict[str, Any]:
    song, model = job.song, job.params["model"]
    options = job.params.get("output")  # None: the default request, whose key and files stay as they were
    key = params_key("separate", song.sha256, model, options) if options else params_key("separate", song.sha256, model)
    names = stem_names(model, options["stems"]) if options else ["vocals", "instrumental"]
    kinds = [*names, "vocals_mp3", "instrumental_mp3"]
    if cached := _cached(song, kinds, key):
        return {"model": model, "cache_hit": True, "load_seconds": 0.0, "compute_seconds": 0.0,
                "artifacts": _ids(cached), "quality": cached["vocals"].metrics}
    tuning = {k: options[k] for k in ("shifts", "overlap", "segment", "stems")} if options else {}
    final_dir = storage.output_dir(song.id) / model
    if options:  # its own folder, so the default stems (and the MP3s karaoke uses) are never overwritten
        final_dir = final_dir / key[:12]
    progress(0.0, "decoding")
    source = streaming.Source.from_file(song.upload_path)
    with _Staging(final_dir, job) as staging:
        files = _StemFiles(staging, source.sample_rate, source.channels,
                           options or {"format": "flac", "sample_format": "s16", "bitrate": None},
                           current_app.logger)
        try:
            run = separation.separate_stream(source, model, current_app.config["MODELS_DIR"], files.put,
                                             on_progress=progress.scaled(0.02, 0.98), device=compute_device(),
                                             compile=bool(current_app.config.get("SEPARATION_COMPILE")), **tuning)
            progress(0.98, "writing")
            written, quality = files.close()
        except BaseException:
            files.abort()
            raise
        moved = _publish(staging, final_dir)
    stored = _store(job, {kind: moved[name] for kind, name in written.items()}, model, key,
                    metrics={kind: quality for kind in written})
    return {"model": model, "cache_hit": False, "load_seconds": round(run.load_seconds, 3),
            "compute_seconds": round(run.compute_seconds, 3),
            "forward_seconds": None if run.forward_seconds is None else round(run.forward_seconds, 3),
            "oom_retries": run.oom_retries, "artifacts": _ids(stored), "quality": quality}


class _StemFiles:
    """Writes a separation's stems while the model runs: a sink for ``separation.separate_stream``.

    Blocks go through a short queue to one thread that encodes every stem in ``options["format"]``
    plus the MP3 copies of vocals and instrumental the karaoke job uses (192 kbps; the stems
    themselves when the format is MP3), and feeds the reference-free quality measures. The encoders
    and the measures mostly run outside the GIL, so this overlaps the network's next segment.
    """

    def __init__(self, folder: Path, sample_rate: int, channels: int, options: dict[str, Any],
                 logger: logging.Logger) -> None:
        self.folder, self.rate, self.channels, self.options = folder, sample_rate, channels, options
        self.logger = logger
        self.writers: dict[str, AudioWriter] = {}
        self.files: dict[str, str] = {}  # artifact kind -> file name
        self.measure: separation_quality.ReferenceFree | None = separation_quality.ReferenceFree(sample_rate)
        self.queue: queue.Queue[tuple[np.ndarray, dict[str, np.ndarray]] | None] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.measure_seconds = 0.0
        self.thread = threading.Thread(target=self._work, name="stem-writer", daemon=True)
        self.thread.start()

    def put(self, mix: np.ndarray, stems: dict[str, np.ndarray]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((mix, stems))

    def close(self) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Finish every file; returns (artifact kind -> file name, quality measures or None)."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        for writer in self.writers.values():
            writer.close()
        quality = None
        if self.measure is not None:
            started = time.perf_counter()
            try:
                quality = self.measure.result()
                quality["seconds"] = round(self.measure_seconds + time.perf_counter() - started, 3)
            except Exception:  # noqa: BLE001 - a measure must never fail the separation it describes
                self.logger.warning("separation quality measures failed", exc_info=True)
        return self.files, quality

    def abort(self) -> None:
        if self.thread.is_alive():
            self.error = self.error or RuntimeError("aborted")
            while self.thread.is_alive():  # unblock and stop the writer thread
                try:
                    self.queue.put(None, timeout=0.1)
                except queue.Full:
                    pass
                self.thread.join(timeout=0.1)
        for writer in self.writers.values():
            writer.abort()

    def _work(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                self._write(*item)
            except BaseException as exc:  # noqa: BLE001 - handed to the separating thread
                self.error = exc

    def _write(self, mix: np.ndarray, stems: dict[str, np.ndarray]) -> None:
        fmt = self.options["format"]
        for name, block in stems.items():
            if name not in self.writers:
                self._open(name, fmt, self.options.get("bitrate") or 192)
            self.writers[name].write(downmix_stereo(block) if fmt == "mp3" else block)
            if f"{name}_mp3" in self.writers:
                self.writers[f"{name}_mp3"].write(downmix_stereo(block))
        if self.measure is not None:
            started = time.perf_counter()
            try:
                self.measure.add(mix, {"vocals": stems["vocals"], "instrumental": stems["instrumental"]})
            except Exception:  # noqa: BLE001 - see close()
                self.logger.warning("separation quality measures failed", exc_info=True)
                self.measure = None
            self.measure_seconds += time.perf_counter() - started

    def _open(self, name: str, fmt: str, kbps: int) -> None:
        sample_format = self.options.get("sample_format") or "s16"
        mp3_channels = min(self.channels, 2)  # MP3 holds at most two: more are downmixed
        self.writers[name] = AudioWriter(self.folder / f"{name}.{fmt}", mp3_channels if fmt == "mp3" else self.channels,
                                         self.rate, fmt, kbps, sample_format)
        self.files[name] = f"{name}.{fmt}"
        if name in ("vocals", "instrumental"):
            self.files[f"{name}_mp3"] = f"{name}.mp3"
            if fmt != "mp3":
                self.writers[f"{name}_mp3"] = AudioWriter(self.folder / f"{name}.mp3", mp3_channels, self.rate,
                                                          "mp3", 192)


def transcribe_work(job: Job, progress: Progress) -> dict[str, Any]:
    from app.audio.known_lyrics import align
    from app.audio.transcribe import transcribe

    song = job.song
    vocals = _input(job, "vocals")
    models_dir = current_app.config["MODELS_DIR"]
    name = job.params.get("model") or whisper_models.default_model(models_dir, song.language)
    mode = "align" if song.lyrics else "transcribe"
    key = params_key("transcribe", vocals.params_key, name, song.language, song.lyrics)
    if cached := _cached(song, ["timing"], key):
        quality = LyricsTiming.from_dict(json.loads(Path(cached["timing"].path).read_text())).quality()
        return {"model": name, "mode": mode, "cache_hit": True, "load_seconds": 0.0, "compute_seconds": 0.0,
                "artifacts": _ids(cached), "quality": quality}
    progress(0.0, "loading model")
    model, load_seconds = whisper_models.load_whisper(name, models_dir, **whisper_options())
    wave = decode(vocals.path, sample_rate=16000, channels=1)
    started = time.perf_counter()
    step = progress.scaled(0.05, 0.95)
    previous = _previous_timing(job)
    if song.lyrics and (imported := imported_timing(song.lyrics, song.language or "")):
        mode = f"align {timing_format(song.lyrics)}"  # the file's timing refined against the audio
        timing = align(wave, lyrics_text(imported), model, language=song.language, on_progress=step,
                       previous=imported, keep_unchanged=False)
    elif song.lyrics:  # after an edit only the changed lines are aligned again
        timing = align(wave, song.lyrics, model, language=song.language, on_progress=step, previous=previous)
    else:
        timing = transcribe(wave, model, language=song.language, on_progress=step)
    compute_seconds = time.perf_counter() - started
    lines_kept = _lines_kept(previous, timing) if previous and mode == "align" else 0
    timing.models.update({"separation": vocals.model or "", "transcription": name})
    final_dir = storage.output_dir(song.id) / "lyrics"
    with _Staging(final_dir, job) as staging:
        (staging / f"timing-{key[:12]}.json").write_text(json.dumps(timing.to_dict(), ensure_ascii=False))
        moved = _publish(staging, final_dir)
    stored = _store(job, {"timing": next(iter(moved.values()))}, name, key)
    return {"model": name, "mode": mode, "language": timing.language, "cache_hit": False, "artifacts": _ids(stored),
            "load_seconds": round(load_seconds, 3), "compute_seconds": round(compute_seconds, 3),
            "words": len(timing.words), "lines": len(timing.lines), "lines_kept": lines_kept,
            "quality": timing.quality()}


def _previous_timing(job: Job) -> LyricsTiming | None:
    """The timing a lyrics edit started from (job param ``previous_timing``), if still on disk."""
    previous = db.session.get(Artifact, job.params.get("previous_timing") or "")
    if previous is None or not Path(previous.path).exists():
        return None
    return LyricsTiming.from_dict(json.loads(Path(previous.path).read_text()))


def _lines_kept(previous: LyricsTiming, timing: LyricsTiming) -> int:
    """Lines whose text and word times are exactly as in ``previous``."""
    def key(line: Any) -> tuple[Any, ...]:
        return line.text, tuple((w.start, w.end) for w in line.words)

    before = {key(line) for line in previous.lines}
    return sum(1 for line in timing.lines if key(line) in before)


def karaoke_work(job: Job, progress: Progress) -> dict[str, Any]:
    from app.audio import pitch
    from app.audio.exports import slugify, write_karaoke_files

    song = job.song
    instrumental = _input(job, "instrumental_mp3")
    vocals = _stem_of(job, instrumental, "vocals")  # the pitch comes from the karaoke track's own vocals
    timing_artifact = _input(job, "timing")
    key = params_key("karaoke", instrumental.params_key, timing_artifact.params_key, vocals.params_key,
                     pitch.SETTINGS, song.title, song.artist, song.album)
    kinds = list(KARAOKE_KINDS)
    if cached := _cached(song, kinds, key):
        return {"cache_hit": True, "artifacts": _ids(cached)}
    timing = LyricsTiming.from_dict(json.loads(Path(timing_artifact.path).read_text()))
    progress(0.0, "pitch")
    vocals_wave = decode(vocals.path, sample_rate=pitch.SAMPLE_RATE, channels=1)
    instrumental_wave = decode(instrumental.path, sample_rate=22050, channels=1)  # for the tempo
    started = time.perf_counter()
    analysis = pitch.analyze_pitch(vocals_wave, timing, instrumental_wave, on_progress=progress.scaled(0.05, 0.85))
    compute_seconds = time.perf_counter() - started
    progress(0.85, "rendering")
    slug = slugify(f"{song.artist} - {song.title}" if song.artist else song.title) or "song"
    final_dir = storage.karaoke_dir(song.id, slug)
    with _Staging(final_dir, job) as staging:
        written = write_karaoke_files(Path(instrumental.path), timing, song.title, song.artist or "", song.album,
                                      staging, slug, plain_lyrics=lyrics_text(timing), pitch=analysis)
        progress(0.95, "publishing")
        moved = _publish(staging, final_dir)
    stored = _store(job, {kind: moved[path.name] for kind, path in written.items()}, None, key)
    return {"model": "librosa.pyin", "cache_hit": False, "folder": str(final_dir), "artifacts": _ids(stored),
            "load_seconds": 0.0, "compute_seconds": round(compute_seconds, 3),
            "pitch": {"key": analysis.key, "tempo_bpm": round(analysis.tempo_bpm, 2), "notes": len(analysis.notes)}}
