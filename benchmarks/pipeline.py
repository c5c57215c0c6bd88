"""Karaoke pipeline benchmark: the product's own path (ingest -> Redis -> Celery worker -> files).

Runs one song from ../shared/data/songs-en twice through a real worker process (cold: models load
in the first job; warm: cached) and prints song duration, time per stage, total wall time, the sum
of pure model compute, and the overhead ratio total / model compute.

    .venv/bin/python benchmarks/pipeline.py [--song jonathan-coulton-better]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SONGS = REPO.parent / "shared" / "data" / "songs-en"


def start_stack(root: Path) -> tuple[dict[str, str], list[subprocess.Popen]]:
    from app.services.broker import redis_alive, start_embedded_redis

    procs: list[subprocess.Popen] = []
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        redis_url = "redis://127.0.0.1:6379/11"
        if not redis_alive(redis_url):
            procs.append(start_embedded_redis(root / "redis", 6391))
            redis_url = "redis://127.0.0.1:6391/0"
    env = dict(os.environ, DATA_DIR=str(root / "data"), DATABASE_URL=f"sqlite:///{root / 'bench.sqlite3'}",
               REDIS_URL=redis_url, MODELS_DIR=os.environ.get("MODELS_DIR", str(root / "models")),
               WARM_MODELS="0")
    os.environ.update(env)
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_worker.celery", "worker", "-Q",
         "separation,transcription,default", "-c", "1", "-n", "bench@%h", "--loglevel", "WARNING"],
        cwd=REPO, env=env, stdout=open(root / "worker.log", "w"), stderr=subprocess.STDOUT))
    return env, procs


def run_once(app, username: str, song_dir: Path) -> dict:
    from werkzeug.datastructures import FileStorage

    from app.auth import create_user
    from app.extensions import db
    from app.models import Song
    from app.services import songs as song_service
    from app.services.ingest import ingest_upload, parse_upload_form
    from app.services.jobs import consolidated_status

    audio = next(song_dir.glob("audio.*"))
    with app.app_context():
        user = create_user(username, "bench-password")
        form = parse_upload_form({"lyrics": (song_dir / "lyrics.txt").read_text(), "language": "en",
                                  "auto_process": "true", "title": song_dir.name})
        started = time.perf_counter()
        song = ingest_upload(user, FileStorage(io.BytesIO(audio.read_bytes()), filename=audio.name), form)
        ingest_s = time.perf_counter() - started
        song_service.start_auto(song, form)
        song_id = song.id
        while True:
            db.session.expire_all()
            song = db.session.get(Song, song_id)
            status = consolidated_status(song)["status"]
            if status in ("completed", "failed", "canceled"):
                break
            time.sleep(0.1)
        total = time.perf_counter() - started
        if status != "completed":
            raise SystemExit(f"pipeline {status}: {consolidated_status(song).get('error')}")
        jobs = {j.kind: j for j in song.jobs}
        return {"duration": song.duration_s, "ingest": ingest_s, "total": total, "jobs": {
            kind: {"queue_wait": (j.started_at - j.created_at).total_seconds(),
                   "wall": j.result.get("wall_seconds", 0.0), "load": j.result.get("load_seconds", 0.0),
                   "compute": j.result.get("compute_seconds", 0.0)} for kind, j in jobs.items()}}


def report(label: str, r: dict) -> None:
    compute = sum(j["compute"] for j in r["jobs"].values())
    print(f"\n[{label}] song duration {r['duration']:.1f} s; ingest (hash+probe+store) {r['ingest']:.2f} s")
    print(f"  {'stage':<11}{'wait s':>8}{'wall s':>9}{'load s':>9}{'model s':>9}")
    for kind, j in r["jobs"].items():
        print(f"  {kind:<11}{j['queue_wait']:>8.2f}{j['wall']:>9.2f}{j['load']:>9.2f}{j['compute']:>9.2f}")
    print(f"  total wall time (upload -> karaoke files): {r['total']:.2f} s  "
          f"(real-time factor {r['total'] / r['duration']:.3f})")
    print(f"  sum of pure model compute: {compute:.2f} s")
    print(f"  overhead ratio total / model compute: {r['total'] / compute:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--song", default="jonathan-coulton-better")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        env, procs = start_stack(root)
        try:
            from flask_migrate import upgrade

            from app import create_app
            from app.services.health import workers_seen

            app = create_app({"SOCKETIO_MESSAGE_QUEUE": False})
            with app.app_context():
                upgrade()
                deadline = time.monotonic() + 120
                while not workers_seen(1.0) and time.monotonic() < deadline:
                    time.sleep(0.5)
            cold = run_once(app, "bench-cold", SONGS / args.song)
            warm = run_once(app, "bench-warm", SONGS / args.song)
            print(f"karaoke pipeline benchmark: {args.song}, torch threads={os.cpu_count()} cores")
            report("cold worker: models load in the first job", cold)
            report("warm worker: models cached", warm)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
