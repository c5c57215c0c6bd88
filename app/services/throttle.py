"""Failed-login throttling: after LOGIN_MAX_FAILURES wrong passwords for one username from one
address, ``POST /auth/token`` answers 429 until LOGIN_LOCKOUT_S have passed since the last failure.

Counters live in Redis (``REDIS_URL``), so every web process shares them. When Redis does not
answer, logins are not throttled (the failure is logged): a broker outage must not lock users out.
"""

from __future__ import annotations

import logging

import redis
from flask import current_app

from app.errors import ApiError

log = logging.getLogger(__name__)


def _client() -> redis.Redis:
    client = current_app.extensions.get("throttle_redis")
    if client is None:
        client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=1.0,
                                      socket_connect_timeout=1.0)
        current_app.extensions["throttle_redis"] = client
    return client


def _key(username: str, address: str | None) -> str:
    return f"login-failures:{address or '-'}:{username}"


def check_login(username: str, address: str | None) -> None:
    """ApiError 429 (with ``retry_after`` seconds) when this username and address are locked out."""
    key = _key(username, address)
    try:
        if int(_client().get(key) or 0) < current_app.config["LOGIN_MAX_FAILURES"]:
            return
        wait = int(_client().ttl(key))  # -2: expired meanwhile; -1: no expiry (set by hand)
    except redis.RedisError as exc:
        log.warning("login throttling unavailable: %s", exc)
        return
    if wait != -2:
        wait = wait if wait > 0 else current_app.config["LOGIN_LOCKOUT_S"]
        raise ApiError(429, "too_many_attempts", f"Too many failed logins for {username!r}; try again in {wait} s",
                       retry_after=wait)


def login_failed(username: str, address: str | None) -> None:
    """Count a failed login; the lockout window restarts with each failure."""
    key = _key(username, address)
    try:
        pipe = _client().pipeline()
        pipe.incr(key)
        pipe.expire(key, current_app.config["LOGIN_LOCKOUT_S"])
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("login throttling unavailable: %s", exc)


def login_succeeded(username: str, address: str | None) -> None:
    try:
        _client().delete(_key(username, address))
    except redis.RedisError as exc:
        log.warning("login throttling unavailable: %s", exc)
