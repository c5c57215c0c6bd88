"""Upload ingest: validate the request, stream to disk, hash, probe, dedup, store the Song row."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from flask import current_app
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage

from app.audio.io import probe
from app.audio.types import AudioDecodeError
from app.errors import ApiError
from app.extensions import db
from app.models import Song, User
from app.services import storage
from app.services.lyrics import MAX_LYRICS_CHARS, add_revision, check_lyrics

AUDIO_SUFFIXES = {".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".webm", ".aif", ".aiff"}
TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off", ""}
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")


@dataclass
class UploadRequest:
    """The validated form of ``POST /songs``."""

    title: str | None
    artist: str | None
    album: str | None
    lyrics: str | None
    language: str | None
    auto_process: bool
    separation_model: str | None
    transcription_model: str | None


def parse_bool(value: str | None, field: str, default: bool = False) -> bool:
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ApiError(400, "invalid_parameter", f"{field} must be true or false, not {value!r}")


def parse_language(value: str | None) -> str | None:
    if not value:
        return None
    language = value.strip().lower()
    if not LANGUAGE_RE.match(language):
        raise ApiError(400, "invalid_parameter", f"language must be an ISO 639-1 code such as 'en', not {value!r}")
    return language


def _text(form: dict[str, Any], name: str, limit: int = 255) -> str | None:
    value = (form.get(name) or "").strip()
    if len(value) > limit:
        raise ApiError(400, "invalid_parameter", f"{name} is longer than {limit} characters")
    return value or None


def _lyrics(form: dict[str, Any], files: Any) -> str | None:
    """The ``lyrics`` text field, or a ``lyrics_file`` upload (plain text, LRC or UltraStar, UTF-8)."""
    upload = files.get("lyrics_file") if files is not None else None
    if upload is not None and upload.filename:
        raw = upload.stream.read(MAX_LYRICS_CHARS * 4 + 1)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_lyrics", "lyrics_file must be UTF-8 text") from None
    else:
        text = form.get("lyrics") or ""
    return check_lyrics(text) or None if text.strip() else None


def parse_upload_form(form: dict[str, Any], files: Any = None) -> UploadRequest:
    from app.services.models_catalog import check_separation_model, check_transcription_model

    lyrics = _lyrics(form, files)
    return UploadRequest(
        title=_text(form, "title"),
        artist=_text(form, "artist"),
        album=_text(form, "album"),
        lyrics=lyrics,
        language=parse_language(form.get("language")),
        auto_process=parse_bool(form.get("auto_process"), "auto_process"),
        separation_model=check_separation_model(form.get("separation_model") or None),
        transcription_model=check_transcription_model(form.get("transcription_model") or None),
    )


def check_filename(name: str | None) -> str:
    """The client's file name, refused when it carries path parts or an unknown extension."""
    if not name:
        raise ApiError(400, "invalid_filename", "The uploaded file has no file name")
    if name != PurePosixPath(name).name or name != PureWindowsPath(name).name or name in {".", ".."}:
        raise ApiError(400, "invalid_filename", "The file name must not contain path parts")
    if Path(name).suffix.lower() not in AUDIO_SUFFIXES:
        allowed = ", ".join(sorted(AUDIO_SUFFIXES))
        raise ApiError(415, "unsupported_media_type", f"Unsupported file type; use one of {allowed}")
    return name


def ingest_upload(user: User, upload: FileStorage | None, request: UploadRequest) -> Song:
    """Store an uploaded song; on any error nothing is left on disk and nothing is committed."""
    if upload is None:
        raise ApiError(400, "missing_file", "The multipart field 'file' is required")
    filename = check_filename(upload.filename)
    max_bytes = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    suffix = Path(filename).suffix.lower()
    tmp = storage.temp_path(suffix)
    try:
        sha256, size = storage.stream_to_file(upload.stream, tmp, max_bytes)
    except storage.TooLarge:
        limit = current_app.config["MAX_UPLOAD_MB"]
        raise ApiError(413, "file_too_large", f"The file is larger than {limit} MB") from None
    try:
        if size == 0:
            raise ApiError(400, "empty_file", "The uploaded file is empty")
        existing = db.session.execute(db.select(Song).filter_by(owner_id=user.id, sha256=sha256)).scalar_one_or_none()
        if existing is not None:
            raise ApiError(409, "duplicate_song", "You already uploaded this file", song_id=existing.id)
        info = _probe(tmp)
        song = Song(
            owner_id=user.id,
            title=request.title or Path(filename).stem,
            artist=request.artist,
            album=request.album,
            language=request.language,
            lyrics=request.lyrics,
            original_filename=filename,
            upload_path="",
            sha256=sha256,
            size_bytes=size,
            duration_s=info.duration_s,
            sample_rate=info.sample_rate,
            channels=info.channels,
            codec=info.codec,
        )
        db.session.add(song)
        db.session.flush()
        if request.lyrics:
            add_revision(song, request.lyrics, user)
        final = storage.move_into_place(tmp, storage.upload_dir(song.id) / f"original{suffix}")
        song.upload_path = str(final)
        try:
            db.session.commit()
        except Exception as exc:
            final.unlink(missing_ok=True)
            storage.upload_dir(song.id).rmdir()
            if isinstance(exc, IntegrityError):
                raise ApiError(409, "duplicate_song", "You already uploaded this file") from None
            raise
        return song
    except BaseException:
        db.session.rollback()
        tmp.unlink(missing_ok=True)
        raise


def _probe(path: Path):
    try:
        info = probe(path)
    except AudioDecodeError as exc:
        raise ApiError(422, "invalid_audio", f"The file is not audio we can read: {exc}") from None
    limit = current_app.config["MAX_DURATION_S"]
    if info.duration_s > limit:
        raise ApiError(
            422, "audio_too_long", f"The audio lasts {info.duration_s:.0f} s; the limit is {limit} s"
        )
    if info.duration_s < 0.5:
        raise ApiError(422, "audio_too_short", "The audio is shorter than half a second")
    return info
