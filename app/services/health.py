"""Health of the pieces a request needs: database, broker, workers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.services.broker import redis_alive


def workers_seen(timeout: float = 1.0) -> list[str]:
    celery_app = current_app.extensions["celery"]
    try:
        replies = celery_app.control.ping(timeout=timeout) or []
    except Exception:  # noqa: BLE001 - an unreachable broker means no workers seen
        return []
    return sorted(name for reply in replies for name in reply)


def check_health() -> dict[str, Any]:
    report: dict[str, Any] = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        report["database"] = {"ok": True, "dialect": db.engine.dialect.name}
    except Exception as exc:  # noqa: BLE001
        report["database"] = {"ok": False, "error": str(exc).splitlines()[0]}
    broker_ok = redis_alive(current_app.config["REDIS_URL"])
    report["broker"] = {"ok": broker_ok}
    workers = workers_seen() if broker_ok else []
    report["workers"] = {"ok": bool(workers), "seen": workers}
    if not report["database"]["ok"]:
        report["status"] = "down"
    elif broker_ok and workers:
        report["status"] = "ok"
    else:
        report["status"] = "degraded"
    return report
