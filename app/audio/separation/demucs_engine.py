"""Demucs (Défossez et al.) from a local model folder: two stems for karaoke, or every source.

The folder (``<models_dir>/demucs``) uses Demucs's own local-repo layout: one ``<sig>.th`` or
``<sig>-<checksum>.th`` file per model and, for named models and bags, a ``<name>.yaml`` listing
signatures. When the yaml is missing but the ``.th`` files of a released model are there, the yaml
that ships inside the demucs package is used. Nothing is ever downloaded here.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.audio.separation.repo import bag_spec, local_signatures, repo_dir, unavailable_reason
from app.audio.types import ModelUnavailable, ProgressCallback

MIN_OOM_SEGMENT = 1.0  # seconds: the shortest segment tried after CUDA runs out of memory
log = logging.getLogger(__name__)


def load_model(name: str, models_dir: str | Path, needs_diffq: bool = False) -> Any:
    """Load a Demucs model or bag of models (CPU, eval mode). Raises ``ModelUnavailable``."""
    reason = unavailable_reason(name, models_dir, needs_diffq)
    if reason:
        raise ModelUnavailable(reason)
    repo = repo_dir(models_dir)
    from demucs.apply import BagOfModels
    from demucs.pretrained import get_model
    from demucs.repo import LocalRepo

    signatures, bag = bag_spec(name, repo)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # demucs warns about dropped init arguments
            if (repo / f"{name}.yaml").is_file() or name in local_signatures(repo):
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


def compile_model(model: Any, device: str) -> bool:
    """``torch.compile`` (inductor) every HTDemucs in ``model`` in place and run each once, so the
    compile happens now and not in a job. Returns False, leaving the model as it was, when torch
    cannot compile here. Outputs match eager mode to float rounding (~1e-6); on 2 CPU cores a
    forward takes ~0.8-0.85x the eager time. The first compile on a host takes minutes (inductor
    builds C++/Triton kernels); later processes reuse its on-disk cache (~30 s)."""
    from demucs.htdemucs import HTDemucs

    subs = [m for m in getattr(model, "models", [model]) if isinstance(m, HTDemucs)]
    try:
        for sub in subs:
            sub.forward = torch.compile(sub.forward, dynamic=False)
            with torch.inference_mode():
                sub(torch.zeros(1, sub.audio_channels, int(sub.segment * sub.samplerate), device=device))
    except Exception:  # noqa: BLE001 - compiling is an optimisation; eager mode always works
        log.warning("torch.compile failed; Demucs runs in eager mode", exc_info=True)
        for sub in subs:
            sub.__dict__.pop("forward", None)
        return False
    return bool(subs)


class DemucsStream:
    """A Demucs model (or bag) as a ``streaming.StreamEngine``, computing what the demucs CLI does.

    The schedule is ``demucs.apply.apply_model``'s, followed exactly: per model of a bag, per shift
    (a random offset of up to 0.5 s), segments of ``segment`` seconds every ``(1 - overlap)``
    segments, each padded to the length the model takes, weighted by a triangle and overlap-added;
    then shifts are averaged and the bag's models weighted per source. Here every segment runs as
    soon as its input has arrived and each sample is handed on once no later segment touches it,
    so memory holds a couple of segments instead of the song. The input is normalised by the
    song's mean and std first, as ``demucs.api.Separator`` does. On the same input the stems match
    the CLI's to float rounding (the separation benchmark checks it).

    ``on_progress(fraction, "separating")`` is called after every model forward (may raise
    ``JobCanceled``). ``forward_seconds`` adds up the time spent in the network. On CUDA
    out-of-memory a segment is run again in halves, down to ``MIN_OOM_SEGMENT`` seconds, and later
    segments use the size that worked (``oom_segment``).
    """

    needs_stats = True

    def __init__(self, model: Any, on_progress: ProgressCallback, *, shifts: int = 0, overlap: float = 0.25,
                 segment: float | None = None, device: str = "cpu", keep_sources: bool = False,
                 seed: int = 0) -> None:
        from demucs.apply import BagOfModels

        if "vocals" not in model.sources:
            raise ValueError(f"this Demucs model has no vocals source (sources: {model.sources})")
        if model.audio_channels != 2:
            raise ValueError(f"only stereo Demucs models are supported, got {model.audio_channels} channels")
        self.model, self.on_progress = model, on_progress
        self.rate = int(model.samplerate)
        self.sources = list(model.sources)
        self.vocal_index = self.sources.index("vocals")
        others = [name for name in self.sources if name != "vocals"]
        self.names = ("vocals", "instrumental", *(others if keep_sources else ()))
        self.subs = list(model.models) if isinstance(model, BagOfModels) else [model]
        self.weights = list(model.weights) if isinstance(model, BagOfModels) else [None]
        self.shifts, self.overlap, self.device, self.seed = shifts, overlap, device, seed
        self.segment = None if segment is None else min(float(segment), max_segment(model))
        self.forward_seconds = 0.0
        self.oom_segment: float | None = None
        self.oom_retries = 0

    def start(self, frames: int, stats: tuple[np.ndarray, np.ndarray] | None) -> None:
        import random

        mean, std = stats if stats is not None else (np.zeros(1), np.ones(1))
        self.mean = torch.from_numpy(mean.astype(np.float32))[:, None, None]
        self.std = torch.from_numpy(std.astype(np.float32))[:, None, None] + 1e-8  # as demucs.api does
        self.frames = frames
        rng = random.Random(self.seed)  # a fixed seed: the same request gives the same stems
        self.passes: list[list[_Pass]] = []
        for sub in self.subs:
            max_shift = int(0.5 * sub.samplerate)
            origins = [rng.randint(0, max_shift) - max_shift for _ in range(self.shifts)] if self.shifts else [0]
            self.passes.append([_Pass(sub, origin, frames, self.segment, self.overlap) for origin in origins])
        self.total = max(1, sum(p.count for passes in self.passes for p in passes))
        self.done = 0
        self.buf = torch.zeros(len(mean), 2, 0)
        self.buf_start = 0
        self.ended = False
        self.on_progress(0.0, "separating")

    def push(self, pairs: np.ndarray | None) -> dict[str, np.ndarray]:
        if pairs is None:
            self.ended = True
        elif pairs.shape[-1]:
            block = (torch.from_numpy(np.ascontiguousarray(pairs, dtype=np.float32)) - self.mean) / self.std
            self.buf = torch.cat([self.buf, block], dim=-1)
        available = self.frames if self.ended else self.buf_start + self.buf.shape[-1]
        for sub, passes in zip(self.subs, self.passes, strict=True):
            for run in passes:
                while (window := run.next_window()) is not None and (window[1] <= available or self.ended):
                    run.add(self._forward(sub, self._read(*window)))
                    self.done += 1
                    self.on_progress(min(self.done / self.total, 1.0), "separating")
        keep_from = min(run.needed_from() for passes in self.passes for run in passes)
        if keep_from > self.buf_start:
            self.buf = self.buf[..., keep_from - self.buf_start:]
            self.buf_start = keep_from
        return self._combine()

    def _read(self, start: int, end: int) -> torch.Tensor:
        """The normalised input over ``[start, end)``, zeros outside the song (as TensorChunk.padded)."""
        window = torch.zeros(self.buf.shape[0], 2, end - start)
        lo, hi = max(start, self.buf_start, 0), min(end, self.buf_start + self.buf.shape[-1], self.frames)
        if hi > lo:
            window[..., lo - start:hi - start] = self.buf[..., lo - self.buf_start:hi - self.buf_start]
        return window

    def _forward(self, sub: Any, window: torch.Tensor) -> torch.Tensor:
        started = time.perf_counter()
        try:
            if self.oom_segment is not None:
                return self._forward_split(sub, window, self.oom_segment)
            try:
                with torch.inference_mode():
                    return sub(window.to(self.device)).to("cpu")
            except torch.OutOfMemoryError:
                return self._retry_smaller(sub, window)
        finally:
            self.forward_seconds += time.perf_counter() - started

    def _retry_smaller(self, sub: Any, window: torch.Tensor) -> torch.Tensor:
        segment = float(self.segment or sub.segment)
        while True:
            torch.cuda.empty_cache()
            segment /= 2
            if segment < MIN_OOM_SEGMENT:
                raise torch.OutOfMemoryError(
                    f"CUDA out of memory even with {segment * 2:.2f} s segments; free GPU memory or set DEVICE=cpu")
            try:
                out = self._forward_split(sub, window, segment)
            except torch.OutOfMemoryError:
                continue
            self.oom_segment, self.oom_retries = segment, self.oom_retries + 1
            log.warning("CUDA out of memory: Demucs segments of %.2f s from now on", segment)
            return out

    def _forward_split(self, sub: Any, window: torch.Tensor, segment: float) -> torch.Tensor:
        from demucs.apply import apply_model

        with torch.inference_mode():
            return apply_model(sub, window, shifts=0, split=True, overlap=self.overlap, segment=segment,
                               device=self.device, num_workers=0, progress=False)

    def _combine(self) -> dict[str, np.ndarray]:
        """The samples every pass has finished: shifts averaged, bag weighted, de-normalised."""
        ready = min(run.ready for passes in self.passes for run in passes)
        if ready == 0:
            return {}
        estimates: torch.Tensor | float = 0.0
        totals = [0.0] * len(self.sources)
        for passes, weights in zip(self.passes, self.weights, strict=True):
            out: torch.Tensor | float = 0.0
            for run in passes:
                out = out + run.take(ready)
            if self.shifts:
                out = out / self.shifts
            assert isinstance(out, torch.Tensor)
            if weights is not None:
                for k, weight in enumerate(weights):
                    out[:, k] *= weight
                    totals[k] += weight
            estimates = estimates + out
        assert isinstance(estimates, torch.Tensor)
        if self.weights[0] is not None:
            for k in range(estimates.shape[1]):
                estimates[:, k] /= totals[k]
        estimates = estimates * self.std[:, None] + self.mean[:, None]  # (pairs, sources, 2, n)
        instrumental = torch.zeros_like(estimates[:, 0])
        for k in range(len(self.sources)):
            if k != self.vocal_index:
                instrumental += estimates[:, k]
        result = {"vocals": estimates[:, self.vocal_index].numpy(), "instrumental": instrumental.numpy()}
        for name in self.names[2:]:
            result[name] = estimates[:, self.sources.index(name)].numpy()
        return result


class _Pass:
    """One model at one shift over the whole song: ``apply_model``'s split loop, segment by segment.

    Positions are in the song's frames at the model's rate. ``origin`` (<= 0) is where the shifted
    signal starts: ``apply_model`` pads the song with 0.5 s of zeros and starts ``-origin`` frames
    before the song; the output before position 0 is dropped.
    """

    def __init__(self, model: Any, origin: int, frames: int, segment: float | None, overlap: float) -> None:
        from demucs.htdemucs import HTDemucs

        self.model, self.origin, self.frames, self.user_segment = model, origin, frames, segment
        seg = model.segment if segment is None else segment
        self.segment_length = int(model.samplerate * seg)
        self.stride = int((1 - overlap) * self.segment_length)
        self.length = frames - origin  # of the shifted signal
        self.count = len(range(0, self.length, self.stride)) if frames else 0
        self.is_ht = isinstance(model, HTDemucs)
        weight = torch.cat([torch.arange(1, self.segment_length // 2 + 1),
                            torch.arange(self.segment_length - self.segment_length // 2, 0, -1)])
        self.weight = (weight / weight.max()) ** 1.0  # apply_model's transition_power 1
        self.k = 0  # next segment
        self.acc = torch.zeros(0)  # weighted sum from position acc_start on
        self.sum_weight = torch.zeros(0)
        self.acc_start = origin
        self.finished: list[torch.Tensor] = []  # final output from position >= 0, not yet taken
        self.ready = 0

    def _chunk(self, k: int | None = None) -> tuple[int, int, int]:
        """(start, length, padded length) of segment ``k`` (default: the next one)."""
        offset = (self.k if k is None else k) * self.stride
        length = min(self.segment_length, self.length - offset)
        if self.is_ht and self.user_segment is not None:
            valid = int(self.user_segment * self.model.samplerate)
        elif hasattr(self.model, "valid_length"):
            valid = self.model.valid_length(length)
        else:
            valid = length
        return self.origin + offset, length, valid

    def next_window(self) -> tuple[int, int] | None:
        """The input span ``[start, end)`` the next segment reads (padding included), None when done."""
        return self._window(self.k) if self.k < self.count else None

    def _window(self, k: int) -> tuple[int, int]:
        start, length, valid = self._chunk(k)
        left = start - (valid - length) // 2
        return left, left + valid

    def needed_from(self) -> int:
        """The first input position a later segment still reads (full segments read in order; only
        the shorter last one can be padded further to the left)."""
        if self.k >= self.count:
            return self.frames
        return max(0, min(self._window(self.k)[0], self._window(self.count - 1)[0]))

    def add(self, out: torch.Tensor) -> None:
        from demucs.utils import center_trim

        start, length, _ = self._chunk()
        out = center_trim(out, length)
        end = start + length
        grow = end - (self.acc_start + self.sum_weight.shape[0])
        if grow > 0:
            fresh = torch.zeros(*out.shape[:-1], grow)
            self.acc = torch.cat([self.acc, fresh], dim=-1) if self.acc.numel() else fresh
            self.sum_weight = torch.cat([self.sum_weight, torch.zeros(grow)])
        a = start - self.acc_start
        self.acc[..., a:a + length] += self.weight[:length] * out
        self.sum_weight[a:a + length] += self.weight[:length]
        self.k += 1
        final = self.origin + self.k * self.stride if self.k < self.count else self.frames
        done = final - self.acc_start
        if done > 0:
            finished = self.acc[..., :done] / self.sum_weight[:done]
            if self.acc_start < 0:
                finished = finished[..., -self.acc_start:]
            if finished.shape[-1]:
                self.finished.append(finished)
                self.ready += finished.shape[-1]
            self.acc, self.sum_weight = self.acc[..., done:], self.sum_weight[done:]
            self.acc_start = final

    def take(self, n: int) -> torch.Tensor:
        joined = torch.cat(self.finished, dim=-1) if len(self.finished) > 1 else self.finished[0]
        self.finished = [joined[..., n:]] if joined.shape[-1] > n else []
        self.ready -= n
        return joined[..., :n].clone()


def max_segment(model: Any) -> float:
    """The longest segment (seconds) ``model`` accepts: a transformer's training segment, else inf."""
    from demucs.htdemucs import HTDemucs

    limits = [float(m.segment) for m in getattr(model, "models", [model]) if isinstance(m, HTDemucs)]
    return min(limits) if limits else float("inf")
