"""Tokens and ownership: a missing, expired or foreign token never reaches another user's song."""

from __future__ import annotations

import io
from datetime import timedelta

from flask_jwt_extended import create_access_token

SONG = "separation/musicdelta-80s-rock/mixture.flac"


def test_token_roundtrip_and_bad_credentials(client, make_user):
    make_user("carol", "pw-carol-123")
    resp = client.post("/api/v1/auth/token", json={"username": "carol", "password": "wrong"})
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "invalid_credentials"
    resp = client.post("/api/v1/auth/token", json={"username": "carol"})
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "bad_request"
    tokens = client.post("/api/v1/auth/token", json={"username": "carol", "password": "pw-carol-123"}).get_json()
    assert set(tokens) >= {"access_token", "refresh_token"}
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.get_json()["username"] == "carol"
    refreshed = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert refreshed.status_code == 200 and refreshed.get_json()["access_token"]
    # a refresh token is not an access token
    refresh_as_access = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    assert client.get("/api/v1/songs", headers=refresh_as_access).status_code == 401


def test_missing_token(client):
    resp = client.get("/api/v1/songs")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "missing_token"
    resp = client.post("/api/v1/songs", data={})
    assert resp.status_code == 401


def test_expired_token(app, client, make_user):
    user_id = make_user("dave", "pw-dave-1234")
    with app.app_context():
        expired = create_access_token(str(user_id), expires_delta=timedelta(seconds=-10))
    resp = client.get("/api/v1/songs", headers={"Authorization": f"Bearer {expired}"})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "token_expired"


def test_garbage_token(client):
    resp = client.get("/api/v1/songs", headers={"Authorization": "Bearer not.a.jwt"})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "invalid_token"


def test_other_users_song_is_404_everywhere(app, client, auth, make_user, shared_data):
    song = client.post("/api/v1/songs", headers=auth, content_type="multipart/form-data",
                       data={"file": (io.BytesIO((shared_data / SONG).read_bytes()), "mix.flac")}).get_json()
    make_user("eve", "pw-eve-12345")
    eve_token = client.post("/api/v1/auth/token", json={"username": "eve", "password": "pw-eve-12345"}).get_json()
    eve = {"Authorization": f"Bearer {eve_token['access_token']}"}
    sid = song["id"]
    for method, url in [("get", f"/api/v1/songs/{sid}"), ("delete", f"/api/v1/songs/{sid}"),
                        ("post", f"/api/v1/songs/{sid}/separate"), ("post", f"/api/v1/songs/{sid}/karaoke"),
                        ("get", f"/api/v1/songs/{sid}/files/original"), ("get", f"/api/v1/songs/{sid}/files/lrc")]:
        resp = getattr(client, method)(url, headers=eve, json={} if method == "post" else None)
        assert resp.status_code == 404, (method, url, resp.get_json())
        assert resp.get_json()["error"]["code"] == "song_not_found"
    assert client.get("/api/v1/songs", headers=eve).get_json()["total"] == 0
    # the owner still has it
    assert client.get(f"/api/v1/songs/{sid}", headers=auth).status_code == 200
    # an admin may see it
    make_user("root", "pw-root-12345", admin=True)
    root_token = client.post("/api/v1/auth/token", json={"username": "root", "password": "pw-root-12345"}).get_json()
    resp = client.get(f"/api/v1/songs/{sid}", headers={"Authorization": f"Bearer {root_token['access_token']}"})
    assert resp.status_code == 200


def test_unknown_routes_are_json(client, auth):
    resp = client.get("/api/v1/nope", headers=auth)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    resp = client.put("/api/v1/songs", headers=auth)
    assert resp.status_code == 405 and resp.get_json()["error"]["code"] == "method_not_allowed"


def test_repeated_wrong_passwords_are_throttled(tmp_path, redis_server, models_dir):
    """After LOGIN_MAX_FAILURES wrong passwords for one username from one address, the token
    endpoint answers 429 with Retry-After, even for the right password, until the lockout passes;
    a success resets the count. Without Redis, logins are not throttled."""
    import time
    import uuid

    from app.auth import create_user
    from tests.conftest import make_app, redis_db

    app = make_app(tmp_path, redis_db(redis_server, 1), models_dir, LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_S=2)
    client = app.test_client()
    name, other = f"dave-{uuid.uuid4().hex[:8]}", f"erin-{uuid.uuid4().hex[:8]}"
    with app.app_context():
        create_user(name, "pw-dave-12345")
        create_user(other, "pw-erin-12345")

    def login(user: str, password: str):
        return client.post("/api/v1/auth/token", json={"username": user, "password": password})

    assert [login(name, "wrong").status_code for _ in range(2)] == [401, 401]
    assert login(name, "pw-dave-12345").status_code == 200  # a success resets the count
    assert [login(name, "wrong").status_code for _ in range(3)] == [401, 401, 401]
    locked = login(name, "pw-dave-12345")
    assert locked.status_code == 429 and locked.get_json()["error"]["code"] == "too_many_attempts"
    assert 1 <= int(locked.headers["Retry-After"]) <= 2 and locked.get_json()["retry_after"] >= 1
    assert login(other, "pw-erin-12345").status_code == 200  # other users are not locked out
    time.sleep(2.2)
    assert login(name, "pw-dave-12345").status_code == 200

    down = make_app(tmp_path / "down", "redis://127.0.0.1:9/0", models_dir, LOGIN_MAX_FAILURES=1)
    with down.app_context():
        create_user(name, "pw-dave-12345")
    client = down.test_client()
    assert [client.post("/api/v1/auth/token", json={"username": name, "password": p}).status_code
            for p in ("wrong", "wrong", "pw-dave-12345")] == [401, 401, 200]


def test_behind_a_proxy_each_client_address_counts_on_its_own(tmp_path, redis_server, models_dir):
    """With PROXY_HOPS=1 the throttle keys on X-Forwarded-For: one client's wrong passwords do not
    lock the same username out for the others behind the same proxy."""
    import uuid

    from app.auth import create_user
    from tests.conftest import make_app, redis_db

    app = make_app(tmp_path, redis_db(redis_server, 1), models_dir, LOGIN_MAX_FAILURES=2, PROXY_HOPS=1)
    client = app.test_client()
    name = f"fred-{uuid.uuid4().hex[:8]}"
    with app.app_context():
        create_user(name, "pw-fred-12345")

    def login(address: str, password: str) -> int:
        return client.post("/api/v1/auth/token", json={"username": name, "password": password},
                           headers={"X-Forwarded-For": address}).status_code

    assert [login("203.0.113.7", "wrong") for _ in range(3)] == [401, 401, 429]
    assert login("198.51.100.20", "pw-fred-12345") == 200
    assert login("203.0.113.7", "pw-fred-12345") == 429
