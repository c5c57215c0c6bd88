"""Lyrics edits: each edit is a new numbered revision; the karaoke is re-timed keeping unchanged lines."""

from __future__ import annotations

from typing import Any

from app.audio.lyrics import parse_lyrics
from app.audio.timed_lyrics import imported_timing, lyrics_text, timing_format
from app.errors import ApiError
from app.extensions import db
from app.models import Job, LyricsRevision, Song, User
from app.services.jobs import active_jobs
from app.services.pipeline import latest_artifact, start_jobs

MAX_LYRICS_CHARS = 50_000


def lyrics_history(song: Song) -> dict[str, Any]:
    return {"current": song.lyrics, "revisions": [r.to_dict() for r in song.lyrics_revisions]}


def check_lyrics(text: str) -> str:
    """Lyrics as stored (stripped, so the same text means the same cache key): plain text, or an
    LRC / UltraStar file whose timing becomes the starting point of the alignment.
    400 ``invalid_lyrics`` for a malformed LRC / UltraStar text or text without words."""
    text = text.strip()
    if len(text) > MAX_LYRICS_CHARS:
        raise ApiError(400, "invalid_parameter", f"lyrics is longer than {MAX_LYRICS_CHARS} characters")
    try:
        imported = imported_timing(text)
    except ValueError as exc:
        raise ApiError(400, "invalid_lyrics", f"The {timing_format(text)} lyrics cannot be read: {exc}") from None
    if not any(parse_lyrics(lyrics_text(imported) if imported else text)):
        raise ApiError(400, "invalid_lyrics", "The lyrics contain no words to time")
    return text


def _checked(body: Any) -> str:
    text = body.get("lyrics") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "invalid_parameter", "Send JSON {\"lyrics\": \"...\"} with the full corrected text")
    return check_lyrics(text)


def add_revision(song: Song, text: str, author: User | None) -> LyricsRevision:
    number = (song.lyrics_revisions[-1].number if song.lyrics_revisions else 0) + 1
    revision = LyricsRevision(song_id=song.id, number=number, text=text, author_id=author.id if author else None)
    song.lyrics_revisions.append(revision)
    song.lyrics = text
    return revision


def edit_lyrics(song: Song, user: User, body: Any) -> tuple[LyricsRevision, list[Job]]:
    """Store corrected lyrics as a new revision and re-time the karaoke. No jobs when nothing changed."""
    text = _checked(body)
    if text == (song.lyrics or "") and song.lyrics_revisions:
        return song.lyrics_revisions[-1], []
    if any(j.kind in ("transcribe", "karaoke") for j in active_jobs(song)):
        raise ApiError(409, "job_active", "The lyrics of this song are being timed; try again when that finishes")
    if song.lyrics and not song.lyrics_revisions:  # text from before revisions existed
        add_revision(song, song.lyrics, None)
    revision = add_revision(song, text, user)
    previous = latest_artifact(song, "timing")
    kinds = ["transcribe", "karaoke"]
    if latest_artifact(song, "vocals") is None or latest_artifact(song, "instrumental_mp3") is None:
        kinds.insert(0, "separate")
    db.session.flush()
    jobs = start_jobs(song, kinds, {"previous_timing": previous.id if previous else None})
    return revision, jobs
