"""Encoders behind ``writing.write_audio``: each writes a file that decodes sample-aligned with its input.

Lossy codecs add samples: an encoder delay (priming) before the audio and padding after it, up to a
whole codec frame. Each format here carries the metadata that lets decoders remove both, so a
decoder that honours it returns exactly the input's frames at lag 0:

- MP3 (FFmpeg's libmp3lame): the LAME/Xing header records the delay and padding.
- M4A (FFmpeg's AAC encoder, iPod/MP4 muxer): an edit list skips the 1024 priming samples and states
  the exact duration (the movie timescale is set to the sample rate so it is exact to the sample);
  an iTunes ``iTunSMPB`` tag repeats delay, padding and length for players that read that instead.
- OGG Vorbis (libsndfile): the last page's granule position gives the exact length; Vorbis has no
  priming to skip.

PCM formats (WAV, FLAC) store the samples as they are, as 16-bit or 24-bit integers, or 32-bit
float (WAV only).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf

from app.audio.resampling import StreamResampler

LOSSY_FORMATS = ("mp3", "m4a", "ogg")
LOSSLESS_FORMATS = ("wav", "flac")
SAMPLE_FORMATS = {"wav": ("s16", "s24", "f32"), "flac": ("s16", "s24")}
BITRATE_RANGES_KBPS = {"mp3": (32, 320), "m4a": (32, 320), "ogg": (64, 500)}
DEFAULT_BITRATE_KBPS = 192
MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
AAC_SAMPLE_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
AAC_FRAME = 1024
_SOUNDFILE_SUBTYPES = {"s16": "PCM_16", "s24": "PCM_24", "f32": "FLOAT"}
# Vorbis quality (-1..10) and the nominal bitrate it aims at for 44.1 kHz stereo (libvorbis docs).
_VORBIS_QUALITY_KBPS = ((0, 64), (1, 80), (2, 96), (3, 112), (4, 128), (5, 160), (6, 192), (7, 224),
                        (8, 256), (9, 320), (10, 500))


class Encoder:
    """A file being written block by block: ``write`` float32 ``(channels, n)`` blocks already in
    [-1, 1], then ``close`` (or ``abort``, which leaves the caller to delete the file)."""

    def write(self, samples: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        self.close()


def open_encoder(path: Path, fmt: str, channels: int, sample_rate: int, bitrate_kbps: int,
                 sample_format: str) -> Encoder:
    """An encoder writing ``fmt`` to ``path``: WAV/FLAC as ``sample_format``, MP3/M4A/OGG at
    ``bitrate_kbps``. Memory stays flat whatever the length (the M4A edit list and the ``iTunSMPB``
    tag are written at ``close``, when the length is known)."""
    if fmt in LOSSLESS_FORMATS:
        if sample_format not in SAMPLE_FORMATS[fmt]:
            raise ValueError(f"{fmt.upper()} takes sample_format {' / '.join(SAMPLE_FORMATS[fmt])}, "
                             f"got {sample_format!r}")
        return _SoundFileEncoder(path, channels, sample_rate, fmt.upper(), _SOUNDFILE_SUBTYPES[sample_format])
    if fmt == "ogg":
        quality = vorbis_quality(bitrate_kbps)
        return _SoundFileEncoder(path, channels, sample_rate, "OGG", "VORBIS", compression_level=1.0 - quality / 10.0)
    if fmt == "mp3":  # CBR with a LAME header (delay and padding)
        return _FfmpegEncoder(path, channels, sample_rate, "mp3", "libmp3lame", bitrate_kbps, MP3_SAMPLE_RATES, {})
    if fmt == "m4a":  # AAC-LC in an M4A (iPod) file, exact edit list (timescale = rate) + iTunSMPB
        return _FfmpegEncoder(path, channels, sample_rate, "ipod", "aac", bitrate_kbps, AAC_SAMPLE_RATES,
                              {"movie_timescale": "{rate}"})
    raise ValueError(f"cannot write audio format {fmt!r}")


class _SoundFileEncoder(Encoder):
    """WAV, FLAC and OGG Vorbis through libsndfile."""

    def __init__(self, path: Path, channels: int, sample_rate: int, fmt: str, subtype: str,
                 compression_level: float | None = None) -> None:
        extra = {} if compression_level is None else {"compression_level": compression_level}
        self.file = sf.SoundFile(path, "w", sample_rate, channels, subtype=subtype, format=fmt, **extra)

    def write(self, samples: np.ndarray) -> None:
        self.file.write(samples.T)

    def close(self) -> None:
        self.file.close()


class _FfmpegEncoder(Encoder):
    """MP3 (libmp3lame) and M4A (FFmpeg AAC) through PyAV; a rate the codec lacks becomes 44100 Hz."""

    def __init__(self, path: Path, channels: int, sample_rate: int, container: str, codec: str,
                 bitrate_kbps: int, rates: tuple[int, ...], options: dict[str, str]) -> None:
        self.path, self.codec = path, codec
        self.resampler = None if sample_rate in rates else StreamResampler(channels, sample_rate, 44100)
        self.rate = sample_rate if self.resampler is None else 44100
        self.layout = "mono" if channels == 1 else "stereo"
        options = {k: v.format(rate=self.rate) for k, v in options.items()}
        self.out = av.open(str(path), "w", format=container, options=options)
        self.stream = self.out.add_stream(codec, rate=self.rate, layout=self.layout)
        self.stream.bit_rate = int(bitrate_kbps) * 1000
        self.frames = self.packets = self.delay = 0
        self.first = True

    def write(self, samples: np.ndarray) -> None:
        if self.resampler is not None:
            samples = self.resampler.push(samples)
        self._encode(samples)

    def _encode(self, samples: np.ndarray | None) -> None:
        frame = None
        if samples is not None:
            if not samples.shape[1]:
                return
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32), format="fltp",
                                               layout=self.layout)
            frame.sample_rate, frame.pts = self.rate, self.frames
            self.frames += samples.shape[1]
        for packet in self.stream.encode(frame):
            if self.first:
                self.first = False
                self.delay = -int(packet.pts) if packet.pts is not None and packet.pts < 0 else 0
            self.packets += 1
            self.out.mux(packet)

    def close(self) -> None:
        if self.resampler is not None:
            self._encode(self.resampler.finish())
        self._encode(None)
        self.out.close()
        if self.codec == "aac":
            _tag_itunsmpb(self.path, self.delay, self.packets * AAC_FRAME - self.delay - self.frames, self.frames)

    def abort(self) -> None:
        self.out.close()


def vorbis_quality(bitrate_kbps: int) -> float:
    """The Vorbis quality (0..10) aiming at ``bitrate_kbps`` (interpolated in the libvorbis table)."""
    kbps = [k for _, k in _VORBIS_QUALITY_KBPS]
    return float(np.interp(bitrate_kbps, kbps, [q for q, _ in _VORBIS_QUALITY_KBPS]))


def _tag_itunsmpb(path: Path, delay: int, padding: int, frames: int) -> None:
    from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm

    value = f" 00000000 {delay:08X} {max(padding, 0):08X} {frames:016X}" + " 00000000" * 8
    mp4 = MP4(path)
    if mp4.tags is None:
        mp4.add_tags()
    mp4.tags["----:com.apple.iTunes:iTunSMPB"] = [MP4FreeForm(value.encode(), dataformat=AtomDataType.UTF8)]
    mp4.save()
