"""Separation quality measures (app.audio.separation.quality) on the MUSDB18 MusicDelta excerpt,
whose mixture is the exact sum of its vocals and accompaniment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from app.audio import io, separation
from app.audio.separation import quality
from app.audio.types import Waveform

EXCERPT = "separation/musicdelta-80s-rock"


@pytest.fixture(scope="module")
def excerpt(data_dir: Path) -> dict[str, Waveform]:
    return {name: io.decode(data_dir / EXCERPT / f"{name}.flac") for name in ("mixture", "vocals", "accompaniment")}


@pytest.fixture(scope="module")
def spleeter(excerpt: dict[str, Waveform], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Waveform]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        stems = separation.separate(excerpt["mixture"], "spleeter", tmp_path_factory.mktemp("models"))
    finally:
        torch.set_num_threads(threads)
    yield {"vocals": stems.vocals, "accompaniment": stems.instrumental}


def _residue_checks(residue: dict) -> None:
    assert 0 < residue["singing_seconds"] < 6.9
    for key in ("instrumental_db_singing", "instrumental_db_not_singing"):
        assert -60 < residue[key] < 0
    assert residue["residue_db"] == pytest.approx(
        residue["instrumental_db_singing"] - residue["instrumental_db_not_singing"], abs=0.02)


def test_reference_free_on_true_stems(excerpt):
    stems = {"vocals": excerpt["vocals"], "accompaniment": excerpt["accompaniment"]}
    result = quality.reference_free(excerpt["mixture"], stems)
    assert result["reconstruction_error_db"] < -60
    _residue_checks(result["vocal_residue"])
    assert result["vocal_residue"]["singing_seconds"] > 3  # the excerpt is sung almost throughout


def test_reconstruction_error_sees_a_missing_stem(excerpt):
    only_vocals = quality.reference_free(excerpt["mixture"], {"vocals": excerpt["vocals"]})
    assert -20 < only_vocals["reconstruction_error_db"] < 0  # the accompaniment is missing
    assert "vocal_residue" not in only_vocals  # no instrumental to measure


def test_reference_free_is_safe_on_silence():
    silence = Waveform(np.zeros((2, 44100), dtype=np.float32), 44100)
    result = quality.reference_free(silence, {"vocals": silence, "instrumental": silence})
    assert result["reconstruction_error_db"] == quality.FLOOR_DB
    residue = result["vocal_residue"]
    assert residue["singing_seconds"] == 0 and residue["instrumental_db_singing"] is None
    assert residue["instrumental_db_not_singing"] == quality.FLOOR_DB and residue["residue_db"] is None


def test_reference_free_on_spleeter_stems(excerpt, spleeter):
    result = quality.reference_free(excerpt["mixture"], spleeter)
    assert result["reconstruction_error_db"] < -40  # Spleeter's instrumental is the mix minus its vocals
    _residue_checks(result["vocal_residue"])
    true = quality.reference_free(excerpt["mixture"], {"vocals": excerpt["vocals"],
                                                       "accompaniment": excerpt["accompaniment"]})
    assert abs(result["vocal_residue"]["singing_seconds"] - true["vocal_residue"]["singing_seconds"]) < 1.5


def test_bss_eval_of_the_true_stems_is_near_perfect(excerpt):
    refs = {"vocals": excerpt["vocals"], "accompaniment": excerpt["accompaniment"]}
    result = quality.bss_eval(refs, refs)
    for name in refs:
        assert result[name]["SDR"] > 60 and result[name]["SIR"] > 60 and result[name]["SAR"] > 60


def test_bss_eval_of_spleeter(excerpt, spleeter):
    refs = {"vocals": excerpt["vocals"], "accompaniment": excerpt["accompaniment"]}
    result = quality.bss_eval(refs, spleeter)
    # measured: vocals SDR 12.1, accompaniment SDR 14.8 (median over six 1 s windows)
    for name in refs:
        metrics = result[name]
        assert set(metrics) == {"SDR", "SIR", "SAR", "ISR"}
        assert all(np.isfinite(v) for v in metrics.values())
        assert 3 < metrics["SDR"] < 40
    # a swapped estimate is much worse than the real one
    swapped = quality.bss_eval(refs, {"vocals": spleeter["accompaniment"], "accompaniment": spleeter["vocals"]})
    assert swapped["vocals"]["SDR"] < result["vocals"]["SDR"] - 10


def test_bss_eval_needs_common_sources(excerpt):
    with pytest.raises(ValueError):
        quality.bss_eval({"vocals": excerpt["vocals"]}, {"drums": excerpt["vocals"]})
