"""Migrations are the schema: they match the models on SQLite and PostgreSQL, and render for SQL Server."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade

from app.extensions import db
from app.models import Artifact, Job, Song, User
from tests.conftest import REPO, make_app, redis_db

TABLES = {"users", "songs", "jobs", "artifacts", "lyrics_revisions", "alembic_version"}


def exercise_schema(app) -> None:
    """Upgrade is done by make_app: the models must match it exactly and round-trip real rows."""
    with app.app_context():
        assert TABLES <= set(sa.inspect(db.engine).get_table_names())
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        user = User(username="žarko", is_admin=True)
        user.set_password("pw")
        song = Song(owner=user, title="Pjesma – čćžšđ", artist="Artist", original_filename="p.mp3",
                    upload_path="/x/p.mp3", sha256="a" * 64, size_bytes=1, duration_s=1.5, sample_rate=44100,
                    channels=2, codec="mp3", lyrics="riječi\n" * 1000)
        db.session.add(song)
        db.session.flush()
        job = Job(song=song, owner_id=user.id, kind="separate", params={"model": "spleeter", "x": [1, 2]},
                  depends_on=["a", "b"])
        db.session.add_all([job, Artifact(song=song, kind="lrc", path="/x/ü.lrc", mime="text/plain")])
        db.session.commit()
        db.session.expire_all()
        again = db.session.get(Song, song.id)
        assert again.title == "Pjesma – čćžšđ" and again.lyrics.count("riječi") == 1000
        assert again.jobs[0].params == {"model": "spleeter", "x": [1, 2]}
        duplicate = Song(owner_id=user.id, title="t", original_filename="p.mp3", upload_path="/y", sha256="a" * 64,
                         size_bytes=1, duration_s=1, sample_rate=1, channels=1, codec="mp3")
        db.session.add(duplicate)
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.delete(again)  # cascades to jobs and artifacts
        db.session.commit()
        assert db.session.execute(sa.select(sa.func.count()).select_from(Job)).scalar() == 0
        db.session.remove()  # release the locks a still-open transaction holds (PostgreSQL waits on them)
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}


def test_sqlite_schema(tmp_path, redis_server, models_dir):
    exercise_schema(make_app(tmp_path, redis_db(redis_server, 1), models_dir))


def test_postgres_schema(tmp_path, redis_server, models_dir, postgres_url):
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {', '.join(sorted(TABLES))} CASCADE"))
    engine.dispose()
    app = make_app(tmp_path, redis_db(redis_server, 1), models_dir, database_url=postgres_url)
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
    exercise_schema(app)


def test_mssql_ddl_renders_offline():
    url = "mssql+pyodbc://user:pw@sqlhost/karaoke?driver=ODBC+Driver+18+for+SQL+Server"
    out = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "migrations" / "alembic.ini"), "-x", f"url={url}",
         "upgrade", "head", "--sql"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    ddl = out.stdout
    for table in ("users", "songs", "jobs", "artifacts", "lyrics_revisions"):
        assert f"CREATE TABLE {table}" in ddl
    assert "IDENTITY" in ddl  # users.id autoincrement the SQL Server way
    assert "title NVARCHAR(255) NOT NULL" in ddl  # unicode titles survive on SQL Server
    assert "lyrics NVARCHAR(max)" in ddl
    assert "CONSTRAINT uq_songs_owner_sha256 UNIQUE (owner_id, sha256)" in ddl
    assert "ON DELETE CASCADE" in ddl
    assert "GO" in ddl  # batch separators for sqlcmd


def test_mssql_url_configures_engine():
    from config import load_config

    cfg = load_config({"DATABASE_URL": "mssql+pyodbc://u:p@h/db?driver=ODBC+Driver+18+for+SQL+Server"}, environ={})
    assert cfg["SQLALCHEMY_DATABASE_URI"].startswith("mssql+pyodbc://")
    assert cfg["SQLALCHEMY_ENGINE_OPTIONS"]["fast_executemany"] is True
    assert cfg["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
