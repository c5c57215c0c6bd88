"""Where files live on disk, and how they get there safely (temp name, then rename)."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from flask import current_app

CHUNK = 1024 * 1024


class TooLarge(Exception):
    """The stream is longer than the allowed number of bytes."""


def upload_dir(song_id: str) -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / song_id


def output_dir(song_id: str) -> Path:
    return Path(current_app.config["OUTPUT_DIR"]) / song_id


def karaoke_dir(song_id: str, slug: str) -> Path:
    return Path(current_app.config["KARAOKE_DIR"]) / f"{song_id}-{slug}"


def karaoke_dirs(song_id: str) -> list[Path]:
    root = Path(current_app.config["KARAOKE_DIR"])
    return [p for p in root.glob(f"{song_id}-*") if p.is_dir()] if root.exists() else []


def temp_path(suffix: str = "") -> Path:
    tmp = Path(current_app.config["UPLOAD_DIR"]) / ".incoming"
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp / f"{uuid.uuid4().hex}{suffix}"


def stream_to_file(stream: BinaryIO, dest: Path, max_bytes: int) -> tuple[str, int]:
    """Copy ``stream`` to ``dest`` while hashing it; returns ``(sha256 hex, size in bytes)``.

    Raises TooLarge (and removes ``dest``) once more than ``max_bytes`` arrive.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        with open(dest, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(size)
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


def move_into_place(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    return dest


def remove_song_files(song_id: str) -> None:
    """Delete everything stored for a song: upload, stems, karaoke folder."""
    for path in [upload_dir(song_id), output_dir(song_id), *karaoke_dirs(song_id)]:
        shutil.rmtree(path, ignore_errors=True)
