"""Separation in bounded memory: audio is read, separated and handed on block by block.

A ``Source`` reads the input in blocks (a file through ``io.iter_blocks``, or an array). ``run``
resamples each block to the model's rate, splits the channels into stereo pairs, feeds a
``StreamEngine`` (Spleeter's or Demucs's) and hands every block the engine has finished, back at
the input's rate and channel count, to a ``sink`` together with the matching block of the input.
Memory depends on the model's segment length, never on the song's length: a 60-minute file
needs what a 4-minute one does. The concatenated output is sample-aligned with the input and has
exactly its length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from app.audio.io import iter_blocks
from app.audio.resampling import StreamResampler
from app.audio.separation.channels import merge_pairs, stereo_pairs

BLOCK_FRAMES = 1 << 17  # ~3 s at 44.1 kHz per read
Sink = Callable[[np.ndarray, dict[str, np.ndarray]], None]
"""``sink(mix, stems)``: the next block of the input and of every stem, all ``(channels, n)``."""


@dataclass
class Source:
    """Audio to separate: its rate, channel count, and a way to read it (again) from the start."""

    sample_rate: int
    channels: int
    blocks: Callable[[], Iterator[np.ndarray]]
    frames: int | None = None  # None: counted by a first pass over ``blocks``

    @classmethod
    def from_array(cls, samples: np.ndarray, sample_rate: int, block_frames: int = BLOCK_FRAMES) -> Source:
        """An in-memory ``(channels, frames)`` array."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if samples.ndim != 2 or samples.shape[0] < 1:
            raise ValueError(f"expected samples shaped (channels, frames), got {samples.shape}")

        def blocks() -> Iterator[np.ndarray]:
            for start in range(0, samples.shape[1], block_frames):
                yield samples[:, start:start + block_frames]

        return cls(sample_rate, samples.shape[0], blocks, samples.shape[1])

    @classmethod
    def from_file(cls, path: str | Path, block_frames: int = BLOCK_FRAMES) -> Source:
        """A file FFmpeg decodes (an upload ``io.probe`` accepted); read twice, never held whole."""
        with av.open(str(path), "r", metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            rate, channels = int(stream.rate), int(stream.channels)
        return cls(rate, channels, lambda: iter_blocks(path, block_frames))


class StreamEngine(Protocol):
    """A separation model fed stereo pairs ``(pairs, 2, n)`` at its own rate, in order."""

    rate: int
    names: tuple[str, ...]  # the stems ``push`` returns; "instrumental" is computed by ``run`` if absent
    needs_stats: bool  # whether ``start`` wants each pair's mean and std over the whole song

    def start(self, frames: int, stats: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Before the first block: the song's length at ``rate`` and, if asked, per-pair (mean, std)."""

    def push(self, pairs: np.ndarray | None) -> dict[str, np.ndarray]:
        """The next input block (None: the end); returns the stems' blocks now final, same length each."""


def run(source: Source, engine: StreamEngine, sink: Sink) -> int:
    """Separate ``source`` with ``engine``, calling ``sink`` with the input and the stems block by
    block; returns the number of frames. Exceptions (``JobCanceled`` from the engine's progress
    callback included) propagate; the sink's owner cleans up."""
    frames, stats = _first_pass(source, engine)
    engine.start(round(frames * engine.rate / source.sample_rate), stats)
    channels = source.channels
    to_model = StreamResampler(channels, source.sample_rate, engine.rate)
    names = engine.names if "instrumental" in engine.names else (*engine.names, "instrumental")
    back = {name: StreamResampler(channels, engine.rate, source.sample_rate) for name in engine.names}
    queues: dict[str, _Queue] = {name: _Queue() for name in ("mix", *engine.names)}

    def take(outs: dict[str, np.ndarray], final: bool = False) -> None:
        for name in engine.names:
            block = outs.get(name)
            merged = merge_pairs(list(block), channels) if block is not None and block.shape[-1] else None
            native = back[name].push(merged) if merged is not None else np.zeros((channels, 0), np.float32)
            queues[name].put(np.concatenate([native, back[name].finish()], axis=1) if final else native)
        ready = min(q.frames for q in queues.values())
        if ready:
            mix = queues["mix"].get(ready)
            stems = {name: queues[name].get(ready) for name in engine.names}
            if "instrumental" not in stems:  # Spleeter: the mix minus the vocals, so both sum to the mix
                stems["instrumental"] = mix - stems["vocals"]
            sink(mix, {name: stems[name] for name in names})

    for block in source.blocks():
        queues["mix"].put(block)
        take(engine.push(_pairs(to_model.push(block))))
    take(engine.push(_pairs(to_model.finish())))
    take(engine.push(None), final=True)
    return frames


def _first_pass(source: Source, engine: StreamEngine) -> tuple[int, tuple[np.ndarray, np.ndarray] | None]:
    """The length, and what Demucs normalises by: each stereo pair's mono mean and (unbiased) std at
    the model's rate, as ``demucs.api.Separator`` computes them over the whole song."""
    if source.frames is not None and not engine.needs_stats:
        return source.frames, None
    frames = 0
    to_model = StreamResampler(source.channels, source.sample_rate, engine.rate) if engine.needs_stats else None
    sums: np.ndarray | None = None
    squares: np.ndarray | None = None
    count = 0

    def add(block: np.ndarray) -> None:
        nonlocal sums, squares, count
        if not block.shape[1]:
            return
        ref = _pairs(block).astype(np.float64).mean(axis=1)  # (pairs, n): the pair's mono mix
        sums = ref.sum(axis=1) if sums is None else sums + ref.sum(axis=1)
        squares = (ref**2).sum(axis=1) if squares is None else squares + (ref**2).sum(axis=1)
        count += block.shape[1]

    for block in source.blocks():
        frames += block.shape[1]
        if to_model is not None:
            add(to_model.push(block))
    if to_model is None:
        return frames, None
    add(to_model.finish())
    pairs = (source.channels + 1) // 2  # as stereo_pairs splits them
    if sums is None or squares is None or count < 2:
        return frames, (np.zeros(pairs), np.ones(pairs))
    mean = sums / count
    std = np.sqrt(np.maximum(squares - count * mean**2, 0.0) / (count - 1))
    return frames, (mean, std)


def _pairs(block: np.ndarray) -> np.ndarray:
    return np.stack(stereo_pairs(block))


class _Queue:
    """Blocks waiting for the other stems to catch up."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.frames = 0

    def put(self, block: np.ndarray) -> None:
        if block.shape[1]:
            self.parts.append(block)
            self.frames += block.shape[1]

    def get(self, n: int) -> np.ndarray:
        joined = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts, axis=1)
        out, rest = joined[:, :n], joined[:, n:]
        self.parts = [rest] if rest.shape[1] else []
        self.frames -= n
        return out
