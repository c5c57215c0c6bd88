"""Demucs (Défossez et al.) from a local model folder: two stems for karaoke, or every source.

The folder (``<models_dir>/demucs``) uses Demucs's own local-repo layout: one ``<sig>.th`` or
``<sig>-<checksum>.th`` file per model and, for named models and bags, a ``<name>.yaml`` listing
signatures. When the yaml is missing but the ``.th`` files of a released model are there, the yaml
that ships inside the demucs package is used. Nothing is ever downloaded here.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from app.audio.io import resample
from app.audio.separation.channels import merge_pairs, stereo_pairs
from app.audio.types import ModelUnavailable, ProgressCallback

REPO_SUBDIR = "demucs"
MAX_SHIFT_SECONDS = 0.5  # demucs.apply shifts the input by up to this much per shift


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
    signatures, _ = _bag_spec(name, repo)
    if not signatures:
        return f"{repo / (name + '.yaml')} lists no models"
    local = _local_signatures(repo)
    missing = [sig for sig in signatures if sig not in local]
    if not missing:
        return None
    remote = _remote_files()
    wanted = ", ".join(remote.get(sig, f"{sig}.th") for sig in missing)
    return (
        f"Demucs model {name!r} needs weights missing from {repo}: {wanted} "
        f"(`flask models fetch {name}` downloads them)"
    )


def load_model(name: str, models_dir: str | Path, needs_diffq: bool = False) -> Any:
    """Load a Demucs model or bag of models (CPU, eval mode). Raises ``ModelUnavailable``."""
    reason = unavailable_reason(name, models_dir, needs_diffq)
    if reason:
        raise ModelUnavailable(reason)
    repo = repo_dir(models_dir)
    from demucs.apply import BagOfModels
    from demucs.pretrained import get_model
    from demucs.repo import LocalRepo

    signatures, bag = _bag_spec(name, repo)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # demucs warns about dropped init arguments
            if (repo / f"{name}.yaml").is_file() or name in _local_signatures(repo):
                model = get_model(name, repo=repo)
            else:  # a released model whose yaml only ships inside the demucs package
                local = LocalRepo(repo)
                bag = bag or {}
                model = BagOfModels(
                    [local.get_model(sig) for sig in signatures], bag.get("weights"), bag.get("segment")
                )
    except Exception as exc:  # a corrupt, partial or incompatible file: to the caller, not available
        raise ModelUnavailable(f"could not load Demucs model {name!r} from {repo}: {exc}") from exc
    return model.eval()


def separate_stems(
    model: Any,
    samples: np.ndarray,
    sample_rate: int,
    on_progress: ProgressCallback,
    shifts: int = 0,
    overlap: float = 0.25,
    segment: float | None = None,
    device: str = "cpu",
    keep_sources: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(vocals, instrumental, other sources) of float32 ``(channels, frames)`` at ``sample_rate`` Hz.

    The instrumental is the sum of every source but vocals; the third item maps each non-vocal
    source name (drums, bass, other, ...) to its estimate when ``keep_sources``, else is empty.
    ``shifts`` > 0 averages that many randomly shifted passes (better, slower, not
    bit-reproducible); ``overlap`` is the share of each segment that overlaps the next; ``segment``
    (seconds) overrides the model's segment length, capped at what a transformer model allows
    (``max_segment``). The network runs on ``device``; the audio stays in host memory.
    Calls ``on_progress(fraction, "separating")`` per segment.
    """
    from demucs.apply import apply_model

    if "vocals" not in model.sources:
        raise ValueError(f"this Demucs model has no vocals source (sources: {model.sources})")
    if model.audio_channels != 2:
        raise ValueError(f"only stereo Demucs models are supported, got {model.audio_channels} channels")
    if segment is not None:
        segment = min(float(segment), max_segment(model))
    channels, frames = samples.shape
    at_rate = resample(samples, sample_rate, model.samplerate)
    pairs = stereo_pairs(at_rate)
    progress = _Progress(on_progress, len(pairs) * _segment_count(model, at_rate.shape[1], shifts, overlap, segment))
    vocal_index = model.sources.index("vocals")
    others = [i for i in range(len(model.sources)) if i != vocal_index] if keep_sources else []
    estimates: dict[str, list[np.ndarray]] = {"vocals": [], "instrumental": []}
    estimates.update({model.sources[i]: [] for i in others})
    on_progress(0.0, "separating")
    for pair in pairs:
        mix = torch.from_numpy(pair)
        ref = mix.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8  # demucs normalises the input like this
        with torch.inference_mode():
            sources = apply_model(
                model,
                ((mix - mean) / std)[None],
                shifts=shifts,
                split=True,
                overlap=overlap,
                segment=segment,
                progress=False,
                device=device,
                num_workers=0,
                callback=progress,
            )[0]
        sources = sources * std + mean
        estimates["vocals"].append(sources[vocal_index].numpy())
        estimates["instrumental"].append((sources.sum(0) - sources[vocal_index]).numpy())
        for i in others:
            estimates[model.sources[i]].append(sources[i].numpy())
    out = {}
    for name, parts in estimates.items():
        merged = resample(merge_pairs(parts, channels), model.samplerate, sample_rate)
        out[name] = (
            merged[:, :frames]
            if merged.shape[1] >= frames
            else np.pad(merged, ((0, 0), (0, frames - merged.shape[1])))
        )
    vocals, instrumental = out.pop("vocals"), out.pop("instrumental")
    return vocals, instrumental, out


def max_segment(model: Any) -> float:
    """The longest segment (seconds) ``model`` accepts: a transformer's training segment, else inf."""
    from demucs.htdemucs import HTDemucs

    limits = [float(m.segment) for m in getattr(model, "models", [model]) if isinstance(m, HTDemucs)]
    return min(limits) if limits else float("inf")


class _Progress:
    """Turns demucs's per-segment callback into ``on_progress(fraction, "separating")``."""

    def __init__(self, on_progress: ProgressCallback, total: int) -> None:
        self.on_progress, self.total, self.done = on_progress, max(total, 1), 0

    def __call__(self, info: dict) -> None:
        if info.get("state") == "end":
            self.done += 1
            self.on_progress(min(self.done / self.total, 1.0), "separating")


def _segment_count(model: Any, frames: int, shifts: int, overlap: float, segment: float | None = None) -> int:
    """How many segments apply_model will run (an estimate when shifts pad the input)."""
    subs = getattr(model, "models", [model])
    if shifts:
        frames += int(MAX_SHIFT_SECONDS * model.samplerate) // 2
    count = 0
    for sub in subs:
        segment_length = int(sub.samplerate * float(segment or sub.segment))
        stride = max(1, int((1 - overlap) * segment_length))
        count += len(range(0, frames, stride)) * max(1, shifts)
    return count


def _local_signatures(repo: Path) -> set[str]:
    """Signatures of the ``.th`` files in ``repo`` (``<sig>.th`` or ``<sig>-<checksum>.th``)."""
    return {p.stem.rsplit("-", 1)[0] if "-" in p.stem else p.stem for p in repo.glob("*.th")}


def _bag_spec(name: str, repo: Path) -> tuple[list[str], dict | None]:
    """The signatures ``name`` needs and its yaml (the local one first, then demucs's own)."""
    local_yaml = repo / f"{name}.yaml"
    if not local_yaml.is_file() and name in _local_signatures(repo):
        return [name], None
    for yaml_file in (local_yaml, _remote_root() / f"{name}.yaml"):
        if yaml_file.is_file():
            data = yaml.safe_load(yaml_file.read_text()) or {}
            return [str(sig) for sig in data.get("models", [])], data
    return [name], None


def _remote_root() -> Path:
    spec = importlib.util.find_spec("demucs")
    return Path(spec.origin).parent / "remote" if spec and spec.origin else Path("/nonexistent")


def _remote_files() -> dict[str, str]:
    """Signature -> download URL of the released weights, from demucs's files.txt (for messages)."""
    files = _remote_root() / "files.txt"
    if not files.is_file():
        return {}
    from demucs.pretrained import _parse_remote_files

    return _parse_remote_files(files)
