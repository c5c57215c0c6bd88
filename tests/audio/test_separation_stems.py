"""Demucs options beyond two stems: every source (stems="all") and a segment override."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.audio import io, separation
from app.audio.separation import demucs_engine
from app.audio.types import Waveform
from tests.audio.demucs_fixtures import make_identity_demucs_repo
from tests.audio.signal_checks import xcorr_lag

MIX = "separation/musicdelta-80s-rock/mixture.flac"


@pytest.fixture(scope="module")
def mix(data_dir: Path) -> Waveform:
    wf = io.decode(data_dir / MIX)
    return Waveform(wf.samples[:, : 3 * 44100 + 77].copy(), wf.sample_rate)


def test_all_stems_returns_every_source_aligned(mix: Waveform, tmp_path: Path) -> None:
    make_identity_demucs_repo(tmp_path, "htdemucs")
    stems = separation.separate(mix, "htdemucs", tmp_path, stems="all")
    assert sorted(stems.others) == ["bass", "drums", "other"]
    for wave in (stems.vocals, stems.instrumental, *stems.others.values()):
        assert wave.samples.shape == mix.samples.shape and wave.sample_rate == mix.sample_rate
    assert xcorr_lag(mix.samples, stems.vocals.samples) == 0
    assert all(np.abs(w.samples).max() < 1e-3 for w in stems.others.values())  # the identity's silent sources
    assert separation.separate(mix, "htdemucs", tmp_path).others == {}  # two stems: none


def test_segment_override_runs_more_segments_and_is_capped(mix: Waveform, tmp_path: Path) -> None:
    make_identity_demucs_repo(tmp_path, "htdemucs")
    model, _ = separation.load("htdemucs", tmp_path)
    assert demucs_engine.max_segment(model) == float("inf")  # the stand-in is no transformer
    calls: list[float] = []
    stems = separation.separate(mix, "htdemucs", tmp_path, lambda f, s: calls.append(f), segment=1.0, overlap=0.5)
    assert len(calls) > 6  # 3 s in 1 s segments at 50% overlap, plus start and end
    np.testing.assert_allclose(stems.vocals.samples, mix.samples, atol=2e-3)


def test_catalog_states_each_models_segment_limit() -> None:
    assert separation.model_spec("htdemucs").max_segment == 7.8
    assert separation.model_spec("mdx_extra").max_segment == 60.0
    assert separation.model_spec("spleeter").max_segment is None and not separation.model_spec("spleeter").tunable
    with pytest.raises(ValueError, match="stems"):
        separation.separate(Waveform(np.zeros((2, 10), np.float32), 44100), "spleeter", ".", stems="four")
