"""Song-level operations behind the songs blueprint: detail views, listing, starting jobs, files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import current_app, url_for

from app.audio import separation
from app.errors import ApiError
from app.extensions import db
from app.models import Job, Song, User
from app.services import storage
from app.services.ingest import UploadRequest
from app.services.jobs import active_jobs, consolidated_status, request_cancel
from app.services.models_catalog import check_separation_model, check_transcription_model
from app.services.pipeline import KARAOKE_KINDS, OTHER_STEMS, latest_artifact, start_jobs
from app.services.separation_options import parse_options

DOWNLOADS = ("vocals", "instrumental", "vocals_mp3", "instrumental_mp3", *OTHER_STEMS, *KARAOKE_KINDS)
MAX_PER_PAGE = 100


def _file_url(song: Song, name: str) -> str:
    return url_for("songs.download", song_id=song.id, name=name)


def song_detail(song: Song, started: list[Job] | None = None) -> dict[str, Any]:
    artifacts = {name: latest_artifact(song, name) for name in DOWNLOADS}
    karaoke = consolidated_status(song)
    karaoke["files"] = {n: _file_url(song, n) for n in KARAOKE_KINDS if artifacts[n]} or None
    timed = next((j for j in reversed(song.jobs) if j.kind == "transcribe" and j.status == "completed"), None)
    karaoke["quality"] = (timed.result or {}).get("quality") if timed else None
    if karaoke["status"] == "none" and karaoke["files"]:
        karaoke["status"] = "completed"
    detail = song.to_dict()
    detail.update(
        jobs=[j.to_dict() for j in song.jobs],
        artifacts=[a.to_dict(_file_url(song, n)) for n, a in artifacts.items() if a is not None],
        karaoke=karaoke,
    )
    if started is not None:
        detail["started_jobs"] = [j.id for j in started]
    return detail


def _int_arg(args: Any, name: str, default: int) -> int:
    try:
        value = int(args.get(name, default))
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer") from None
    if value < 1:
        raise ApiError(400, "invalid_parameter", f"{name} must be at least 1")
    return value


def list_songs(user: User, args: Any) -> dict[str, Any]:
    page = _int_arg(args, "page", 1)
    per_page = min(_int_arg(args, "per_page", 20), MAX_PER_PAGE)
    query = db.select(Song).filter_by(owner_id=user.id).order_by(Song.created_at.desc(), Song.id)
    result = db.paginate(query, page=page, per_page=per_page, error_out=False)
    items = []
    for song in result.items:
        item = song.to_dict()
        item["karaoke"] = consolidated_status(song)
        items.append(item)
    return {"items": items, "page": page, "per_page": per_page, "total": result.total, "pages": result.pages}


def start_auto(song: Song, request: UploadRequest) -> list[Job]:
    return start_jobs(song, ["separate", "transcribe", "karaoke"], {
        "separation_model": request.separation_model, "transcription_model": request.transcription_model})


def start_kind(song: Song, kind: str, body: Any) -> list[Job]:
    """Start ``kind`` on an existing song, with whatever earlier steps it still lacks."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object")
    params: dict[str, Any] = {}
    if kind == "separate":
        params["separation_model"] = check_separation_model(body.get("model"))
        model = params["separation_model"] or separation.default_model(current_app.config["MODELS_DIR"])
        params["separation_options"] = parse_options(body, model)
    elif kind == "transcribe":
        params["transcription_model"] = check_transcription_model(body.get("model"))
    params.setdefault("separation_model", check_separation_model(body.get("separation_model")))
    params.setdefault("transcription_model", check_transcription_model(body.get("transcription_model")))
    if any(j.kind == kind for j in active_jobs(song)):
        raise ApiError(409, "job_active", f"A {kind} job for this song is already queued or running")
    kinds = [kind]
    needs_stems = latest_artifact(song, "vocals") is None or latest_artifact(song, "instrumental_mp3") is None
    if kind in ("transcribe", "karaoke") and needs_stems:
        kinds.insert(0, "separate")
    if kind == "karaoke" and (latest_artifact(song, "timing") is None or "separate" in kinds):
        kinds.insert(-1, "transcribe")
    return start_jobs(song, kinds, params)


def delete_song(song: Song) -> None:
    """Cancel the song's jobs, delete its files and its rows."""
    for job in active_jobs(song):
        if not job.finished:  # canceling one job also ends the jobs waiting on it
            request_cancel(job)
    song_id = song.id
    db.session.delete(song)
    db.session.commit()
    storage.remove_song_files(song_id)


def file_for(song: Song, name: str) -> tuple[Path, str, str]:
    if name == "original":
        path = Path(song.upload_path)
        return path, "application/octet-stream", song.original_filename
    if name not in DOWNLOADS:
        raise ApiError(404, "file_not_found", f"Unknown file {name!r}; one of: {', '.join(DOWNLOADS)}")
    artifact = latest_artifact(song, name)
    if artifact is None:
        raise ApiError(404, "file_not_found", f"This song has no {name} yet")
    path = Path(artifact.path)
    return path, artifact.mime, path.name


def pitch_document(song: Song) -> dict[str, Any]:
    """The pitch analysis the karaoke job wrote (f0 contour, notes, key, tempo)."""
    artifact = latest_artifact(song, "pitch")
    if artifact is None:
        raise ApiError(404, "pitch_not_ready", "This song has no pitch analysis yet; it is made with the karaoke "
                       "files (POST /api/v1/songs/<id>/karaoke)")
    return json.loads(Path(artifact.path).read_text(encoding="utf-8"))
