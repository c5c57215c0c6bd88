"""Songs over REST (no worker: jobs stay queued): metadata, listing, jobs, cancel, files, delete."""

from __future__ import annotations

import io
from pathlib import Path

SONG = "separation/musicdelta-80s-rock/mixture.flac"


def upload(client, auth, shared_data, **fields):
    data = {"file": (io.BytesIO((shared_data / SONG).read_bytes()), "mix.flac"), **fields}
    return client.post("/api/v1/songs", data=data, headers=auth, content_type="multipart/form-data")


def test_upload_returns_song_metadata(client, auth, shared_data):
    resp = upload(client, auth, shared_data, title="Rock", artist="MusicDelta", lyrics="la la\nna na")
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["title"] == "Rock" and body["artist"] == "MusicDelta"
    assert abs(body["duration_s"] - 6.8) < 0.2
    assert body["sample_rate"] == 44100 and body["channels"] == 2
    assert len(body["sha256"]) == 64
    assert body["jobs"] == [] and body["karaoke"]["status"] == "none"


def test_auto_process_queues_three_jobs(client, auth, shared_data):
    body = upload(client, auth, shared_data, auto_process="true", language="en").get_json()
    kinds = [j["kind"] for j in body["jobs"]]
    assert kinds == ["separate", "transcribe", "karaoke"]
    assert all(j["status"] == "queued" for j in body["jobs"])
    assert body["karaoke"]["status"] == "queued"
    sep, tr, kar = body["jobs"]
    assert tr["depends_on"] == [sep["id"]] and kar["depends_on"] == [sep["id"], tr["id"]]
    assert sep["params"]["model"] in ("spleeter", "htdemucs")
    job = client.get(f"/api/v1/jobs/{sep['id']}", headers=auth).get_json()
    assert job["status"] == "queued"


def test_cancel_queued_job_cancels_dependents(client, auth, shared_data):
    body = upload(client, auth, shared_data, auto_process="true").get_json()
    sep = body["jobs"][0]
    resp = client.post(f"/api/v1/jobs/{sep['id']}/cancel", headers=auth)
    assert resp.status_code == 202 and resp.get_json()["status"] == "canceled"
    song = client.get(f"/api/v1/songs/{body['id']}", headers=auth).get_json()
    assert [j["status"] for j in song["jobs"]] == ["canceled"] * 3
    assert song["karaoke"]["status"] == "canceled"
    again = client.post(f"/api/v1/jobs/{sep['id']}/cancel", headers=auth)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "job_finished"


def test_start_jobs_on_existing_song(client, auth, shared_data):
    sid = upload(client, auth, shared_data).get_json()["id"]
    resp = client.post(f"/api/v1/songs/{sid}/karaoke", headers=auth, json={})
    assert resp.status_code == 202
    assert [j["kind"] for j in resp.get_json()["jobs"]] == ["separate", "transcribe", "karaoke"]
    busy = client.post(f"/api/v1/songs/{sid}/separate", headers=auth, json={})
    assert busy.status_code == 409 and busy.get_json()["error"]["code"] == "job_active"
    bad = client.post(f"/api/v1/songs/{sid}/transcribe", headers=auth, json={"model": "nope"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "unknown_model"


def test_listing_is_paginated_and_own_only(client, auth, shared_data):
    upload(client, auth, shared_data)
    page = client.get("/api/v1/songs?per_page=1&page=1", headers=auth).get_json()
    assert page["total"] == 1 and len(page["items"]) == 1
    assert client.get("/api/v1/songs?page=2&per_page=1", headers=auth).get_json()["items"] == []
    bad = client.get("/api/v1/songs?page=zero", headers=auth)
    assert bad.status_code == 400


def test_files_not_ready_and_unknown(client, auth, shared_data):
    sid = upload(client, auth, shared_data).get_json()["id"]
    resp = client.get(f"/api/v1/songs/{sid}/files/karaoke_mp3", headers=auth)
    assert resp.status_code == 404 and "no karaoke_mp3" in resp.get_json()["error"]["message"]
    resp = client.get(f"/api/v1/songs/{sid}/files/passwd", headers=auth)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "file_not_found"


def test_delete_removes_files_and_rows(app, client, auth, shared_data):
    sid = upload(client, auth, shared_data, auto_process="true").get_json()["id"]
    upload_dir = Path(app.config["UPLOAD_DIR"]) / sid
    assert upload_dir.exists()
    assert client.delete(f"/api/v1/songs/{sid}", headers=auth).status_code == 204
    assert not upload_dir.exists()
    assert client.get(f"/api/v1/songs/{sid}", headers=auth).status_code == 404


def test_models_endpoint(client, auth):
    body = client.get("/api/v1/models", headers=auth).get_json()
    sep = {m["name"]: m for m in body["separation"]}
    assert sep["spleeter"]["available"] is True
    assert sep["htdemucs"]["available"] is False  # no Demucs weights in this test's model folder
    tr = {m["name"]: m for m in body["transcription"]}
    assert tr["tiny.en"]["available"] is True and tr["base"]["available"] is True
    assert body["defaults"]["separation"] == "spleeter"
    assert body["device"] in ("cpu", "cuda")


def test_health_reports_db_broker_workers(client):
    body = client.get("/health").get_json()
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert body["workers"]["ok"] in (True, False)
