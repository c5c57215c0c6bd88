"""The karaoke job's UltraStar file and pitch document, and GET /songs/<id>/pitch.

The karaoke work runs in-process here (no worker): its inputs are stems and a timing document
registered as the separation and transcription jobs would; the e2e tests cover the real chain.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from app.audio.types import Line, LyricsTiming, Waveform, Word
from app.audio.ultrastar import parse_ultrastar
from app.audio.writing import write_audio
from app.extensions import db
from app.models import Artifact, Song
from app.services.jobs import Progress, create_job
from app.services.pipeline import karaoke_work, params_key

SONG = "separation/musicdelta-80s-rock/mixture.flac"
WORDS = [("la", 1.0, 1.6, 57), ("di", 2.0, 2.6, 60), ("da", 3.0, 3.8, 64)]


def _upload(client, auth, shared_data) -> str:
    data = {"file": (io.BytesIO((shared_data / SONG).read_bytes()), "mix.flac"), "title": "Rock",
            "artist": "MusicDelta"}
    resp = client.post("/api/v1/songs", data=data, headers=auth, content_type="multipart/form-data")
    assert resp.status_code == 201
    return resp.get_json()["id"]


def _vocals(rate: int = 44100, seconds: float = 5.0) -> Waveform:
    samples = np.zeros(int(rate * seconds), np.float32)
    for _, start, end, midi in WORDS:
        t = np.arange(int((end - start) * rate)) / rate
        hz = 440.0 * 2 ** ((midi - 69) / 12)
        samples[int(start * rate): int(start * rate) + len(t)] = sum(0.2 / k * np.sin(2 * np.pi * k * hz * t)
                                                                     for k in range(1, 5))
    return Waveform(np.stack([samples, samples]), rate)


def _register_inputs(app, song_id: str) -> None:
    """Stems and a timing document, as the separation and transcription jobs leave them."""
    with app.app_context():
        song = db.session.get(Song, song_id)
        folder = Path(app.config["OUTPUT_DIR"]) / song_id / "spleeter"
        folder.mkdir(parents=True)
        silence = Waveform(np.zeros((2, 44100 * 5), np.float32), 44100)
        files = {"vocals": write_audio(folder / "vocals.flac", _vocals()),
                 "instrumental_mp3": write_audio(folder / "instrumental.mp3", silence, "mp3")}
        words = [Word(text, start, end, 0.9) for text, start, end, _ in WORDS]
        timing = LyricsTiming("en", [Line("la di", 1.0, 2.6, words[:2]), Line("da", 3.0, 3.8, words[2:])])
        files["timing"] = folder.parent / "timing.json"
        files["timing"].write_text(json.dumps(timing.to_dict()))
        key = params_key("separate", song.sha256, "spleeter")
        for kind, path in files.items():
            db.session.add(Artifact(song=song, kind=kind, path=str(path), params_key="t" if kind == "timing" else key,
                                    mime="application/octet-stream", size_bytes=path.stat().st_size))
        db.session.commit()


def _run_karaoke(app, song_id: str) -> dict:
    with app.app_context():
        job = create_job(db.session.get(Song, song_id), "karaoke", {})
        db.session.commit()
        return karaoke_work(job, Progress(job))


def test_karaoke_job_writes_ultrastar_and_pitch(app, client, auth, shared_data):
    song_id = _upload(client, auth, shared_data)
    resp = client.get(f"/api/v1/songs/{song_id}/pitch", headers=auth)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "pitch_not_ready"
    resp = client.get(f"/api/v1/songs/{song_id}/files/ultrastar", headers=auth)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "file_not_found"

    _register_inputs(app, song_id)
    result = _run_karaoke(app, song_id)
    assert result["cache_hit"] is False and {"ultrastar", "pitch"} <= set(result["artifacts"])
    assert result["pitch"]["notes"] == 3

    body = client.get(f"/api/v1/songs/{song_id}/pitch", headers=auth).get_json()
    assert [(n["text"], n["midi"], n["measured"]) for n in body["notes"]] == [(w, m, True) for w, _, _, m in WORDS]
    assert len(body["f0"]["times"]) == len(body["f0"]["hz"]) > 100 and body["key"]
    voiced = [hz for t, hz in zip(body["f0"]["times"], body["f0"]["hz"], strict=True) if 1.1 < t < 1.5]
    assert voiced and all(abs(hz - 220.0) < 3 for hz in voiced)

    detail = client.get(f"/api/v1/songs/{song_id}", headers=auth).get_json()
    assert {"ultrastar", "pitch"} <= set(detail["karaoke"]["files"])
    resp = client.get(detail["karaoke"]["files"]["ultrastar"], headers=auth)
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    ultrastar = parse_ultrastar(resp.data)
    assert ultrastar.headers["MP3"] == "musicdelta-rock (karaoke).mp3" and ultrastar.headers["TITLE"] == "Rock"
    assert [(n.text, n.midi, n.kind) for n in ultrastar.notes] == [("la", 57, ":"), (" di", 60, ":"), ("da", 64, ":")]
    assert len(ultrastar.phrases) == 2

    assert _run_karaoke(app, song_id)["cache_hit"] is True  # same inputs, same pitch settings


def test_pitch_of_someone_elses_song_is_not_found(app, client, auth, shared_data, make_user):
    song_id = _upload(client, auth, shared_data)
    make_user("mallory", "pw-mallory-1")
    other = client.post("/api/v1/auth/token", json={"username": "mallory", "password": "pw-mallory-1"}).get_json()
    resp = client.get(f"/api/v1/songs/{song_id}/pitch", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "song_not_found"
    assert client.get(f"/api/v1/songs/{song_id}/pitch").status_code == 401
