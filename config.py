"""Configuration: defaults in code, environment overrides, a test mapping passed to create_app.

Nothing here runs at import time; ``load_config`` is called by the application factory.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent
DEV_SECRET = "dev-secret-change-me"  # noqa: S105 - refused in production

# name -> (type, default); every name may be overridden by the environment variable of the same name.
ENV_SETTINGS: dict[str, tuple[type, Any]] = {
    "DATABASE_URL": (str, None),
    "REDIS_URL": (str, None),
    "EMBEDDED_REDIS_PORT": (int, 6390),
    "PORT": (int, 5000),
    "HOST": (str, "127.0.0.1"),
    "DATA_DIR": (str, str(REPO_ROOT)),
    "UPLOAD_DIR": (str, None),
    "OUTPUT_DIR": (str, None),
    "KARAOKE_DIR": (str, None),
    "MODELS_DIR": (str, None),
    "INSTANCE_DIR": (str, None),
    "MAX_UPLOAD_MB": (int, 200),
    "MAX_DURATION_S": (int, 1200),
    "SECRET_KEY": (str, DEV_SECRET),
    "JWT_SECRET_KEY": (str, DEV_SECRET),
    "JWT_ACCESS_MINUTES": (int, 60),
    "JWT_REFRESH_DAYS": (int, 30),
    "LOGIN_MAX_FAILURES": (int, 10),
    "LOGIN_LOCKOUT_S": (int, 900),
    "PROXY_HOPS": (int, 0),
    "APP_ENV": (str, "development"),
    "DEVICE": (str, "auto"),
    "WORKER_CONCURRENCY": (int, 1),
    "WORKER_QUEUES": (str, "separation,transcription,default"),
    "TORCH_THREADS": (int, 0),
    "WHISPER_WORKERS": (int, 0),
    "CORS_ORIGINS": (str, "*"),
    "WARM_MODELS": (int, 1),
    "SEPARATION_COMPILE": (int, 0),
}


class ConfigError(RuntimeError):
    """The configuration cannot be used (e.g. default secrets in production)."""


def _coerce(kind: type, raw: str) -> Any:
    if kind is int:
        return int(raw)
    return raw


def load_config(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the settings mapping: defaults, then environment, then ``overrides`` (tests)."""
    env = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    cfg: dict[str, Any] = {}
    for name, (kind, default) in ENV_SETTINGS.items():
        if name in overrides:
            cfg[name] = overrides.pop(name)
        elif env.get(name):
            cfg[name] = _coerce(kind, env[name])
        else:
            cfg[name] = default
    _derive_paths(cfg)
    cfg.update(_flask_settings(cfg))
    cfg.update(overrides)
    _check_production(cfg)
    return cfg


def _derive_paths(cfg: dict[str, Any]) -> None:
    data = Path(cfg["DATA_DIR"]).resolve()
    cfg["DATA_DIR"] = str(data)
    defaults = {
        "UPLOAD_DIR": data / "uploads",
        "OUTPUT_DIR": data / "outputs",
        "KARAOKE_DIR": data / "Karaoke-pjesme",
        "MODELS_DIR": data / "models",
        "INSTANCE_DIR": data / "instance",
    }
    for key, default in defaults.items():
        cfg[key] = str(Path(cfg[key]).resolve()) if cfg[key] else str(default)
    if not cfg["DATABASE_URL"]:
        cfg["DATABASE_URL"] = f"sqlite:///{Path(cfg['INSTANCE_DIR']) / 'karaoke.sqlite3'}"


def database_engine_options(url: str) -> dict[str, Any]:
    """Engine options per backend: SQLite needs a busy timeout for the web + worker processes."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_recycle": 1800}
    if url.startswith("mssql+pyodbc"):
        options["fast_executemany"] = True
    return options


def _flask_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": cfg["DATABASE_URL"],
        "SQLALCHEMY_ENGINE_OPTIONS": database_engine_options(cfg["DATABASE_URL"]),
        "MAX_CONTENT_LENGTH": cfg["MAX_UPLOAD_MB"] * 1024 * 1024 + 1024 * 1024,  # + form fields
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=cfg["JWT_ACCESS_MINUTES"]),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=cfg["JWT_REFRESH_DAYS"]),
        "JSON_SORT_KEYS": False,
    }


def _check_production(cfg: dict[str, Any]) -> None:
    if cfg["APP_ENV"] != "production":
        return
    for key in ("SECRET_KEY", "JWT_SECRET_KEY"):
        if cfg[key] == DEV_SECRET or len(str(cfg[key])) < 32:
            raise ConfigError(f"{key} must be set to a secret of at least 32 characters in production")
