"""Flask commands: ``users``, ``models``, ``karaoke make`` (the pipeline with a progress bar)."""

from __future__ import annotations

import importlib.util
import io
import json
import time
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from werkzeug.datastructures import FileStorage

users_cli = AppGroup("users", help="Manage users.")
models_cli = AppGroup("models", help="List and install models.")
karaoke_cli = AppGroup("karaoke", help="Make karaoke files from the command line.")


@users_cli.command("create")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="Give the user admin rights.")
def create_user_cmd(username: str, password: str, admin: bool) -> None:
    """Create a user who can log in to the API."""
    from app.auth import create_user

    try:
        user = create_user(username, password, is_admin=admin)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created user {user.username} (id {user.id}{', admin' if admin else ''})")


@models_cli.command("list")
def list_models_cmd() -> None:
    """Show every model and whether it can run here."""
    from app.services.models_catalog import list_models

    click.echo(json.dumps(list_models(), indent=2))


@models_cli.command("fetch")
@click.argument("name")
@click.option("--root-url", envvar="DEMUCS_DOWNLOAD_ROOT", default=None,
              help="Release root to download from (default: the one demucs uses; env DEMUCS_DOWNLOAD_ROOT).")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to connect and per read; no retries.")
def fetch_model_cmd(name: str, root_url: str | None, timeout: float) -> None:
    """Download the weights of Demucs model NAME into MODELS_DIR/demucs, checksum-verified."""
    from flask import current_app

    from app.audio import separation, whisper_models
    from app.audio.separation import weights

    demucs_names = [n for n, spec in separation.CATALOG.items() if spec.engine == "demucs"]
    if name not in demucs_names:
        if name in separation.CATALOG or name in whisper_models.CATALOG:
            hint = ("its weights ship inside a Python package" if name in ("spleeter", "tiny.en", "base")
                    else "put a CTranslate2 model folder at MODELS_DIR/whisper/" + name)
            raise click.ClickException(f"{name!r} is not fetched by this command ({hint}); "
                                       f"fetchable models: {', '.join(demucs_names)}")
        raise click.ClickException(f"unknown model {name!r}; fetchable models: {', '.join(demucs_names)}")
    models_dir = current_app.config["MODELS_DIR"]
    try:
        weights.fetch(name, models_dir, root_url=root_url, timeout=timeout,
                      on_file=lambda filename, state: click.echo(f"{filename}: {state}"))
    except weights.FetchError as exc:
        hint = "" if "checksum" in str(exc) else (
            f" (no network here? copy the files listed by `flask models list` into "
            f"{weights.local_repo.repo_dir(models_dir)})")
        raise click.ClickException(f"{name}: {exc}{hint}") from None
    click.echo(f"{name}: installed in {weights.local_repo.repo_dir(models_dir)}")
    if missing := [r for r in (["diffq"] if separation.CATALOG[name].needs_diffq else [])
                   if importlib.util.find_spec(r) is None]:
        click.echo(f"{name}: note: it also needs the Python package(s) {', '.join(missing)}, not installed here")


def _owner(username: str | None):
    from app.extensions import db
    from app.models import User

    query = db.select(User).filter_by(username=username) if username else db.select(User).order_by(
        User.is_admin.desc(), User.id)
    user = db.session.execute(query).scalars().first()
    if user is None:
        raise click.ClickException("no such user; create one with `flask users create NAME --admin`")
    return user


@karaoke_cli.command("make")
@click.argument("song", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lyrics", "lyrics_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--language", default=None, help="ISO 639-1 code of the lyrics' language (e.g. en).")
@click.option("--title", default=None)
@click.option("--artist", default=None)
@click.option("--user", "username", default=None, help="Owner of the song (default: the first admin).")
@click.option("--separation-model", default=None)
@click.option("--transcription-model", default=None)
@click.option("--timeout", default=3600, show_default=True, help="Seconds to wait for the files.")
def make_cmd(song: Path, lyrics_file: Path | None, language: str | None, title: str | None, artist: str | None,
             username: str | None, separation_model: str | None, transcription_model: str | None,
             timeout: int) -> None:
    """Upload SONG through the same queue as the API and wait, with a progress bar, for its karaoke files."""
    from app.errors import ApiError
    from app.services import songs as song_service
    from app.services.health import workers_seen
    from app.services.ingest import ingest_upload, parse_upload_form

    form = {"title": title, "artist": artist, "language": language, "auto_process": "true",
            "separation_model": separation_model, "transcription_model": transcription_model,
            "lyrics": lyrics_file.read_text(encoding="utf-8") if lyrics_file else None}
    if not workers_seen(timeout=3.0):
        raise click.ClickException("no worker answered; start the service (`make run`) or a Celery worker first")
    try:
        request = parse_upload_form({k: v for k, v in form.items() if v is not None})
        with song.open("rb") as fh:
            upload = FileStorage(stream=io.BufferedReader(fh), filename=song.name)
            record = ingest_upload(_owner(username), upload, request)
        jobs = song_service.start_auto(record, request)
    except ApiError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    click.echo(f"song {record.id}: {len(jobs)} jobs queued")
    _wait(record.id, timeout)


def _wait(song_id: str, timeout: int) -> None:
    from app.extensions import db
    from app.models import Song
    from app.services.jobs import consolidated_status
    from app.services.pipeline import KARAOKE_KINDS, latest_artifact

    deadline = time.monotonic() + timeout
    with click.progressbar(length=1000, label="karaoke", show_percent=True) as bar:
        shown = 0
        while True:
            db.session.expire_all()
            song = db.session.get(Song, song_id)
            status = consolidated_status(song)
            done = int(status.get("progress", 0) * 1000)
            bar.update(max(0, done - shown))
            shown = max(shown, done)
            if status["status"] in ("completed", "failed", "canceled") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    if status["status"] != "completed":
        reason = status.get("error") or ("timed out" if time.monotonic() > deadline else status["status"])
        raise click.ClickException(f"karaoke {status['status']}: {reason}")
    for kind in KARAOKE_KINDS:
        if artifact := latest_artifact(song, kind):
            click.echo(f"{kind}: {artifact.path}")


def register_commands(app: Flask) -> None:
    for group in (users_cli, models_cli, karaoke_cli):
        app.cli.add_command(group)
