"""Separation in blocks: the same stems as demucs's own code, from files as from arrays, output
that leaves while input is still being read (bounded memory), and CUDA out-of-memory retries."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from app.audio import io, separation, writing
from app.audio.separation import demucs_engine, spleeter, streaming
from app.audio.types import Waveform
from tests.audio.demucs_fixtures import FOUR_SOURCES, IdentityDemucs, make_demucs_repo

MIX = "separation/musicdelta-80s-rock/mixture.flac"


@pytest.fixture(scope="module")
def mix(data_dir: Path) -> Waveform:
    wf = io.decode(data_dir / MIX)
    return Waveform(wf.samples[:, 5 * 44100: 15 * 44100 + 123].copy(), wf.sample_rate)


def _demucs_reference(model: torch.nn.Module, wf: Waveform, **options: object) -> dict[str, np.ndarray]:
    """What ``demucs.api.Separator.separate_tensor`` (the CLI's code) gives for the same model."""
    from demucs.apply import apply_model

    wav = torch.from_numpy(wf.samples)
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std() + 1e-8
    with torch.no_grad():
        out = apply_model(model, ((wav - mean) / std)[None], progress=False, shifts=0, **options)[0] * std + mean
    vocals = out[model.sources.index("vocals")]
    rest = torch.zeros_like(vocals)
    for k, name in enumerate(model.sources):
        if name != "vocals":
            rest += out[k]
    return {"vocals": vocals.numpy(), "instrumental": rest.numpy()}


@pytest.mark.parametrize(("name", "n_models", "options"), [
    ("htdemucs", 1, {}),
    ("htdemucs", 1, {"segment": 2.5, "overlap": 0.5}),
    ("htdemucs_ft", 4, {}),
])
def test_streamed_demucs_matches_demucs_apply_model(mix: Waveform, tmp_path: Path, name: str, n_models: int,
                                                    options: dict) -> None:
    make_demucs_repo(tmp_path, name, n_models=n_models)
    model, _ = separation.load(name, tmp_path)
    expected = _demucs_reference(model, mix, **options)
    stems = separation.separate(mix, name, tmp_path, **options)
    for stem in ("vocals", "instrumental"):
        got = getattr(stems, stem).samples
        assert got.shape == expected[stem].shape
        assert float(np.abs(got - expected[stem]).max()) < 1e-5, stem


def test_six_stem_model_gives_every_source(mix: Waveform, tmp_path: Path) -> None:
    make_demucs_repo(tmp_path, "htdemucs_6s")
    stems = separation.separate(mix, "htdemucs_6s", tmp_path, stems="all")
    assert sorted(stems.others) == ["bass", "drums", "guitar", "other", "piano"]
    total = sum(w.samples for w in stems.others.values())
    np.testing.assert_allclose(stems.instrumental.samples, total, atol=1e-5)  # the instrumental is their sum
    assert all(w.samples.shape == mix.samples.shape for w in stems.others.values())


@pytest.mark.parametrize("model", ["spleeter", "htdemucs"])
def test_file_source_gives_what_the_array_gives(mix: Waveform, tmp_path: Path, model: str) -> None:
    make_demucs_repo(tmp_path, "htdemucs")
    path = writing.write_audio(tmp_path / "mix.flac", mix, sample_format="s24")
    decoded = io.decode(path)
    expected = separation.separate(decoded, model, tmp_path)
    blocks: dict[str, list[np.ndarray]] = {}
    run = separation.separate_stream(streaming.Source.from_file(path, block_frames=10_000), model, tmp_path,
                                     lambda m, stems: [blocks.setdefault(k, []).append(v) for k, v in stems.items()])
    assert run.frames == decoded.frames and run.sample_rate == 44100 and run.channels == 2
    for stem in ("vocals", "instrumental"):
        np.testing.assert_array_equal(np.concatenate(blocks[stem], axis=1), getattr(expected, stem).samples)


@pytest.mark.parametrize("model", ["spleeter", "htdemucs"])
def test_stems_leave_while_the_song_is_still_being_read(tmp_path: Path, model: str) -> None:
    """Memory is bounded because output is handed on as it is finished: at every sink call the
    input read so far is at most two segments (or Spleeter chunks) and a block ahead of the output."""
    make_demucs_repo(tmp_path, "htdemucs")  # 4 s segments
    rate, block = 44100, 20_000
    samples = np.random.default_rng(0).normal(0, 0.1, (2, 40 * rate)).astype(np.float32)
    read = 0

    def blocks() -> Iterator[np.ndarray]:
        nonlocal read
        for start in range(0, samples.shape[1], block):
            read = min(start + block, samples.shape[1])
            yield samples[:, start:start + block]

    out, lags = 0, []

    def sink(mix: np.ndarray, stems: dict[str, np.ndarray]) -> None:
        nonlocal out
        out += mix.shape[1]
        lags.append(read - out)

    separation.separate_stream(streaming.Source(rate, 2, blocks, samples.shape[1]), model, tmp_path, sink)
    assert out == samples.shape[1] and len(lags) >= 3  # 40 s: 4 Spleeter chunks, 13 Demucs segments
    limit = 2 * (spleeter.CHUNK_SAMPLES if model == "spleeter" else 4 * rate) + block
    assert max(lags) <= limit


class _OomIdentity(IdentityDemucs):
    """The identity model on a device with too little memory for inputs longer than ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__(FOUR_SOURCES, segment=4.0)
        self.limit, self.calls = limit, 0

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if mix.shape[-1] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().forward(mix)


def test_out_of_memory_retries_with_smaller_segments(mix: Waveform) -> None:
    model = _OomIdentity(limit=int(1.5 * 44100))  # 4 s fails, 2 s fails, 1 s segments fit
    engine = demucs_engine.DemucsStream(model, lambda f, s: None)
    parts: list[np.ndarray] = []
    streaming.run(streaming.Source.from_array(mix.samples, 44100), engine, lambda m, s: parts.append(s["vocals"]))
    assert engine.oom_segment == 1.0 and engine.oom_retries == 1
    np.testing.assert_allclose(np.concatenate(parts, axis=1), mix.samples, atol=2e-3)  # still the right output

    hopeless = demucs_engine.DemucsStream(_OomIdentity(limit=100), lambda f, s: None)
    with pytest.raises(torch.OutOfMemoryError, match="even with 1.00 s segments"):
        streaming.run(streaming.Source.from_array(mix.samples, 44100), hopeless, lambda m, s: None)


@pytest.mark.skipif(not os.environ.get("TEST_TORCH_COMPILE"),
                    reason="torch.compile takes ~10 min cold on 2 cores; TEST_TORCH_COMPILE=1 runs it")
def test_compiled_demucs_gives_the_eager_stems(mix: Waveform, tmp_path: Path) -> None:
    make_demucs_repo(tmp_path, "htdemucs")
    eager = separation.separate(mix, "htdemucs", tmp_path)
    compiled, _ = separation.load("htdemucs", tmp_path, compile=True)
    assert "forward" in vars(compiled.models[0])  # compiled in place at load (falls back to eager only on failure)
    stems = separation.separate(mix, "htdemucs", tmp_path, compile=True)
    assert stems.load_seconds == 0.0  # cached, compiled once
    np.testing.assert_allclose(stems.vocals.samples, eager.vocals.samples, atol=1e-4)
