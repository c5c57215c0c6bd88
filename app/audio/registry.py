"""Process-wide model cache: each model loads once per process and stays in memory.

Load times are recorded so a job can report whether it paid for loading (``last_load_seconds``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_models: dict[str, Any] = {}
_load_seconds: dict[str, float] = {}
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def get_or_load(key: str, loader: Callable[[], T]) -> tuple[T, float]:
    """Return ``(model, seconds spent loading it in this call)``; 0.0 when it was cached.

    ``loader`` runs at most once per key per process, even with concurrent callers.
    Exceptions from ``loader`` propagate and nothing is cached.
    """
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if key in _models:
            return _models[key], 0.0
        started = time.perf_counter()
        model = loader()
        elapsed = time.perf_counter() - started
        _models[key] = model
        _load_seconds[key] = elapsed
        return model, elapsed


def is_loaded(key: str) -> bool:
    return key in _models


def loaded_keys() -> list[str]:
    return sorted(_models)


def clear() -> None:
    """Drop every cached model (tests, memory pressure)."""
    with _guard:
        _models.clear()
        _load_seconds.clear()
