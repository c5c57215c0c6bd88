"""Socket.IO: authenticated connect, room subscription, and emit_event() usable from any process.

Events leave through the Redis message queue (a write-only manager), so the web server and every
worker emit the same way; the web server's own manager listens to the queue and delivers them.
Events are hints: the database stays the record (clients re-read ``GET /api/v1/jobs/<id>``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import socketio as socketio_pkg
from flask import Flask, current_app, request, session
from flask_jwt_extended import decode_token
from flask_socketio import join_room, leave_room

from app.auth import owned
from app.errors import ApiError
from app.extensions import db, socketio
from app.models import Job, Song, User

log = logging.getLogger(__name__)
QUEUE_CHANNEL = "flask-socketio"  # the channel Flask-SocketIO listens on by default
_emitters: dict[tuple[int, str], socketio_pkg.RedisManager] = {}


def init_realtime(app: Flask) -> None:
    origins = app.config["CORS_ORIGINS"]
    options = {"async_mode": "threading", "cors_allowed_origins": "*" if origins == "*" else origins.split(",")}
    if app.config.get("SOCKETIO_MESSAGE_QUEUE", True):
        options["message_queue"] = app.config["REDIS_URL"]
    else:
        options["client_manager"] = None  # forget a queue an earlier init_app (same process) configured
    socketio.init_app(app, **options)


def song_room(song_id: str) -> str:
    return f"song:{song_id}"


def job_room(job_id: str) -> str:
    return f"job:{job_id}"


def emit_event(event: str, payload: dict[str, Any], rooms: list[str]) -> None:
    """Publish ``event`` to ``rooms`` through the Redis message queue. Never raises."""
    if not current_app.config.get("SOCKETIO_MESSAGE_QUEUE", True):  # single process (tests): emit directly
        socketio.emit(event, payload, to=rooms, namespace="/")
        return
    url = current_app.config["REDIS_URL"]
    key = (os.getpid(), url)  # one connection per process: forked workers must not share one
    try:
        if key not in _emitters:
            _emitters[key] = socketio_pkg.RedisManager(url, channel=QUEUE_CHANNEL, write_only=True)
        _emitters[key].emit(event, payload, namespace="/", room=rooms)
    except Exception:  # noqa: BLE001 - a lost hint must never fail a job
        log.warning("could not emit %s", event, exc_info=True)


def emit_job(event: str, job: Job, message: str | None = None) -> None:
    payload = {
        "job_id": job.id,
        "song_id": job.song_id,
        "kind": job.kind,
        "status": job.status,
        "stage": job.stage,
        "progress": round(job.progress or 0.0, 4),
        "message": message or job.stage or job.status,
    }
    if job.error:
        payload["error"] = job.error
    emit_event(event, payload, [job_room(job.id), song_room(job.song_id)])


def _session_user() -> User | None:
    user_id = session.get("user_id")
    return db.session.get(User, user_id) if user_id is not None else None


@socketio.on("connect")
def _on_connect(auth: dict[str, Any] | None = None) -> None:
    token = (auth or {}).get("token") if isinstance(auth, dict) else None
    token = token or request.args.get("token")
    if not token:
        raise ConnectionRefusedError("authentication required: pass auth={'token': <access token>}")
    try:
        claims = decode_token(token)
    except Exception as exc:  # noqa: BLE001 - any decode problem refuses the connection
        raise ConnectionRefusedError(f"invalid token: {exc}") from None
    if claims.get("type") != "access" or db.session.get(User, int(claims["sub"])) is None:
        raise ConnectionRefusedError("invalid token")
    session["user_id"] = int(claims["sub"])


def _room_for(user: User, data: Any) -> tuple[str | None, dict[str, Any]]:
    usage = {"code": "bad_request", "message": "send {'song_id': ...} or {'job_id': ...}"}
    if not isinstance(data, dict) or not (data.get("job_id") or data.get("song_id")):
        return None, usage
    try:
        if data.get("job_id"):
            return job_room(owned(Job, data["job_id"], user).id), {}
        return song_room(owned(Song, data["song_id"], user).id), {}
    except ApiError as exc:
        return None, {"code": exc.code, "message": exc.message}


@socketio.on("subscribe")
def _on_subscribe(data: Any = None) -> dict[str, Any]:
    user = _session_user()
    if user is None:
        return {"ok": False, "error": {"code": "unauthorized", "message": "not authenticated"}}
    room, error = _room_for(user, data)
    if room is None:
        return {"ok": False, "error": error}
    join_room(room)
    return {"ok": True, "room": room}


@socketio.on("unsubscribe")
def _on_unsubscribe(data: Any = None) -> dict[str, Any]:
    user = _session_user()
    room, error = _room_for(user, data) if user else (None, {"code": "unauthorized"})
    if room is None:
        return {"ok": False, "error": error}
    leave_room(room)
    return {"ok": True, "room": room}
