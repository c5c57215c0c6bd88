"""The released Demucs weight files: which a model needs, whether they are installed, fetching them.

Demucs names each released file ``<sig>-<checksum>.th``, where ``checksum`` is the first 8 hex
digits of the file's sha256, and its package lists them in ``demucs/remote/files.txt`` (with the
sub-folder of the release root each lives in) and one ``<name>.yaml`` per named model (the
signatures of its bag). ``fetch`` downloads the files of a model into the local repo
(``<models_dir>/demucs``) from the same release root demucs downloads from, verifying the sha256
prefix the way ``demucs.repo.check_checksum`` does, and renames a file into place only once it
matches: an interrupted or refused download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.audio.separation import repo as local_repo

DEFAULT_ROOT_URL = "https://dl.fbaipublicfiles.com/demucs/"
"""Release root of the Demucs weights (``demucs.pretrained.ROOT_URL``)."""
CONNECT_TIMEOUT_S = 10.0
CHUNK_BYTES = 1 << 20

# Bytes of each released file, as served from the release root (for the catalog's expected
# download size before anything is installed; the checksum, not the size, is what fetch verifies).
RELEASE_BYTES: dict[str, int] = {
    "955717e8-8726e21a.th": 84_141_911,  # htdemucs
    "f7e0c4bc-ba3fe64a.th": 84_141_271,  # htdemucs_ft (4)
    "d12395a8-e57c48e6.th": 84_141_271,
    "92cfc3b6-ef3bcb9c.th": 84_141_271,
    "04573f0d-f3cf25b2.th": 84_141_271,
    "5c90dfd2-34c22ccb.th": 54_996_327,  # htdemucs_6s
    "e51eebcc-c1b80bdd.th": 167_399_275,  # mdx_extra (4)
    "a1d90b5c-ae9d2452.th": 167_391_595,
    "5d2d6c55-db83574e.th": 167_391_595,
    "cfa93e08-61801ae1.th": 167_399_275,
    "83fc094f-4a16d450.th": 50_756_993,  # mdx_extra_q (4, diffq-quantised)
    "464b36d7-e5a9386e.th": 38_893_153,
    "14fc6a69-a89dd0ee.th": 38_491_885,
    "7fd6ef75-a905dd85.th": 39_436_529,
}


class FetchError(RuntimeError):
    """A weight file could not be downloaded or did not match its checksum (nothing was kept)."""


@dataclass(frozen=True)
class WeightFile:
    """One weight file a model needs: ``path`` is its release path relative to the root URL."""

    signature: str
    filename: str  # "<sig>-<checksum>.th"
    path: str  # e.g. "hybrid_transformer/955717e8-8726e21a.th"
    checksum: str  # sha256 hex prefix ("" when the release name carries none)
    expected_bytes: int | None

    def url(self, root_url: str = DEFAULT_ROOT_URL) -> str:
        return root_url.rstrip("/") + "/" + self.path


def default_root_url() -> str:
    """The release root demucs itself downloads from (``demucs.pretrained.ROOT_URL``, checked equal
    by a test: importing demucs.pretrained here would load torch into the web process)."""
    return DEFAULT_ROOT_URL


def release_files() -> dict[str, WeightFile]:
    """Signature -> ``WeightFile`` for every file in demucs's ``remote/files.txt``."""
    listing = local_repo.remote_root() / "files.txt"
    if not listing.is_file():
        return {}
    files: dict[str, WeightFile] = {}
    root = ""
    for raw in listing.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("root:"):
            root = line.split(":", 1)[1].strip()
            continue
        stem = line[: -len(".th")] if line.endswith(".th") else line
        sig, _, checksum = stem.partition("-")
        files[sig] = WeightFile(sig, line, root + line, checksum, RELEASE_BYTES.get(line))
    return files


def release_signatures(name: str) -> list[str]:
    """The signatures of the released model ``name`` (its yaml inside the demucs package); [] if unknown."""
    yaml_file = local_repo.remote_root() / f"{name}.yaml"
    if not yaml_file.is_file():
        return []
    data = yaml.safe_load(yaml_file.read_text()) or {}
    return [str(sig) for sig in data.get("models", [])]


def installed_file(repo: Path, signature: str) -> Path | None:
    """The ``.th`` file holding ``signature`` in ``repo`` (``<sig>.th`` or ``<sig>-<checksum>.th``)."""
    if not repo.is_dir():
        return None
    for path in sorted(repo.glob(f"{signature}*.th")):
        if path.stem == signature or path.stem.rsplit("-", 1)[0] == signature:
            return path
    return None


def model_files(name: str, models_dir: str | Path) -> list[dict[str, object]]:
    """The weight files model ``name`` needs, each ``{name, signature, url, bytes, installed, path}``.

    The signatures come from the local ``<name>.yaml`` when the repo has one, else from the release.
    ``bytes`` is the installed file's size, or the expected download size when it is not installed
    (None when unknown). Reads no file contents.
    """
    repo = local_repo.repo_dir(models_dir)
    signatures, _ = local_repo.bag_spec(name, repo) if repo.is_dir() else (release_signatures(name), None)
    released = release_files()
    root = default_root_url()
    rows: list[dict[str, object]] = []
    for sig in signatures:
        release = released.get(sig)
        path = installed_file(repo, sig)
        rows.append(
            {
                "name": path.name if path else (release.filename if release else f"{sig}.th"),
                "signature": sig,
                "url": release.url(root) if release else None,
                "bytes": path.stat().st_size if path else (release.expected_bytes if release else None),
                "installed": path is not None,
                "path": str(path) if path else None,
            }
        )
    return rows


def sha256_prefix_matches(path: Path, checksum: str) -> bool:
    """Whether the sha256 of ``path`` starts with ``checksum`` (demucs's ``check_checksum``)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()[: len(checksum)] == checksum


def fetch(
    name: str,
    models_dir: str | Path,
    root_url: str | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
    on_file: Callable[[str, str], None] = lambda filename, state: None,
) -> list[Path]:
    """Download the released weights of Demucs model ``name`` into ``<models_dir>/demucs``.

    Files already there whose checksum matches are skipped (``on_file(filename, "present")``);
    others are downloaded (``"downloaded"``) from ``root_url`` (default: demucs's release root)
    to a temp file in the repo and renamed into place once their sha256 prefix matches; a present
    file that does not match is replaced. ``<name>.yaml`` is copied from the demucs package when
    the repo has none. ``timeout`` (seconds) bounds connecting and each read; there are no retries.
    Returns the model's files. Raises ``KeyError`` for a model with no release, ``FetchError``.
    """
    signatures = release_signatures(name)
    released = release_files()
    if not signatures or any(sig not in released for sig in signatures):
        raise KeyError(name)
    repo = local_repo.repo_dir(models_dir)
    repo.mkdir(parents=True, exist_ok=True)
    root = root_url or default_root_url()
    paths = []
    for sig in signatures:
        wanted = released[sig]
        target = repo / wanted.filename
        present = installed_file(repo, sig)
        if present is not None and present != target:
            on_file(present.name, "present")  # another file holds this signature: demucs loads that one
            paths.append(present)
            continue
        if target.is_file() and sha256_prefix_matches(target, wanted.checksum):
            on_file(wanted.filename, "present")
        else:
            _download(wanted.url(root), target, wanted.checksum, timeout)
            on_file(wanted.filename, "downloaded")
        paths.append(target)
    local_yaml = repo / f"{name}.yaml"
    if not local_yaml.exists():
        _write_atomic(local_yaml, (local_repo.remote_root() / f"{name}.yaml").read_bytes())
    return paths


def _download(url: str, target: Path, checksum: str, timeout: float) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) root
                    while chunk := response.read(CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise FetchError(f"could not download {url}: {reason}") from None
        actual = digest.hexdigest()[: len(checksum)]
        if actual != checksum:
            raise FetchError(f"checksum mismatch for {url}: expected sha256 {checksum}..., got {actual}...")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
