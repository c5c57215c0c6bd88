"""The Demucs release catalog and ``weights.fetch``, against a local HTTP server (no internet)."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.audio import separation
from app.audio.separation import weights
from tests.audio.demucs_fixtures import make_demucs_repo

CLOSED_PORT_ROOT = "http://127.0.0.1:9/"  # discard port: nothing listens, the connection is refused


class ReleaseServer:
    """Serves ``{release path: bytes}`` on 127.0.0.1 and counts the requests it answers."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.requests = files, []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner.requests.append(self.path)
                body = owner.files.get(self.path.lstrip("/"))
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[ReleaseServer] = []

    def _serve(files: dict[str, bytes]) -> ReleaseServer:
        servers.append(ReleaseServer(files))
        return servers[-1]

    yield _serve
    for server in servers:
        server.close()


def repo_listing(models_dir: Path) -> list[str]:
    repo = models_dir / "demucs"
    return sorted(os.listdir(repo)) if repo.is_dir() else []


def test_catalog_lists_every_demucs_release_and_spleeter(tmp_path: Path) -> None:
    rows = {row["name"]: row for row in separation.available_models(tmp_path)}
    assert set(rows) == {"spleeter", "htdemucs", "htdemucs_ft", "htdemucs_6s", "mdx_extra", "mdx_extra_q"}
    assert rows["htdemucs_6s"]["stems"] == ["drums", "bass", "other", "vocals", "guitar", "piano"]
    assert rows["spleeter"]["stems"] == ["vocals", "accompaniment"]
    assert rows["spleeter"]["installed"] and rows["spleeter"]["size_bytes"] > 100_000_000
    for name in ("htdemucs", "htdemucs_ft", "htdemucs_6s", "mdx_extra", "mdx_extra_q"):
        row = rows[name]
        assert not row["installed"] and not row["available"]
        assert "models fetch" in row["reason"] or "diffq" in row["reason"]
        assert len(row["files"]) == (1 if name in ("htdemucs", "htdemucs_6s") else 4)
        assert row["size_bytes"] == sum(f["bytes"] for f in row["files"]) > 0
        for f in row["files"]:
            checksum = f["name"].removesuffix(".th").split("-")[1]
            assert f["url"].startswith(weights.DEFAULT_ROOT_URL) and f["url"].endswith(f["name"])
            assert len(checksum) == 8 and f["signature"] == f["name"][:8]
    assert rows["htdemucs"]["size_bytes"] == 84_141_911
    assert rows["mdx_extra_q"]["requires"] == ["diffq"]


def test_mdx_extra_q_says_when_diffq_is_missing(tmp_path: Path) -> None:
    import importlib.util

    row = {r["name"]: r for r in separation.available_models(tmp_path)}["mdx_extra_q"]
    if importlib.util.find_spec("diffq") is None:
        assert row["missing_requirements"] == ["diffq"] and "diffq" in row["reason"]
    else:
        assert row["missing_requirements"] == []


def test_installed_after_placing_a_model_in_the_local_repo(tmp_path: Path) -> None:
    make_demucs_repo(tmp_path, name="htdemucs_6s")
    rows = {row["name"]: row for row in separation.available_models(tmp_path)}
    row = rows["htdemucs_6s"]
    assert row["installed"] and row["available"] and row["reason"] is None
    on_disk = sum(p.stat().st_size for p in (tmp_path / "demucs").glob("*.th"))
    assert row["size_bytes"] == on_disk and all(f["installed"] and f["path"] for f in row["files"])
    assert not rows["htdemucs"]["installed"]


def test_default_root_is_the_one_demucs_downloads_from() -> None:
    from demucs.pretrained import ROOT_URL

    assert weights.default_root_url() == ROOT_URL == weights.DEFAULT_ROOT_URL


def test_offline_fetch_fails_fast_and_writes_nothing(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(weights.FetchError, match="could not download"):
        weights.fetch("htdemucs", tmp_path, root_url=CLOSED_PORT_ROOT, timeout=2)
    assert time.monotonic() - started < 5
    assert repo_listing(tmp_path) == []


def test_checksum_mismatch_is_refused_and_removed(tmp_path: Path, serve) -> None:
    server = serve({"hybrid_transformer/955717e8-8726e21a.th": os.urandom(4096)})
    with pytest.raises(weights.FetchError, match="checksum mismatch"):
        weights.fetch("htdemucs", tmp_path, root_url=server.root)
    assert server.requests == ["/hybrid_transformer/955717e8-8726e21a.th"]
    assert repo_listing(tmp_path) == []


def test_fetch_verifies_renames_and_skips_present_files(tmp_path: Path, serve, monkeypatch) -> None:
    payload = os.urandom(10_000)
    checksum = hashlib.sha256(payload).hexdigest()[:8]
    release = weights.WeightFile("955717e8", f"955717e8-{checksum}.th", f"hybrid_transformer/955717e8-{checksum}.th",
                                 checksum, len(payload))
    monkeypatch.setattr(weights, "release_files", lambda: {"955717e8": release})
    server = serve({release.path: payload})
    states: list[tuple[str, str]] = []
    paths = weights.fetch("htdemucs", tmp_path, root_url=server.root, on_file=lambda *a: states.append(a))
    assert paths == [tmp_path / "demucs" / release.filename] and paths[0].read_bytes() == payload
    assert states == [(release.filename, "downloaded")]
    assert repo_listing(tmp_path) == sorted([release.filename, "htdemucs.yaml"])
    weights.fetch("htdemucs", tmp_path, root_url=server.root, on_file=lambda *a: states.append(a))
    assert states[-1] == (release.filename, "present") and len(server.requests) == 1
    paths[0].write_bytes(b"corrupt")  # a present file that fails its checksum is downloaded again
    weights.fetch("htdemucs", tmp_path, root_url=server.root)
    assert paths[0].read_bytes() == payload and len(server.requests) == 2


def test_fetch_unknown_model_raises_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        weights.fetch("not_a_model", tmp_path)


def test_the_release_root_is_the_one_demucs_downloads_from():
    from demucs.pretrained import ROOT_URL

    from app.audio.separation.weights import default_root_url

    assert default_root_url() == ROOT_URL
