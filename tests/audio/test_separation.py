"""Vocals / instrumental separation (app.audio.separation): Spleeter on a real MUSDB18 excerpt,
Demucs through the real loading path with small random (and identity) models in a local repo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from app.audio import io, resampling, separation
from app.audio.separation import UnknownModel
from app.audio.types import JobCanceled, ModelUnavailable, Waveform
from tests.audio.demucs_fixtures import make_demucs_repo, make_identity_demucs_repo
from tests.audio.signal_checks import correlation, xcorr_lag

EXCERPT = "separation/musicdelta-80s-rock"


class Recorder:
    """A progress callback that records its calls and can cancel after ``cancel_after`` calls."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.calls: list[tuple[float, str]] = []
        self.cancel_after = cancel_after

    def __call__(self, fraction: float, stage: str) -> None:
        self.calls.append((fraction, stage))
        if self.cancel_after is not None and len(self.calls) > self.cancel_after:
            raise JobCanceled("canceled by the test")

    @property
    def fractions(self) -> list[float]:
        return [f for f, _ in self.calls]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run these small models on one thread: on a 2-core machine that shares its CPU with anything
    else, two threads spend most of their time waiting for each other (measured 20x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def excerpt(data_dir: Path) -> dict[str, Waveform]:
    return {
        name: io.decode(data_dir / EXCERPT / f"{name}.flac")
        for name in ("mixture", "vocals", "accompaniment")
    }


def _assert_progress(recorder: Recorder) -> None:
    assert recorder.calls and {stage for _, stage in recorder.calls} == {"separating"}
    assert recorder.fractions == sorted(recorder.fractions)
    assert recorder.fractions[0] >= 0.0 and recorder.fractions[-1] == 1.0


# --- Spleeter ------------------------------------------------------------------------------------


def test_spleeter_separates_the_excerpt_sample_aligned(excerpt: dict[str, Waveform], tmp_path: Path) -> None:
    mix = excerpt["mixture"]
    reference_vocals, reference_accompaniment = excerpt["vocals"], excerpt["accompaniment"]
    progress = Recorder()
    stems = separation.separate(mix, "spleeter", tmp_path, progress)

    for stem in (stems.vocals, stems.instrumental):
        assert stem.samples.shape == mix.samples.shape and stem.sample_rate == mix.sample_rate
        assert stem.samples.dtype == np.float32
    assert stems.model == "spleeter" and stems.compute_seconds > 0
    # The two stems rebuild the mix exactly, with no time offset.
    np.testing.assert_allclose(stems.vocals.samples + stems.instrumental.samples, mix.samples, atol=1e-5)
    assert xcorr_lag(reference_vocals.samples, stems.vocals.samples) == 0
    assert xcorr_lag(reference_accompaniment.samples, stems.instrumental.samples) == 0
    # And they are not trivial: the vocals stem is the singer, not the band.
    assert correlation(stems.vocals.samples, reference_vocals.samples) > 0.8
    assert correlation(stems.vocals.samples, reference_accompaniment.samples) < 0.3
    assert correlation(stems.instrumental.samples, reference_accompaniment.samples) > 0.9
    _assert_progress(progress)


def test_spleeter_at_another_rate_and_mono(excerpt: dict[str, Waveform], tmp_path: Path) -> None:
    mix = excerpt["mixture"]
    mono48 = Waveform(resampling.resample(mix.samples.mean(axis=0, keepdims=True), 44100, 48000), 48000)
    stems = separation.separate(mono48, "spleeter", tmp_path)
    assert stems.vocals.samples.shape == mono48.samples.shape and stems.vocals.sample_rate == 48000
    np.testing.assert_allclose(stems.vocals.samples + stems.instrumental.samples, mono48.samples, atol=1e-5)
    reference = resampling.resample(excerpt["vocals"].samples.mean(axis=0, keepdims=True), 44100, 48000)
    assert xcorr_lag(reference, stems.vocals.samples) == 0
    assert correlation(stems.vocals.samples, reference) > 0.7


def test_spleeter_chunks_long_audio_without_seams(excerpt: dict[str, Waveform], tmp_path: Path) -> None:
    # 27 s: three overlapping chunks; the crossfades must not shift or smear the vocals.
    reps = 4
    mix = Waveform(np.tile(excerpt["mixture"].samples, reps), 44100)
    reference = np.tile(excerpt["vocals"].samples, reps)
    progress = Recorder()
    stems = separation.separate(mix, "spleeter", tmp_path, progress)
    assert len(progress.calls) >= 4  # start, one per chunk, end
    assert xcorr_lag(reference, stems.vocals.samples) == 0
    assert correlation(stems.vocals.samples, reference) > 0.8
    np.testing.assert_allclose(stems.vocals.samples + stems.instrumental.samples, mix.samples, atol=1e-5)


def test_spleeter_cancels_from_the_progress_callback(excerpt: dict[str, Waveform], tmp_path: Path) -> None:
    mix = Waveform(np.tile(excerpt["mixture"].samples, 3), 44100)
    with pytest.raises(JobCanceled):
        separation.separate(mix, "spleeter", tmp_path, Recorder(cancel_after=1))


# --- Demucs --------------------------------------------------------------------------------------


def test_demucs_small_random_model_runs_the_real_path(excerpt: dict[str, Waveform], tmp_path: Path) -> None:
    make_demucs_repo(tmp_path, "htdemucs")
    mix = Waveform(excerpt["mixture"].samples[:, : 5 * 44100], 44100)
    progress = Recorder()
    stems = separation.separate(mix, "htdemucs", tmp_path, progress)
    assert stems.vocals.samples.shape == stems.instrumental.samples.shape == mix.samples.shape
    assert np.isfinite(stems.vocals.samples).all() and np.isfinite(stems.instrumental.samples).all()
    assert stems.load_seconds > 0
    _assert_progress(progress)
    assert len(progress.calls) >= 3  # 5 s in 4 s segments with 25% overlap: 2 segments, plus start/end

    again = separation.separate(mix, "htdemucs", tmp_path)
    assert again.load_seconds == 0.0  # cached in the process registry
    np.testing.assert_array_equal(again.vocals.samples, stems.vocals.samples)  # shifts=0: reproducible


def test_demucs_path_is_sample_aligned(excerpt: dict[str, Waveform], tmp_path: Path) -> None:
    # The identity model returns its input as "vocals": whatever the wrapper does around the
    # network (48 kHz <-> 44.1 kHz, mono -> stereo pairs, normalisation, overlap-add) must undo.
    make_identity_demucs_repo(tmp_path, "htdemucs_ft")
    mono48 = Waveform(resampling.resample(excerpt["mixture"].samples[:1], 44100, 48000), 48000)
    stems = separation.separate(mono48, "htdemucs_ft", tmp_path)
    assert stems.vocals.samples.shape == mono48.samples.shape
    assert xcorr_lag(mono48.samples, stems.vocals.samples) == 0
    np.testing.assert_allclose(stems.vocals.samples, mono48.samples, atol=2e-3)
    assert np.abs(stems.instrumental.samples).max() < 1e-3


def test_demucs_bag_of_models_from_yaml(excerpt: dict[str, Waveform], tmp_path: Path) -> None:
    repo = make_demucs_repo(tmp_path, "htdemucs_ft", n_models=4)
    assert len(list(repo.glob("*.th"))) == 4 and (repo / "htdemucs_ft.yaml").is_file()
    mix = Waveform(excerpt["mixture"].samples[:, : 3 * 44100], 44100)
    progress = Recorder()
    stems = separation.separate(mix, "htdemucs_ft", tmp_path, progress)
    assert stems.vocals.samples.shape == mix.samples.shape
    assert len(progress.calls) >= 4 + 1  # at least one segment per model in the bag
    _assert_progress(progress)


def test_demucs_cancels_from_the_progress_callback(excerpt: dict[str, Waveform], tmp_path: Path) -> None:
    make_demucs_repo(tmp_path, "htdemucs")
    mix = Waveform(excerpt["mixture"].samples, 44100)
    progress = Recorder(cancel_after=1)
    with pytest.raises(JobCanceled):
        separation.separate(mix, "htdemucs", tmp_path, progress)
    assert len(progress.calls) == 2


def test_demucs_without_weights_is_unavailable(tmp_path: Path) -> None:
    wf = Waveform(np.zeros((2, 44100), np.float32), 44100)
    with pytest.raises(ModelUnavailable, match="no Demucs model folder"):
        separation.separate(wf, "htdemucs", tmp_path)
    (tmp_path / "demucs").mkdir()
    with pytest.raises(ModelUnavailable, match="955717e8"):  # names the released file to fetch
        separation.separate(wf, "htdemucs", tmp_path)


def test_corrupt_demucs_weights_are_unavailable(tmp_path: Path) -> None:
    repo = make_demucs_repo(tmp_path, "htdemucs")
    for weights in repo.glob("*.th"):
        weights.write_bytes(weights.read_bytes()[:1000])  # an interrupted copy
    wf = Waveform(np.zeros((2, 44100), np.float32), 44100)
    with pytest.raises(ModelUnavailable, match="could not load"):
        separation.separate(wf, "htdemucs", tmp_path)


def test_unknown_model_name(tmp_path: Path) -> None:
    wf = Waveform(np.zeros((2, 100), np.float32), 44100)
    with pytest.raises(UnknownModel, match="nope"):
        separation.separate(wf, "nope", tmp_path)
    assert issubclass(UnknownModel, ValueError)


# --- catalog -------------------------------------------------------------------------------------


def test_catalog_and_default_model(tmp_path: Path) -> None:
    rows = {row["name"]: row for row in separation.available_models(tmp_path)}
    assert {"spleeter", "htdemucs", "htdemucs_ft", "htdemucs_6s", "mdx_extra", "mdx_extra_q"} <= set(rows)
    assert rows["spleeter"]["available"] and rows["spleeter"]["reason"] is None
    assert not rows["htdemucs"]["available"] and rows["htdemucs"]["reason"]
    assert all({"name", "engine", "stems", "available", "reason"} <= set(row) for row in rows.values())
    assert separation.default_model(tmp_path) == "spleeter"

    make_demucs_repo(tmp_path, "htdemucs_6s")
    assert separation.default_model(tmp_path) == "htdemucs_6s"
    make_demucs_repo(tmp_path, "htdemucs")
    assert separation.default_model(tmp_path) == "htdemucs"
    rows = {row["name"]: row for row in separation.available_models(tmp_path)}
    assert rows["htdemucs"]["available"] and not rows["mdx_extra"]["available"]


def test_device_defaults_to_what_torch_sees() -> None:
    assert separation.resolve_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert separation.resolve_device("cuda:1") == "cuda:1"


def test_released_model_files_without_yaml_are_found(tmp_path: Path) -> None:
    # An operator who drops only the released .th file in: the yaml inside demucs names it.
    from tests.audio.demucs_fixtures import make_small_htdemucs, save_demucs_model

    save_demucs_model(make_small_htdemucs(), tmp_path / "demucs", "955717e8")
    assert separation.default_model(tmp_path) == "htdemucs"
    stems = separation.separate(Waveform(np.zeros((2, 22050), np.float32), 44100), "htdemucs", tmp_path)
    assert stems.vocals.samples.shape == (2, 22050)
