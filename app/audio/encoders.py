"""Encoders behind ``io.write_audio``: each writes a file that decodes sample-aligned with its input.

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


def write_pcm(path: Path, samples: np.ndarray, sample_rate: int, fmt: str, sample_format: str) -> None:
    """WAV or FLAC of float32 ``(channels, frames)`` as ``sample_format`` (s16, s24, f32 for WAV)."""
    if sample_format not in SAMPLE_FORMATS[fmt]:
        raise ValueError(f"{fmt.upper()} takes sample_format {' / '.join(SAMPLE_FORMATS[fmt])}, got {sample_format!r}")
    sf.write(path, samples.T, sample_rate, format=fmt.upper(), subtype=_SOUNDFILE_SUBTYPES[sample_format])


def write_mp3(path: Path, samples: np.ndarray, sample_rate: int, bitrate_kbps: int) -> None:
    """CBR MP3 with a LAME header (delay and padding); resampled to 44100 Hz if LAME lacks the rate."""
    if sample_rate not in MP3_SAMPLE_RATES:
        samples, sample_rate = _resample(samples, sample_rate, 44100), 44100
    _encode(path, samples, sample_rate, "mp3", "libmp3lame", bitrate_kbps, {})


def write_m4a(path: Path, samples: np.ndarray, sample_rate: int, bitrate_kbps: int) -> None:
    """AAC-LC in an M4A (iPod) file with an exact edit list and an ``iTunSMPB`` tag."""
    if sample_rate not in AAC_SAMPLE_RATES:
        samples, sample_rate = _resample(samples, sample_rate, 44100), 44100
    delay, packets = _encode(path, samples, sample_rate, "ipod", "aac", bitrate_kbps,
                             {"movie_timescale": str(sample_rate)})
    frames = samples.shape[1]
    _tag_itunsmpb(path, delay, packets * AAC_FRAME - delay - frames, frames)


def write_ogg(path: Path, samples: np.ndarray, sample_rate: int, bitrate_kbps: int) -> None:
    """OGG Vorbis (VBR) at the quality whose nominal bitrate is nearest ``bitrate_kbps``."""
    quality = vorbis_quality(bitrate_kbps)
    sf.write(path, samples.T, sample_rate, format="OGG", subtype="VORBIS", compression_level=1.0 - quality / 10.0)


def vorbis_quality(bitrate_kbps: int) -> float:
    """The Vorbis quality (0..10) aiming at ``bitrate_kbps`` (interpolated in the libvorbis table)."""
    kbps = [k for _, k in _VORBIS_QUALITY_KBPS]
    return float(np.interp(bitrate_kbps, kbps, [q for q, _ in _VORBIS_QUALITY_KBPS]))


def _encode(path: Path, samples: np.ndarray, sample_rate: int, container: str, codec: str, bitrate_kbps: int,
            options: dict[str, str]) -> tuple[int, int]:
    """Encode with FFmpeg; returns (encoder delay in samples, number of packets)."""
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=container, options=options) as out:
        stream = out.add_stream(codec, rate=sample_rate, layout=layout)
        stream.bit_rate = int(bitrate_kbps) * 1000
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = 0
        packets = [*stream.encode(frame), *stream.encode(None)]
        delay = -int(packets[0].pts) if packets and packets[0].pts is not None and packets[0].pts < 0 else 0
        for packet in packets:
            out.mux(packet)
    return delay, len(packets)


def _tag_itunsmpb(path: Path, delay: int, padding: int, frames: int) -> None:
    from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm

    value = f" 00000000 {delay:08X} {max(padding, 0):08X} {frames:016X}" + " 00000000" * 8
    mp4 = MP4(path)
    if mp4.tags is None:
        mp4.add_tags()
    mp4.tags["----:com.apple.iTunes:iTunSMPB"] = [MP4FreeForm(value.encode(), dataformat=AtomDataType.UTF8)]
    mp4.save()


def _resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    from app.audio.io import resample

    return resample(samples, from_rate, to_rate)
