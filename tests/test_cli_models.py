"""`flask models fetch NAME`: offline failure, checksum refusal, unknown names (no internet needed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.audio.test_models_fetch import CLOSED_PORT_ROOT, repo_listing, serve  # noqa: F401 - fixture
from tests.conftest import make_app, redis_db


@pytest.fixture
def cli(tmp_path: Path, redis_server: str):
    models = tmp_path / "models"
    app = make_app(tmp_path, redis_db(redis_server, 1), models)
    runner = app.test_cli_runner()
    return (lambda *args, **env: runner.invoke(args=["models", *args], env=env or None)), models


def test_fetch_offline_fails_fast_with_one_line_and_no_file(cli) -> None:
    invoke, models = cli
    started = time.monotonic()
    result = invoke("fetch", "htdemucs", DEMUCS_DOWNLOAD_ROOT=CLOSED_PORT_ROOT)
    assert time.monotonic() - started < 12
    assert result.exit_code != 0
    assert "Error: htdemucs: could not download http://127.0.0.1:9/hybrid_transformer/955717e8-8726e21a.th" in (
        result.output)
    assert len(result.output.strip().splitlines()) == 1
    assert [name for name in repo_listing(models) if name.endswith((".th", ".part"))] == []


def test_fetch_checksum_mismatch_is_refused(cli, serve) -> None:  # noqa: F811 - fixture
    invoke, models = cli
    server = serve({"hybrid_transformer/5c90dfd2-34c22ccb.th": os.urandom(2048)})
    result = invoke("fetch", "htdemucs_6s", "--root-url", server.root)
    assert result.exit_code != 0 and "checksum mismatch" in result.output
    assert repo_listing(models) == []


def test_fetch_unknown_name_lists_known_models(cli) -> None:
    invoke, _ = cli
    result = invoke("fetch", "htdemucs_9000")
    assert result.exit_code != 0
    assert "unknown model 'htdemucs_9000'" in result.output
    assert "htdemucs, htdemucs_ft, htdemucs_6s, mdx_extra, mdx_extra_q" in result.output
    bundled = invoke("fetch", "spleeter")
    assert bundled.exit_code != 0 and "weights ship inside a Python package" in bundled.output


def test_models_list_shows_install_state(cli) -> None:
    import json

    invoke, _ = cli
    result = invoke("list")
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.output)["separation"]}
    assert rows["htdemucs_ft"]["installed"] is False and len(rows["htdemucs_ft"]["files"]) == 4
