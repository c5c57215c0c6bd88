"""SQLAlchemy models: the record of users, songs, jobs and the files they produced."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db

# Long text: NVARCHAR(max) on SQL Server (its TEXT/NTEXT types are deprecated), TEXT elsewhere.
LongText = sa.UnicodeText().with_variant(mssql.NVARCHAR(None), "mssql")

JOB_STATUSES = ("queued", "running", "completed", "failed", "canceled")
FINISHED_STATUSES = ("completed", "failed", "canceled")


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.Unicode(80), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "is_admin": self.is_admin}


class Song(db.Model):
    __tablename__ = "songs"
    __table_args__ = (sa.UniqueConstraint("owner_id", "sha256", name="uq_songs_owner_sha256"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(sa.Unicode(255))
    artist: Mapped[str | None] = mapped_column(sa.Unicode(255))
    album: Mapped[str | None] = mapped_column(sa.Unicode(255))
    language: Mapped[str | None] = mapped_column(sa.String(16))
    lyrics: Mapped[str | None] = mapped_column(LongText)
    original_filename: Mapped[str] = mapped_column(sa.Unicode(255))
    upload_path: Mapped[str] = mapped_column(sa.Unicode(1024))
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    duration_s: Mapped[float]
    sample_rate: Mapped[int]
    channels: Mapped[int]
    codec: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User] = relationship()
    jobs: Mapped[list[Job]] = relationship(
        back_populates="song", cascade="all, delete-orphan", order_by="Job.created_at"
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="song", cascade="all, delete-orphan", order_by="Artifact.created_at"
    )
    lyrics_revisions: Mapped[list[LyricsRevision]] = relationship(
        cascade="all, delete-orphan", order_by="LyricsRevision.number"
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "artist": self.artist,
            "album": self.album,
            "language": self.language,
            "has_lyrics": bool(self.lyrics),
            "filename": self.original_filename,
            "duration_s": round(self.duration_s, 3),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "codec": self.codec,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "created_at": iso(self.created_at),
        }


class LyricsRevision(db.Model):
    """Every version of a song's lyrics, numbered from 1; the song holds the current text."""

    __tablename__ = "lyrics_revisions"
    __table_args__ = (sa.UniqueConstraint("song_id", "number", name="uq_lyrics_revisions_song_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    song_id: Mapped[str] = mapped_column(sa.ForeignKey("songs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    text: Mapped[str] = mapped_column(LongText)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "text": self.text, "author_id": self.author_id,
                "created_at": iso(self.created_at)}


class Job(db.Model):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    song_id: Mapped[str] = mapped_column(sa.ForeignKey("songs.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), default="queued", index=True)
    stage: Mapped[str | None] = mapped_column(sa.String(64))
    progress: Mapped[float] = mapped_column(default=0.0)
    attempt: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(LongText)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    depends_on: Mapped[list[str] | None] = mapped_column(sa.JSON)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    song: Mapped[Song] = relationship(back_populates="jobs")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "song_id": self.song_id,
            "kind": self.kind,
            "status": self.status,
            "stage": self.stage,
            "progress": round(self.progress or 0.0, 4),
            "attempt": self.attempt,
            "error": self.error,
            "params": self.params or {},
            "result": self.result,
            "depends_on": self.depends_on or [],
            "cancel_requested": bool(self.cancel_requested),
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }


class Artifact(db.Model):
    """A file a job produced. ``path`` is relative to DATA_DIR when it lies under it."""

    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    song_id: Mapped[str] = mapped_column(sa.ForeignKey("songs.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(sa.String(36))
    kind: Mapped[str] = mapped_column(sa.String(32))
    path: Mapped[str] = mapped_column(sa.Unicode(1024))
    mime: Mapped[str] = mapped_column(sa.String(64))
    model: Mapped[str | None] = mapped_column(sa.String(64))
    params_key: Mapped[str | None] = mapped_column(sa.String(64))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    """Quality measures of what the file holds (separation stems: ``app.audio.separation.quality``)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    song: Mapped[Song] = relationship(back_populates="artifacts")

    def to_dict(self, url: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.path.rsplit("/", 1)[-1],
            "mime": self.mime,
            "model": self.model,
            "size_bytes": self.size_bytes,
            "metrics": self.metrics,
            "created_at": iso(self.created_at),
            "url": url,
        }
