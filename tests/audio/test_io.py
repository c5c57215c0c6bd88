"""Decoding, probing (app.audio.io), writing (app.audio.writing) and resampling (app.audio.resampling) audio
on real recordings from ../shared/data."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from app.audio import encoders, io, resampling, writing
from app.audio.types import AudioDecodeError, Waveform
from tests.audio.signal_checks import correlation, xcorr_lag

SONG = "songs-en/jonathan-coulton-better/audio.mp3"
MIX = "separation/musicdelta-80s-rock/mixture.flac"


@pytest.mark.parametrize(
    ("relative", "duration", "channels", "codec", "fmt"),
    [
        (SONG, 194.61, 2, "mp3", "mp3"),
        ("songs-en/joshua-morin-on-the-run/audio.ogg", 288.29, 2, "vorbis", "ogg"),
        (MIX, 6.80, 2, "flac", "flac"),
        ("singing/vocadito-1/vocadito_1.wav", 33.21, 1, "pcm_s16le", "wav"),
    ],
)
def test_probe_describes_real_files(
    data_dir: Path, relative: str, duration: float, channels: int, codec: str, fmt: str
) -> None:
    info = io.probe(data_dir / relative)
    assert info.duration_s == pytest.approx(duration, abs=0.01)
    assert (info.sample_rate, info.channels, info.codec, info.format) == (44100, channels, codec, fmt)


def test_decode_flac_is_bit_exact_with_soundfile(data_dir: Path) -> None:
    wf = io.decode(data_dir / MIX)
    reference, rate = sf.read(data_dir / MIX, dtype="float32", always_2d=True)
    assert wf.sample_rate == rate == 44100
    assert wf.samples.dtype == np.float32 and wf.samples.shape == reference.T.shape
    np.testing.assert_allclose(wf.samples, reference.T, atol=1e-6)


def test_decode_resamples_and_downmixes(data_dir: Path) -> None:
    native = io.decode(data_dir / MIX)
    wf = io.decode(data_dir / MIX, sample_rate=16000, channels=1)
    assert wf.sample_rate == 16000 and wf.channels == 1
    assert wf.frames == round(native.frames * 16000 / 44100)
    back = resampling.resample(wf.samples, 16000, 44100)
    assert xcorr_lag(native.mono(), back[0]) == 0


def test_decode_mono_to_stereo(data_dir: Path) -> None:
    wf = io.decode(data_dir / "singing/vocadito-1/vocadito_1.wav", channels=2)
    assert wf.channels == 2 and np.array_equal(wf.samples[0], wf.samples[1])


def test_resample_keeps_time_alignment() -> None:
    impulse = np.zeros((1, 44100), np.float32)
    impulse[0, 22050] = 1.0
    for rate in (16000, 22050, 48000):
        out = resampling.resample(impulse, 44100, rate)
        assert out.shape == (1, round(44100 * rate / 44100))
        assert abs(int(np.argmax(np.abs(out[0]))) - 0.5 * rate) <= 1


# --- inputs that must be refused ---------------------------------------------------------------


def _cut(src: Path, dst: Path, stop: int) -> Path:
    dst.write_bytes(src.read_bytes()[:stop])
    return dst


def test_text_named_mp3_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lyrics.mp3"
    path.write_text("These are not the samples you are looking for.\n" * 40)
    with pytest.raises(AudioDecodeError, match="not an audio file"):
        io.probe(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty"):
        io.probe(path)


def test_first_two_kilobytes_of_mp3_are_refused(data_dir: Path, tmp_path: Path) -> None:
    path = _cut(data_dir / SONG, tmp_path / "head.mp3", 2048)
    with pytest.raises(AudioDecodeError):
        io.probe(path)


def test_mp3_cut_mid_file_is_refused(data_dir: Path, tmp_path: Path) -> None:
    # A constant-bitrate MP3 without a Xing header: FFmpeg decodes the first 40% without an error
    # and estimates the duration from the file size, so only the half-written last frame tells.
    src = data_dir / SONG
    path = _cut(src, tmp_path / "cut.mp3", int(src.stat().st_size * 0.4))
    with pytest.raises(AudioDecodeError, match="truncated"):
        io.probe(path)
    with pytest.raises(AudioDecodeError, match="truncated"):
        io.decode(path)


def test_vbr_mp3_cut_on_a_frame_boundary_is_refused(data_dir: Path, tmp_path: Path) -> None:
    # Cut exactly between frames: no partial frame, but the Xing header's frame count tells.
    src = data_dir / "songs-multi/confession-quesabe/audio.mp3"
    with av.open(str(src)) as container:
        positions = [p.pos for p in container.demux(container.streams.audio[0]) if p.size]
    path = _cut(src, tmp_path / "cut.mp3", positions[len(positions) // 2])
    with pytest.raises(AudioDecodeError, match="declares"):
        io.probe(path)


def test_ogg_cut_mid_file_is_refused(data_dir: Path, tmp_path: Path) -> None:
    # FFmpeg reads an Ogg file's duration from its last page, so a cut file looks whole to it.
    src = data_dir / "songs-en/joshua-morin-on-the-run/audio.ogg"
    path = _cut(src, tmp_path / "cut.ogg", int(src.stat().st_size * 0.4))
    with pytest.raises(AudioDecodeError, match="Ogg page"):
        io.probe(path)


def test_raw_aac_cut_mid_frame_is_refused(data_dir: Path, tmp_path: Path) -> None:
    wf = io.decode(data_dir / MIX)
    whole = tmp_path / "whole.aac"
    with av.open(str(whole), "w", format="adts") as out:
        stream = out.add_stream("aac", rate=44100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(wf.samples, format="fltp", layout="stereo")
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    assert io.probe(whole).codec == "aac"
    path = _cut(whole, tmp_path / "cut.aac", whole.stat().st_size // 2)
    with pytest.raises(AudioDecodeError, match="middle of an audio frame"):
        io.probe(path)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_lossless_files_cut_in_half_are_refused(data_dir: Path, tmp_path: Path, fmt: str) -> None:
    whole = writing.write_audio(tmp_path / f"whole.{fmt}", io.decode(data_dir / MIX))
    path = _cut(whole, tmp_path / f"cut.{fmt}", whole.stat().st_size // 2)
    with pytest.raises(AudioDecodeError, match="truncated"):
        io.probe(path)


def test_missing_file_is_not_a_decode_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        io.probe(tmp_path / "nowhere.mp3")


# --- writing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "rate", "channels"),
    [
        ("wav", 44100, 2),
        ("flac", 44100, 2),
        ("mp3", 44100, 2),
        ("mp3", 48000, 1),
        ("mp3", 22050, 2),
    ],
)
def test_round_trip_is_sample_aligned(
    data_dir: Path, tmp_path: Path, fmt: str, rate: int, channels: int
) -> None:
    wf = io.decode(data_dir / MIX, sample_rate=rate, channels=channels)
    path = writing.write_audio(tmp_path / f"out.{fmt}", wf)
    back = io.decode(path)
    assert (back.sample_rate, back.channels, back.frames) == (rate, channels, wf.frames)
    assert xcorr_lag(wf.samples, back.samples) == 0
    if fmt == "mp3":
        assert correlation(wf.samples, back.samples) > 0.99
    else:
        np.testing.assert_allclose(back.samples, wf.samples, atol=1.0 / 32767)


def test_mp3_bitrate_and_unsupported_rate(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wf = Waveform((0.1 * rng.standard_normal((2, 96000 * 2))).astype(np.float32), 96000)
    path = writing.write_audio(tmp_path / "hi.mp3", wf, bitrate_kbps=128)
    info = io.probe(path)
    assert info.sample_rate == 44100 and info.duration_s == pytest.approx(2.0, abs=1e-3)
    assert path.stat().st_size == pytest.approx(128_000 / 8 * 2, rel=0.1)


def test_write_is_atomic_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wf = Waveform(np.zeros((2, 4410), np.float32), 44100)
    writing.write_audio(tmp_path / "ok.flac", wf)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.flac"]

    def broken(self: object, samples: np.ndarray) -> None:
        self.out.close()  # type: ignore[attr-defined]
        Path(self.path).write_bytes(b"half an mp3")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(encoders._FfmpegEncoder, "write", broken)
    with pytest.raises(OSError, match="disk full"):
        writing.write_audio(tmp_path / "bad.mp3", wf)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.flac"]


def test_write_refuses_unknown_format_and_surround_mp3(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aiff"):
        writing.write_audio(tmp_path / "x.aiff", Waveform(np.zeros((2, 10), np.float32), 44100))
    with pytest.raises(ValueError, match="channels"):
        writing.write_audio(tmp_path / "x.mp3", Waveform(np.zeros((6, 10), np.float32), 44100))


def test_write_clips_out_of_range_samples(tmp_path: Path) -> None:
    wf = Waveform(np.full((1, 4410), 1.5, np.float32), 44100)
    back = io.decode(writing.write_audio(tmp_path / "loud.wav", wf))
    assert back.samples.max() <= 1.0 and back.samples.min() > 0.99


def test_mp3_stays_aligned_after_id3_lyrics_are_added(data_dir: Path, tmp_path: Path) -> None:
    # Karaoke files get SYLT/USLT frames afterwards; growing the ID3 tag must not lose the LAME
    # header that tells decoders how many priming samples to drop.
    from mutagen.id3 import ID3, SYLT, USLT, Encoding

    wf = io.decode(data_dir / MIX)
    path = writing.write_audio(tmp_path / "karaoke.mp3", wf)
    tags = ID3(path)
    tags.add(USLT(encoding=Encoding.UTF8, lang="eng", desc="", text="la la la\n" * 200))
    tags.add(SYLT(encoding=Encoding.UTF8, lang="eng", format=2, type=1, text=[("la", 1000)] * 300))
    tags.save(path)
    back = io.decode(path)
    assert back.frames == wf.frames and xcorr_lag(wf.samples, back.samples) == 0
