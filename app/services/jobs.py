"""Job records: create, run (state machine + progress + cancel), cancel, and the consolidated status."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from app.audio.types import AudioError, JobCanceled
from app.auth import owned
from app.errors import ApiError
from app.extensions import db
from app.models import FINISHED_STATUSES, Artifact, Job, Song, User, utcnow
from app.realtime import emit_job
from app.services import storage

log = logging.getLogger(__name__)

PROGRESS_DB_INTERVAL_S = 0.5
CANCEL_CHECK_INTERVAL_S = 1.0


def create_job(song: Song, kind: str, params: dict[str, Any], depends_on: list[Job] | None = None) -> Job:
    job = Job(song=song, owner_id=song.owner_id, kind=kind, status="queued", stage="queued", progress=0.0,
              params=params, depends_on=[d.id for d in depends_on or []])
    db.session.add(job)
    db.session.flush()
    return job


def job_for(user: User, job_id: str) -> Job:
    return owned(Job, job_id, user)


class Progress:
    """The ``on_progress(fraction, stage)`` callback handed to the domain for one job.

    Writes progress to the database at most every 0.5 s (and on every stage change), emits
    ``job.progress``, and raises JobCanceled once a cancel was requested for the job.
    """

    def __init__(self, job: Job, start: float = 0.0, span: float = 1.0) -> None:
        self.job = job
        self.start = start
        self.span = span
        self._last_write = 0.0
        self._last_cancel_check = time.monotonic()

    def scaled(self, start: float, end: float) -> Progress:
        child = Progress(self.job, self.start + start * self.span, (end - start) * self.span)
        child._last_cancel_check = self._last_cancel_check
        return child

    def __call__(self, fraction: float, stage: str) -> None:
        now = time.monotonic()
        if now - self._last_cancel_check >= CANCEL_CHECK_INTERVAL_S:
            self._last_cancel_check = now
            flag = db.session.execute(db.select(Job.cancel_requested).filter_by(id=self.job.id)).scalar()
            if flag is None or flag:  # None: the job (its song) was deleted
                raise JobCanceled("canceled by request")
        value = self.start + max(0.0, min(1.0, fraction)) * self.span
        if stage != self.job.stage or now - self._last_write >= PROGRESS_DB_INTERVAL_S:
            self._last_write = now
            self.job.stage = stage
            self.job.progress = max(self.job.progress or 0.0, value)
            db.session.commit()
            emit_job("job.progress", self.job)


def _finish(job: Job, status: str, error: str | None = None) -> None:
    job.status = status
    job.error = error
    job.finished_at = utcnow()
    if status == "completed":
        job.progress = 1.0
        job.stage = "completed"
    else:
        job.stage = status
    db.session.commit()
    event = {"completed": "job.completed", "canceled": "job.canceled"}.get(status, "job.failed")
    emit_job(event, job)


def fail_dependents(job: Job) -> None:
    """Jobs waiting on ``job`` can never run: finish them with the reason."""
    status = "canceled" if job.status == "canceled" else "failed"
    for other in db.session.execute(db.select(Job).filter_by(song_id=job.song_id, status="queued")).scalars():
        if job.id in (other.depends_on or []):
            _finish(other, status, f"{job.kind} job {job.id} {job.status}: {job.error or ''}".strip(": "))
            fail_dependents(other)


def _blocked_by(job: Job) -> str | None:
    """Why ``job`` cannot run (a job it needs did not complete), or None."""
    for dep_id in job.depends_on or []:
        dep = db.session.get(Job, dep_id)
        if dep is None:
            return f"job {dep_id} it needs is gone"
        if dep.status != "completed":
            return f"{dep.kind} job {dep.id} is {dep.status}"
    return None


def _outcome(job_id: str, exc: Exception) -> tuple[str, str]:
    """(status, error) for a job whose work raised ``exc``."""
    if isinstance(exc, JobCanceled):
        return "canceled", "canceled by request"
    if isinstance(exc, AudioError | ApiError | ValueError):
        log.warning("job %s failed: %s", job_id, exc)
        return "failed", str(exc)
    log.error("job %s crashed", job_id, exc_info=exc)
    return "failed", f"internal error: {type(exc).__name__}: {exc}"


def run_job(job_id: str, work: Callable[[Job, Progress], dict[str, Any]]) -> None:
    """Run ``work`` for a job: queued -> running -> completed | failed | canceled, recorded in the DB.

    A job already finished returns at once (redelivery is harmless). Domain errors become the job's
    error message; unexpected ones are logged with their traceback and reported briefly.
    """
    job = db.session.get(Job, job_id)
    if job is None:
        log.warning("job %s vanished (song deleted?)", job_id)
        return
    if job.finished:
        return
    if job.cancel_requested:
        _finish(job, "canceled", "canceled before it started")
        return
    reason = _blocked_by(job)
    if reason:
        _finish(job, "failed", reason)
        fail_dependents(job)
        return
    job.status, job.stage, job.started_at = "running", "starting", utcnow()
    job.attempt = (job.attempt or 0) + 1
    db.session.commit()
    emit_job("job.progress", job)
    started = time.perf_counter()
    song_id = job.song_id
    try:
        result = work(job, Progress(job))
    except Exception as exc:  # every way out of work() is recorded on the job
        db.session.rollback()
        if _deleted_meanwhile(job_id, song_id):
            return
        _finish(job, *_outcome(job_id, exc))
        fail_dependents(job)
        return
    if _deleted_meanwhile(job_id, song_id):
        return
    result = dict(result or {})
    result["wall_seconds"] = round(time.perf_counter() - started, 3)
    job.result = result
    _finish(job, "completed")


def _deleted_meanwhile(job_id: str, song_id: str) -> bool:
    """Whether the job went with its song while it ran; then what it wrote goes too: files it moved
    into place after the delete removed the song's folders, and rows it stored for the song."""
    if db.session.execute(db.select(Job.id).where(Job.id == job_id)).first() is not None:  # not the cached row
        return False
    if db.session.execute(db.select(Song.id).where(Song.id == song_id)).first() is not None:
        return True  # the job alone went (no such path today): the song's files stay
    db.session.query(Artifact).filter_by(song_id=song_id).delete()
    db.session.commit()
    storage.remove_song_files(song_id)
    log.info("job %s ended with its song %s deleted; its files were removed", job_id, song_id)
    return True


def request_cancel(job: Job) -> Job:
    """Cancel a job: a queued one ends at once, a running one stops at its next progress report."""
    if job.finished:
        raise ApiError(409, "job_finished", f"The job is already {job.status}")
    job.cancel_requested = True
    if job.status == "queued":
        _finish(job, "canceled", "canceled by request")
        fail_dependents(job)
    else:
        db.session.commit()
    return job


def consolidated_status(song: Song, kind: str = "karaoke") -> dict[str, Any]:
    """The status of the latest ``kind`` job together with the jobs it waits on."""
    latest = next((j for j in reversed(song.jobs) if j.kind == kind), None)
    if latest is None:
        return {"status": "none", "job_id": None}
    chain = [db.session.get(Job, d) for d in latest.depends_on or []] + [latest]
    chain = [j for j in chain if j is not None]
    statuses = {j.status for j in chain}
    if "failed" in statuses:
        status = "failed"
    elif "canceled" in statuses:
        status = "canceled"
    elif statuses == {"completed"}:
        status = "completed"
    elif statuses & {"running"} or statuses - {"queued"}:
        status = "running"
    else:
        status = "queued"
    summary: dict[str, Any] = {"status": status, "job_id": latest.id}
    errors = [f"{j.kind}: {j.error}" for j in chain if j.status in ("failed", "canceled") and j.error]
    if errors:
        summary["error"] = errors[0]
    weights = {"separate": 0.45, "transcribe": 0.45, "karaoke": 0.1}
    total = sum(weights.get(j.kind, 0.1) for j in chain)
    summary["progress"] = round(sum(weights.get(j.kind, 0.1) * (j.progress or 0) for j in chain) / total, 4)
    return summary


def active_jobs(song: Song) -> list[Job]:
    return [j for j in song.jobs if j.status not in FINISHED_STATUSES]
