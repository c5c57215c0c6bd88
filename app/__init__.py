"""Application factory: a few small register_* steps, nothing else."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from config import load_config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app. ``config`` overrides defaults and environment (tests pass a mapping)."""
    app = Flask(__name__)
    app.config.from_mapping(load_config(config))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    register_paths(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_realtime(app)
    register_cli(app)
    if app.config["PROXY_HOPS"]:  # behind proxies: the client address (login throttling, logs) from X-Forwarded-*
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app


def register_paths(app: Flask) -> None:
    from app.services.broker import resolve_redis_url

    for key in ("UPLOAD_DIR", "OUTPUT_DIR", "KARAOKE_DIR", "MODELS_DIR", "INSTANCE_DIR"):
        Path(app.config[key]).mkdir(parents=True, exist_ok=True)
    app.config["REDIS_URL"] = resolve_redis_url(app.config)


def register_extensions(app: Flask) -> None:
    from app import auth  # noqa: F401  (JWT loaders)
    from app.celery_app import celery_init_app
    from app.extensions import db, jwt, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    jwt.init_app(app)
    celery_init_app(app)


def register_blueprints(app: Flask) -> None:
    from app.blueprints import ALL_BLUEPRINTS

    for blueprint in ALL_BLUEPRINTS:
        app.register_blueprint(blueprint)


def register_errorhandlers(app: Flask) -> None:
    from app.errors import register_errorhandlers as register

    register(app)


def register_realtime(app: Flask) -> None:
    from app.realtime import init_realtime

    init_realtime(app)


def register_cli(app: Flask) -> None:
    from app.cli import register_commands

    register_commands(app)
