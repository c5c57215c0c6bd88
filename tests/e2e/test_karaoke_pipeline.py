"""One-step karaoke through the real stack: REST upload -> Redis -> Celery worker -> files; Socket.IO progress."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
import requests
import socketio

from app.audio.ultrastar import parse_ultrastar
from tests.e2e.karaoke_checks import check_karaoke_mp3, check_lrc, check_timing_json, check_words_lrc, lyrics_lines

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SONG_DIR = "songs-en/jonathan-coulton-better"
TITLE, ARTIST = "Better", "Jonathan Coulton"


class Listener:
    """A real Socket.IO client (websocket transport) that records every job event."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[str, dict]] = []
        self.done = threading.Event()
        self.client = socketio.Client(reconnection=True)
        for name in ("job.progress", "job.completed", "job.failed", "job.canceled"):
            self.client.on(name, self._handler(name))
        self.client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)

    def _handler(self, name: str):
        def handle(data: dict) -> None:
            self.events.append((name, data))
            if name == "job.failed" or (name == "job.completed" and data["kind"] == "karaoke"):
                self.done.set()
        return handle

    def subscribe(self, **room: str) -> dict:
        return self.client.call("subscribe", room, timeout=10)


def test_socketio_refuses_bad_tokens(stack):
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(stack.url, auth={"token": "garbage"}, transports=["websocket"], wait_timeout=5)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(stack.url, transports=["websocket"], wait_timeout=5)


def test_upload_auto_process_makes_karaoke(stack, shared_data, tmp_path):
    song_dir = shared_data / SONG_DIR
    token = stack.token("alice", "pw-alice-123")
    headers = {"Authorization": f"Bearer {token}"}
    listener = Listener(stack.url, token)
    lyrics_text = (song_dir / "lyrics.txt").read_text(encoding="utf-8")
    with open(song_dir / "audio.mp3", "rb") as fh:
        resp = requests.post(f"{stack.url}/api/v1/songs", headers=headers, timeout=60,
                             files={"file": ("better.mp3", fh, "audio/mpeg")},
                             data={"lyrics": lyrics_text, "language": "en", "title": TITLE, "artist": ARTIST,
                                   "auto_process": "true"})
    assert resp.status_code == 201, resp.text
    song = resp.json()
    assert song["karaoke"]["status"] in ("queued", "running")
    ack = listener.subscribe(song_id=song["id"])
    assert ack["ok"] is True, ack
    # someone else may not listen in
    intruder = Listener(stack.url, stack.token("bob", "pw-bob-12345"))
    assert intruder.subscribe(job_id="no-such-job")["ok"] is False

    assert listener.done.wait(timeout=900), stack.tail()
    listener.client.disconnect()
    intruder.client.disconnect()
    names = [n for n, _ in listener.events]
    assert "job.failed" not in names, listener.events[-3:]
    progress = [d for n, d in listener.events if n == "job.progress"]
    assert len(progress) >= 5 and all(0.0 <= d["progress"] <= 1.0 and d["song_id"] == song["id"] for d in progress)
    assert {d["kind"] for d in progress} >= {"separate", "transcribe"}
    assert {d["kind"] for n, d in listener.events if n == "job.completed"} == {"separate", "transcribe", "karaoke"}

    detail = requests.get(f"{stack.url}/api/v1/songs/{song['id']}", headers=headers, timeout=10).json()
    assert detail["karaoke"]["status"] == "completed", detail
    files = detail["karaoke"]["files"]
    assert set(files) == {"karaoke_mp3", "lrc", "words_lrc", "lyrics_json", "ass", "srt", "vtt", "ultrastar", "pitch"}
    quality = detail["karaoke"]["quality"]
    assert quality["words"] == quality["words_timed"] == 316 and 0 < quality["mean_confidence"] <= 1
    assert 0 <= quality["share_flagged"] < 0.5
    sep_job = next(j for j in detail["jobs"] if j["kind"] == "separate")
    assert sep_job["result"]["model"] == "spleeter" and sep_job["result"]["cache_hit"] is False

    lines = lyrics_lines(song_dir / "lyrics.txt")
    got = {}
    for name, url in files.items():
        r = requests.get(stack.url + url, headers=headers, timeout=30)
        assert r.status_code == 200
        got[name] = tmp_path / name
        got[name].write_bytes(r.content)
    check_karaoke_mp3(got["karaoke_mp3"], lines, TITLE, ARTIST)
    check_lrc(got["lrc"], len(lines))
    for name, fmt in (("ass", "ass"), ("srt", "srt"), ("vtt", "webvtt")):
        check_lrc(got[name], len(lines), fmt)
    check_words_lrc(got["words_lrc"].read_text(encoding="utf-8"), sum(len(x) for x in lines))
    check_timing_json(json.loads(got["lyrics_json"].read_text()), lines, song_dir / "words.json", 0.80)
    ultrastar = parse_ultrastar(got["ultrastar"].read_bytes())
    assert ultrastar.headers["MP3"].endswith(" (karaoke).mp3") and len(ultrastar.phrases) == len(lines)
    pitch = requests.get(f"{stack.url}/api/v1/songs/{song['id']}/pitch", headers=headers, timeout=10).json()
    assert len(pitch["notes"]) >= quality["words"] and sum(n["measured"] for n in pitch["notes"]) > 250

    # files lie in Karaoke-pjesme/<song-id>-<slug>/ and stems in outputs/<song-id>/<model>/
    folder = next((stack.root / "data" / "Karaoke-pjesme").glob(f"{song['id']}-*"))
    assert {p.suffix for p in folder.iterdir()} == {".mp3", ".lrc", ".json", ".ass", ".srt", ".vtt", ".txt"}
    assert (folder / ultrastar.headers["MP3"]).is_file()
    stems = stack.root / "data" / "outputs" / song["id"] / "spleeter"
    assert {p.name for p in stems.iterdir()} == {"vocals.flac", "instrumental.flac", "vocals.mp3", "instrumental.mp3"}

    # streamed with HTTP Range
    r = requests.get(f"{stack.url}/api/v1/songs/{song['id']}/files/instrumental", timeout=30,
                     headers=headers | {"Range": "bytes=100-199"})
    assert r.status_code == 206 and len(r.content) == 100
    assert r.headers["Content-Range"].startswith("bytes 100-199/")

    # re-running the karaoke step is idempotent: a cache hit, no recomputation
    r = requests.post(f"{stack.url}/api/v1/songs/{song['id']}/karaoke", headers=headers, json={}, timeout=10)
    assert r.status_code == 202 and [j["kind"] for j in r.json()["jobs"]] == ["karaoke"]
    job = _wait_job(stack, headers, r.json()["id"])
    assert job["status"] == "completed" and job["result"]["cache_hit"] is True

    # a lyrics edit: a new revision, re-timed; the lines that did not change keep their timing
    before = json.loads(got["lyrics_json"].read_text())["lines"]
    edited = lyrics_text.replace("When was the moment", "When was that moment", 1)
    r = requests.put(f"{stack.url}/api/v1/songs/{song['id']}/lyrics", headers=headers, json={"lyrics": edited},
                     timeout=10)
    assert r.status_code == 202 and r.json()["revision"]["number"] == 2
    assert [j["kind"] for j in r.json()["jobs"]] == ["transcribe", "karaoke"]
    transcribe_job = _wait_job(stack, headers, r.json()["jobs"][0]["id"], timeout=300)
    assert transcribe_job["status"] == "completed" and transcribe_job["result"]["lines_kept"] == len(before) - 1
    assert _wait_job(stack, headers, r.json()["jobs"][1]["id"])["status"] == "completed"
    after = requests.get(stack.url + files["lyrics_json"], headers=headers, timeout=10).json()["lines"]
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert after[1]["text"] == "When was that moment" and 1 in changed
    assert all(before[i]["start"] == after[i]["start"] for i in range(len(before)) if i != 1)

    # undoing the edit reuses the first timing (cache hit) and the karaoke files show it again
    r = requests.put(f"{stack.url}/api/v1/songs/{song['id']}/lyrics", headers=headers, json={"lyrics": lyrics_text},
                     timeout=10)
    assert r.status_code == 202 and r.json()["revision"]["number"] == 3
    assert _wait_job(stack, headers, r.json()["jobs"][0]["id"])["result"]["cache_hit"] is True
    assert _wait_job(stack, headers, r.json()["jobs"][1]["id"])["status"] == "completed"
    restored = requests.get(stack.url + files["lyrics_json"], headers=headers, timeout=10).json()["lines"]
    assert restored == before
    detail = requests.get(f"{stack.url}/api/v1/songs/{song['id']}", headers=headers, timeout=10).json()
    assert detail["karaoke"]["quality"] == quality


def _wait_job(stack, headers: dict, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{stack.url}/api/v1/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["status"] in ("completed", "failed", "canceled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def test_cli_karaoke_make(stack, shared_data):
    """The same pipeline through `flask karaoke make`, on the same worker: models already cached."""
    song_dir = shared_data / SONG_DIR
    done = stack.flask("karaoke", "make", str(song_dir / "audio.mp3"), "--lyrics", str(song_dir / "lyrics.txt"),
                       "--language", "en", "--title", TITLE, "--artist", ARTIST, "--user", "bob", timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr + stack.tail()
    paths = dict(re.findall(r"^(\w+): (/.+)$", done.stdout, re.M))
    assert set(paths) == {"karaoke_mp3", "lrc", "words_lrc", "lyrics_json", "ass", "srt", "vtt", "ultrastar",
                          "pitch"}, done.stdout
    lines = lyrics_lines(song_dir / "lyrics.txt")
    check_karaoke_mp3(Path(paths["karaoke_mp3"]), lines, TITLE, ARTIST)
    check_lrc(Path(paths["lrc"]), len(lines))
    check_timing_json(json.loads(Path(paths["lyrics_json"]).read_text()), lines, song_dir / "words.json", 0.80)

    token = stack.token("bob", "pw-bob-12345")
    headers = {"Authorization": f"Bearer {token}"}
    songs = requests.get(f"{stack.url}/api/v1/songs", headers=headers, timeout=10).json()["items"]
    jobs = requests.get(f"{stack.url}/api/v1/songs/{songs[0]['id']}", headers=headers, timeout=10).json()["jobs"]
    # the worker loaded its models for an earlier job: this one spent no time loading
    for job in jobs:
        if job["kind"] in ("separate", "transcribe"):
            assert job["result"]["load_seconds"] == 0.0, job
