"""Every bad upload gets a clear JSON error with the right status; nothing is left on disk or lost."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.extensions import db
from app.models import Song
from tests.conftest import make_app

SONG = "separation/musicdelta-80s-rock/mixture.flac"
MP3 = "songs-en/jonathan-coulton-better/audio.mp3"


def upload(client, auth, data: bytes | None, name: str = "song.flac", **fields):
    form = {k: v for k, v in fields.items()}
    if data is not None:
        form["file"] = (io.BytesIO(data), name)
    return client.post("/api/v1/songs", data=form, headers=auth, content_type="multipart/form-data")


def files_on_disk(app) -> list[Path]:
    roots = [app.config[k] for k in ("UPLOAD_DIR", "OUTPUT_DIR", "KARAOKE_DIR")]
    return sorted(p for root in roots for p in Path(root).rglob("*") if p.is_file())


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


@pytest.fixture
def stored(app, client, auth, shared_data):
    """One good song already stored, to prove later failures do not lose it."""
    resp = upload(client, auth, (shared_data / SONG).read_bytes(), title="Mix")
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def assert_untouched(app, stored: dict) -> None:
    with app.app_context():
        songs = db.session.execute(db.select(Song)).scalars().all()
        assert [s.id for s in songs] == [stored["id"]]
        assert Path(songs[0].upload_path).exists()
    assert len(files_on_disk(app)) == 1


@pytest.mark.parametrize(
    ("make_bytes", "name", "status", "code"),
    [
        (lambda d: b"this is not audio at all, just text\n" * 200, "fake.mp3", 422, "invalid_audio"),
        (lambda d: b"", "empty.mp3", 400, "empty_file"),
        (lambda d: (d / MP3).read_bytes()[:2048], "cut.mp3", 422, "invalid_audio"),
        (lambda d: (d / MP3).read_bytes()[: int((d / MP3).stat().st_size * 0.4)], "half.mp3", 422, "invalid_audio"),
        (lambda d: (d / SONG).read_bytes(), "../../x.flac", 400, "invalid_filename"),
        (lambda d: (d / SONG).read_bytes(), "notes.txt", 415, "unsupported_media_type"),
    ],
    ids=["not-audio", "empty", "truncated-2k", "truncated-40pct", "path-parts", "not-an-audio-name"],
)
def test_bad_files(app, client, auth, shared_data, stored, make_bytes, name, status, code):
    assert_error(upload(client, auth, make_bytes(shared_data), name), status, code)
    assert_untouched(app, stored)


@pytest.mark.parametrize(
    ("fields", "code", "needle"),
    [
        ({"auto_process": "maybe"}, "invalid_parameter", "auto_process"),
        ({"separation_model": "nope"}, "unknown_model", "nope"),
        ({"transcription_model": "whisper-huge"}, "unknown_model", "whisper-huge"),
        ({"language": "english!"}, "invalid_parameter", "language"),
    ],
)
def test_bad_fields(app, client, auth, shared_data, stored, fields, code, needle):
    body = assert_error(upload(client, auth, (shared_data / SONG).read_bytes(), "other.flac", **fields), 400, code)
    assert needle in body["error"]["message"]
    assert_untouched(app, stored)


def test_missing_file_field(app, client, auth, stored):
    assert_error(upload(client, auth, None, title="x"), 400, "missing_file")
    assert_untouched(app, stored)


def test_duplicate_upload_is_409_with_song_id(app, client, auth, shared_data, stored):
    body = assert_error(upload(client, auth, (shared_data / SONG).read_bytes(), "again.flac"), 409, "duplicate_song")
    assert body["song_id"] == stored["id"]
    assert_untouched(app, stored)


def limited_client(tmp_path, redis_server, models_dir, **config):
    """An app with different limits, its client, and auth headers for a fresh user."""
    from app.auth import create_user
    from tests.conftest import redis_db

    app = make_app(tmp_path, redis_db(redis_server, 1), models_dir, **config)
    client = app.test_client()
    with app.app_context():
        create_user("bob", "pw-bob-1234")
    tok = client.post("/api/v1/auth/token", json={"username": "bob", "password": "pw-bob-1234"}).get_json()
    return app, client, {"Authorization": f"Bearer {tok['access_token']}"}


def test_file_over_max_upload_mb(tmp_path, redis_server, models_dir, shared_data):
    app, client, auth = limited_client(tmp_path, redis_server, models_dir, MAX_UPLOAD_MB=1)
    body = assert_error(upload(client, auth, (shared_data / MP3).read_bytes(), "big.mp3"), 413, "file_too_large")
    assert "1 MB" in body["error"]["message"]
    assert files_on_disk(app) == []


def test_audio_longer_than_max_duration(tmp_path, redis_server, models_dir, shared_data):
    app, client, auth = limited_client(tmp_path, redis_server, models_dir, MAX_DURATION_S=5)
    body = assert_error(upload(client, auth, (shared_data / SONG).read_bytes()), 422, "audio_too_long")
    assert "5 s" in body["error"]["message"]
    assert files_on_disk(app) == []
