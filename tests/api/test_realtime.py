"""Socket.IO with the Flask-SocketIO test client: authentication, room permissions, progress events."""

from __future__ import annotations

import io
import time

import pytest

from app.extensions import db, socketio
from app.models import Job
from app.services.jobs import Progress
from tests.conftest import make_app, redis_db

SONG = "separation/musicdelta-80s-rock/mixture.flac"


@pytest.fixture
def app(tmp_path, redis_server, models_dir):
    """The test client needs Socket.IO without the Redis queue (the e2e tests cover the queue)."""
    return make_app(tmp_path, redis_db(redis_server, 1), models_dir, SOCKETIO_MESSAGE_QUEUE=False)


def _song(client, auth, shared_data) -> dict:
    data = {"file": (io.BytesIO((shared_data / SONG).read_bytes()), "mix.flac"), "auto_process": "true"}
    return client.post("/api/v1/songs", data=data, headers=auth, content_type="multipart/form-data").get_json()


def _received(sio, name: str, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while time.monotonic() < deadline:
        seen += [e["args"][0] for e in sio.get_received() if e["name"] == name]
        if seen:
            return seen
        time.sleep(0.05)
    return seen


def test_connect_requires_a_valid_access_token(app, client, token):
    assert not socketio.test_client(app, flask_test_client=client).is_connected()
    assert not socketio.test_client(app, auth={"token": "nope"}).is_connected()
    assert socketio.test_client(app, auth={"token": token}).is_connected()


def test_owner_receives_progress(app, client, auth, token, shared_data, make_user):
    song = _song(client, auth, shared_data)
    sio = socketio.test_client(app, auth={"token": token})
    ack = sio.emit("subscribe", {"song_id": song["id"]}, callback=True)
    assert ack == {"ok": True, "room": f"song:{song['id']}"}
    with app.app_context():
        job = db.session.get(Job, song["jobs"][0]["id"])
        Progress(job)(0.5, "separating")
    events = _received(sio, "job.progress")
    assert events and events[0]["job_id"] == job.id and events[0]["progress"] == 0.5
    assert events[0]["stage"] == "separating" and events[0]["kind"] == "separate"

    make_user("mallory", "pw-mallory-1")
    other = client.post("/api/v1/auth/token", json={"username": "mallory", "password": "pw-mallory-1"}).get_json()
    spy = socketio.test_client(app, auth={"token": other["access_token"]})
    denied = spy.emit("subscribe", {"song_id": song["id"]}, callback=True)
    assert denied["ok"] is False and denied["error"]["code"] == "song_not_found"
    denied = spy.emit("subscribe", {"job_id": job.id}, callback=True)
    assert denied["ok"] is False and denied["error"]["code"] == "job_not_found"
    assert spy.emit("subscribe", "garbage", callback=True)["ok"] is False
