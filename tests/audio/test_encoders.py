"""Every written format decodes sample-aligned with its source, with PyAV and an independent reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mutagen.mp4 import MP4

from app.audio import io, writing
from app.audio.encoders import AAC_FRAME, vorbis_quality
from app.audio.types import Waveform

from .signal_checks import correlation, xcorr_lag

MIX = "separation/musicdelta-80s-rock/mixture.flac"


@pytest.fixture(scope="module")
def excerpt(data_dir: Path) -> Waveform:
    """The mix from 3 s on (about 3.8 s), a length no codec's frame size divides."""
    wf = io.decode(data_dir / MIX)
    cut = Waveform(wf.samples[:, 44100 * 3 :].copy(), wf.sample_rate)
    assert cut.frames % 1152 and cut.frames % 1024
    return cut


@pytest.mark.parametrize(
    ("fmt", "sample_format", "atol"),
    [("wav", "s16", 1 / 32767), ("wav", "s24", 2.0**-22), ("wav", "f32", 0.0), ("flac", "s16", 1 / 32767),
     ("flac", "s24", 2.0**-22)],
)
def test_pcm_formats_are_exact(excerpt: Waveform, tmp_path: Path, fmt: str, sample_format: str, atol: float) -> None:
    path = writing.write_audio(tmp_path / f"x.{fmt}", excerpt, sample_format=sample_format)
    subtype = {"s16": "PCM_16", "s24": "PCM_24", "f32": "FLOAT"}[sample_format]
    assert sf.info(path).subtype == subtype
    for back in (io.decode(path).samples, sf.read(path, dtype="float32", always_2d=True)[0].T):
        assert back.shape == excerpt.samples.shape
        np.testing.assert_allclose(back, excerpt.samples, atol=atol, rtol=0)


@pytest.mark.parametrize(("fmt", "kbps"), [("mp3", 192), ("mp3", 320), ("m4a", 192), ("m4a", 96), ("ogg", 192),
                                           ("ogg", 96)])
@pytest.mark.parametrize("channels", [2, 1])
def test_lossy_formats_decode_at_lag_zero_with_the_same_length(
    excerpt: Waveform, tmp_path: Path, fmt: str, kbps: int, channels: int
) -> None:
    source = Waveform(excerpt.samples[:channels], excerpt.sample_rate)
    path = writing.write_audio(tmp_path / f"x.{fmt}", source, bitrate_kbps=kbps)
    back = io.decode(path)
    assert (back.sample_rate, back.channels, back.frames) == (source.sample_rate, channels, source.frames)
    assert xcorr_lag(source.samples, back.samples) == 0
    assert correlation(source.samples, back.samples) > 0.98
    assert io.probe(path).duration_s == pytest.approx(source.frames / source.sample_rate, abs=1e-6)


def test_ogg_reads_back_the_same_with_libsndfile(excerpt: Waveform, tmp_path: Path) -> None:
    path = writing.write_audio(tmp_path / "x.ogg", excerpt)
    back = sf.read(path, dtype="float32", always_2d=True)[0].T
    assert back.shape == excerpt.samples.shape
    assert xcorr_lag(excerpt.samples, back) == 0 and correlation(excerpt.samples, back) > 0.98


def test_mp3_reads_back_the_same_with_libsndfile(excerpt: Waveform, tmp_path: Path) -> None:
    """libsndfile decodes MP3 with mpg123, which reads the LAME header's delay and padding itself."""
    path = writing.write_audio(tmp_path / "x.mp3", excerpt)
    back = sf.read(path, dtype="float32", always_2d=True)[0].T
    assert back.shape == excerpt.samples.shape
    assert xcorr_lag(excerpt.samples, back) == 0 and correlation(excerpt.samples, back) > 0.98


def test_m4a_carries_itunsmpb_and_an_exact_duration(excerpt: Waveform, tmp_path: Path) -> None:
    """Players that read iTunSMPB (Apple, foobar2000, Rockbox) skip ``delay`` and keep ``frames``."""
    path = writing.write_audio(tmp_path / "x.m4a", excerpt)
    mp4 = MP4(path)
    fields = bytes(mp4.tags["----:com.apple.iTunes:iTunSMPB"][0]).decode().split()
    delay, padding, frames = int(fields[1], 16), int(fields[2], 16), int(fields[3], 16)
    assert (delay, frames) == (AAC_FRAME, excerpt.frames)
    assert (delay + frames + padding) % AAC_FRAME == 0 and 0 <= padding < 2 * AAC_FRAME
    # the media duration counts the priming too; the edit list (read by decode) skips it
    assert mp4.info.length == pytest.approx((delay + frames) / excerpt.sample_rate, abs=1e-6)
    assert mp4.info.codec == "mp4a.40.2"  # AAC-LC


def test_lossy_rates_the_codec_lacks_are_resampled(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    wf = Waveform((0.1 * rng.standard_normal((2, 50000 * 2))).astype(np.float32), 50000)
    for fmt, rate in (("m4a", 44100), ("ogg", 50000)):
        info = io.probe(writing.write_audio(tmp_path / f"odd.{fmt}", wf))
        assert info.sample_rate == rate and info.duration_s == pytest.approx(2.0, abs=1e-3)


def test_ogg_bitrate_maps_to_vorbis_quality() -> None:
    assert vorbis_quality(192) == 6 and vorbis_quality(128) == 4 and vorbis_quality(500) == 10
    assert vorbis_quality(144) == pytest.approx(4.5)


@pytest.mark.parametrize(
    ("fmt", "kwargs", "message"),
    [("flac", {"sample_format": "f32"}, "FLAC takes sample_format s16 / s24"),
     ("wav", {"sample_format": "s8"}, "sample_format"),
     ("mp3", {"bitrate_kbps": 16}, "MP3 bitrate must be 32..320"),
     ("m4a", {"bitrate_kbps": 640}, "M4A bitrate"),
     ("ogg", {"bitrate_kbps": 32}, "OGG bitrate")],
)
def test_bad_settings_are_refused(tmp_path: Path, fmt: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        writing.write_audio(tmp_path / f"x.{fmt}", Waveform(np.zeros((2, 10), np.float32), 44100), **kwargs)
    assert list(tmp_path.iterdir()) == []
