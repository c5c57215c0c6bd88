"""Alembic environment.

Inside Flask (``flask db upgrade``) the URL and metadata come from the app. Plain alembic works too,
without an app or a database driver, e.g. to render SQL Server DDL offline:
``alembic -c migrations/alembic.ini -x url=mssql+pyodbc://... upgrade head --sql``.
"""

import logging
import sys
from logging.config import fileConfig
from pathlib import Path

from alembic import context

config = context.config
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def _flask_db():
    try:
        from flask import current_app

        return current_app.extensions["migrate"].db
    except (RuntimeError, KeyError):
        return None


target_db = _flask_db()
x_args = context.get_x_argument(as_dictionary=True)
if target_db is not None:
    url = target_db.engine.url.render_as_string(hide_password=False)
    metadata = target_db.metadata
    configure_args = dict(__import__("flask").current_app.extensions["migrate"].configure_args)
else:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import app.models  # noqa: F401  (registers the tables)
    from app.extensions import db

    url = x_args.get("url") or config.get_main_option("sqlalchemy.url")
    metadata = db.metadata
    configure_args = {}
configure_args.setdefault("render_as_batch", True)  # SQLite needs batch mode to alter tables


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, **configure_args)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    def process_revision_directives(ctx, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    configure_args.setdefault("process_revision_directives", process_revision_directives)
    if target_db is not None:
        connectable = target_db.engine
    else:
        from sqlalchemy import create_engine

        connectable = create_engine(url)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, **configure_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
