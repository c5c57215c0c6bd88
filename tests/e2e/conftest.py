"""The real stack for end-to-end tests: web server + Celery worker processes against a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO, free_port, redis_db


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    root: Path
    logs: Path

    def token(self, username: str, password: str) -> str:
        resp = requests.post(f"{self.url}/api/v1/auth/token", json={"username": username, "password": password},
                             timeout=10)
        resp.raise_for_status()
        return resp.json()["access_token"]

    def flask(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-4000:] for p in self.logs.glob("*.log"))


def _wait_healthy(url: str, procs: list[subprocess.Popen], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a stack process exited early")
        try:
            last = requests.get(f"{url}/health", timeout=5).json()
            if last.get("status") == "ok":
                return last
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"stack not healthy: {last}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: str, models_dir: Path):
    root = tmp_path_factory.mktemp("stack")
    logs = root / "logs"
    logs.mkdir()
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATA_DIR=str(root / "data"), DATABASE_URL=f"sqlite:///{root / 'karaoke.sqlite3'}",
        REDIS_URL=redis_db(redis_server, 2), MODELS_DIR=str(models_dir), PORT=str(port), HOST="127.0.0.1",
        EMBEDDED_WORKER="0", SECRET_KEY="e2e-secret-key-0123456789-abcdefghij",
        JWT_SECRET_KEY="e2e-jwt-secret-0123456789-abcdefghij",
        PYTHONUNBUFFERED="1",
    )
    stack = Stack(f"http://127.0.0.1:{port}", env, root, logs)
    for cmd in (["db", "upgrade"], ["users", "create", "alice", "--password", "pw-alice-123"],
                ["users", "create", "bob", "--password", "pw-bob-12345", "--admin"]):
        done = stack.flask(*cmd)
        assert done.returncode == 0, done.stderr
    web = subprocess.Popen([sys.executable, "-m", "app.launcher"], cwd=REPO, env=env,
                           stdout=open(logs / "web.log", "w"), stderr=subprocess.STDOUT)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_worker.celery", "worker", "-Q",
         "separation,transcription,default", "-c", "1", "-n", f"e2e-{port}@%h", "--loglevel", "INFO"],
        cwd=REPO, env=env, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT)
    try:
        _wait_healthy(stack.url, [web, worker])
        yield stack
    except Exception:
        print(stack.tail())
        raise
    finally:
        for proc in (web, worker):
            proc.terminate()
        for proc in (web, worker):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
