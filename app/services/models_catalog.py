"""Which separation and transcription models exist, and which this deployment can run."""

from __future__ import annotations

import os
import sys
from typing import Any

from flask import current_app

from app.audio import separation, whisper_models
from app.errors import ApiError


def _models_dir() -> str:
    return current_app.config["MODELS_DIR"]


def compute_device() -> str:
    """The device models run on: DEVICE=cpu|cuda, or auto (CUDA when the worker host has it)."""
    wanted = current_app.config.get("DEVICE", "auto")
    if wanted != "auto":
        return wanted
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a requirement
        return "cpu"


def listed_device() -> str:
    """``compute_device`` as the catalog reports it, without loading torch into the web process:
    DEVICE when set, else CUDA when CTranslate2 (the Whisper engine, a small import) sees a GPU."""
    if current_app.config.get("DEVICE", "auto") != "auto" or "torch" in sys.modules:
        return compute_device()
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except (ImportError, RuntimeError):  # pragma: no cover - ctranslate2 is a requirement
        return "cpu"


def worker_cores(config: Any) -> int:
    """CPU cores one worker process may use: TORCH_THREADS, else the host's cores shared among
    the pool's WORKER_CONCURRENCY processes (over-subscribed thread pools slow models several-fold)."""
    if config.get("TORCH_THREADS"):
        return int(config["TORCH_THREADS"])
    return max(1, (os.cpu_count() or 1) // max(1, int(config.get("WORKER_CONCURRENCY", 1))))


def whisper_options() -> dict[str, Any]:
    """``load_whisper`` keyword arguments for this worker: device, threads and replicas."""
    device = compute_device()
    threads, workers = whisper_models.cpu_layout(
        worker_cores(current_app.config), device, int(current_app.config.get("WHISPER_WORKERS", 0))
    )
    return {"device": device, "cpu_threads": threads, "workers": workers}


def list_models() -> dict[str, Any]:
    """Every separation and transcription model, with the device each would run on here.

    Separation rows carry ``stems``, ``installed``, ``size_bytes`` (on disk, or the expected download
    size when not installed), ``files`` and ``requires``/``missing_requirements`` (see
    ``app.audio.separation.available_models``).
    """
    models_dir = _models_dir()
    device = listed_device()
    return {
        "separation": [{**row, "device": device} for row in separation.available_models(models_dir)],
        "transcription": [{**row, "device": device} for row in whisper_models.available_models(models_dir)],
        "defaults": {
            "separation": separation.default_model(models_dir),
            "transcription": {"en": whisper_models.default_model(models_dir, "en"),
                              "other": whisper_models.default_model(models_dir, None)},
        },
        "device": device,
    }


def _check(name: str | None, catalog: list[dict[str, Any]], kind: str) -> str | None:
    if name is None:
        return None
    entry = next((m for m in catalog if m["name"] == name), None)
    if entry is None:
        known = ", ".join(m["name"] for m in catalog)
        raise ApiError(400, "unknown_model", f"Unknown {kind} model {name!r}; known models: {known}")
    if not entry["available"]:
        raise ApiError(400, "model_unavailable", f"The {kind} model {name!r} is not installed here: "
                       f"{entry.get('reason') or 'weights missing'}")
    return name


def check_separation_model(name: str | None) -> str | None:
    """The name if it is a known, installed separation model; ApiError 400 otherwise."""
    return _check(name, separation.available_models(_models_dir()), "separation")


def check_transcription_model(name: str | None) -> str | None:
    """The name if it is a known, installed transcription model; ApiError 400 otherwise."""
    return _check(name, whisper_models.available_models(_models_dir()), "transcription")
