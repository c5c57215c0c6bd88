"""Lyrics edits over REST: revisions are kept, the karaoke is re-timed, bad bodies are refused."""

from __future__ import annotations

import io

SONG = "separation/musicdelta-80s-rock/mixture.flac"


def _song(client, auth, shared_data, **fields) -> dict:
    data = {"file": (io.BytesIO((shared_data / SONG).read_bytes()), "mix.flac"), **fields}
    return client.post("/api/v1/songs", data=data, headers=auth, content_type="multipart/form-data").get_json()


def test_each_edit_is_a_revision_and_starts_a_retiming(client, auth, shared_data):
    song = _song(client, auth, shared_data, lyrics="first line\nsecond line")
    url = f"/api/v1/songs/{song['id']}/lyrics"
    history = client.get(url, headers=auth).get_json()
    assert [r["number"] for r in history["revisions"]] == [1] and history["current"] == "first line\nsecond line"

    resp = client.put(url, headers=auth, json={"lyrics": "first line\nsecond line, fixed"})
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["revision"]["number"] == 2
    assert [j["kind"] for j in body["jobs"]] == ["separate", "transcribe", "karaoke"]  # no stems yet

    busy = client.put(url, headers=auth, json={"lyrics": "third try"})
    assert busy.status_code == 409 and busy.get_json()["error"]["code"] == "job_active"
    same = client.put(url, headers=auth, json={"lyrics": "first line\nsecond line, fixed\n"})
    assert same.status_code == 200 and same.get_json()["jobs"] == []
    history = client.get(url, headers=auth).get_json()
    assert [r["text"] for r in history["revisions"]] == ["first line\nsecond line", "first line\nsecond line, fixed"]
    assert client.get(f"/api/v1/songs/{song['id']}", headers=auth).get_json()["has_lyrics"] is True


def test_bad_lyrics_bodies(client, auth, shared_data):
    song = _song(client, auth, shared_data)
    url = f"/api/v1/songs/{song['id']}/lyrics"
    cases = [
        (None, "invalid_parameter"), ({}, "invalid_parameter"), ({"lyrics": ""}, "invalid_parameter"),
        ({"lyrics": 42}, "invalid_parameter"), ({"lyrics": "x" * 50_001}, "invalid_parameter"),
        ({"lyrics": "[Chorus]\n[Verse]"}, "invalid_lyrics"),
        ({"lyrics": "#TITLE:A\n#ARTIST:B\n#BPM:300\n: 0 4 x la\nE"}, "invalid_lyrics"),  # pitch not a number
        ({"lyrics": "[00:01.00]one\ntwo\n[00:03.00]three"}, "invalid_lyrics"),  # an untimed line in an LRC
    ]
    for body, code in cases:
        resp = client.put(url, headers=auth, json=body)
        assert resp.status_code == 400, body
        assert resp.get_json()["error"]["code"] == code, body
    assert client.get(url, headers=auth).get_json()["revisions"] == []
