"""Reading audio files with PyAV (FFmpeg): probing, integrity checks and decoding.

Everything is float32 ``(channels, frames)``. Decoding goes through FFmpeg, which trims the MP3
encoder delay (from the LAME/Xing header) and the AAC priming (from the MP4 edit list), so decoded
audio is sample-aligned with what was encoded; karaoke timing depends on that. MP4/M4A audio is also
cut to the duration its header declares (FFmpeg keeps the last frame's padding). Writing is in
``app.audio.writing`` (encoders in ``app.audio.encoders``): every format it writes carries the
delay/padding metadata (LAME header, edit list + iTunSMPB, Ogg granule positions), so any decoder
gets the samples back at lag 0. Resampling is in ``app.audio.resampling``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer

from app.audio.integrity import (
    expected_packet_bytes,
    has_vbr_header,
    ogg_last_page_cut,
    wav_declared_seconds,
)
from app.audio.types import AudioDecodeError, AudioInfo, Waveform

# Containers whose declared duration comes from a header (not guessed from the bitrate), so that
# decoding much less than it means the file was cut off.
_EXACT_DURATION_FORMATS = ("w64", "flac", "mov", "mp4", "m4a", "matroska", "webm", "aiff", "caf", "ogg")
_MAX_ERROR_SHARE = 0.01  # decode errors tolerated (a few damaged frames), as a share of all packets


@dataclass
class _Scan:
    """What one pass over a stream's packets found."""

    chunks: list[np.ndarray] = field(default_factory=list)
    frames: int = 0  # decoded sample frames at the native rate
    packets: int = 0
    errors: int = 0  # packets the decoder refused
    first_pos: int = -1  # byte offset of the first audio packet
    last_size: int = 0  # size and first bytes of the last packet (MP3 / ADTS frame header)
    last_head: bytes = b""
    fatal: str | None = None  # the demuxer gave up


def probe(path: str | Path) -> AudioInfo:
    """Decode the whole file once to check it and describe it.

    Returns the decoded duration in seconds, the native sample rate (Hz), channel count, codec and
    container names. Raises ``AudioDecodeError`` with a human-readable reason for an empty file,
    bytes that are not audio, a truncated file (cut mid-frame, shorter than its header declares,
    unreadable packets) or a stream with no decodable audio; ``FileNotFoundError`` if it is missing.
    """
    return _read(Path(path), rate=None, keep=False)[1]


def decode(path: str | Path, sample_rate: int | None = None, channels: int | None = None) -> Waveform:
    """Decode a file to float32 ``(channels, frames)``, resampled to ``sample_rate`` Hz if given.

    ``channels=1`` averages the channels, a mono file asked for 2 channels is duplicated; other
    layout changes go through FFmpeg's mixer. Raises ``AudioDecodeError`` as ``probe`` does.
    """
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if channels is not None and channels <= 0:
        raise ValueError(f"channels must be positive, got {channels}")
    samples, info = _read(Path(path), rate=sample_rate, keep=True, channels=channels)
    assert samples is not None  # _read raises when nothing was decoded
    return Waveform(samples=_map_channels(samples, channels), sample_rate=sample_rate or info.sample_rate)


def iter_blocks(path: str | Path, block_frames: int = 1 << 16) -> Iterator[np.ndarray]:
    """Decode ``path`` block by block: float32 ``(channels, n)`` arrays at the file's own rate and
    channel count, ``n <= block_frames``, that concatenate to what ``decode(path)`` returns.

    For a file already checked by ``probe`` (an upload): nothing is checked here, damaged packets
    are skipped. Memory stays at a few blocks whatever the file's length.
    """
    container = _open(Path(path))
    try:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", rate=stream.rate)
        declared = _mp4_declared_frames(container, stream)
        emitted, held = 0, []  # held: decoded frames beyond the MP4 declared length, dropped if few
        pending: list[np.ndarray] = []
        pending_frames = 0

        def frames_out(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
            nonlocal emitted, pending_frames
            for frame in frames:
                data = frame.to_ndarray()
                if declared is not None:
                    keep = max(0, min(data.shape[1], declared - emitted))
                    if keep < data.shape[1]:
                        held.append(data[:, keep:])
                    data = data[:, :keep]
                emitted += data.shape[1]
                pending.append(data)
                pending_frames += data.shape[1]
                while pending_frames >= block_frames:
                    joined = np.concatenate(pending, axis=1)
                    yield joined[:, :block_frames]
                    pending[:] = [joined[:, block_frames:]]
                    pending_frames -= block_frames

        try:
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    continue
                for frame in decoded:
                    yield from frames_out(resampler.resample(frame))
        except av.FFmpegError:
            pass  # a damaged tail: probe has accepted the file, keep what decoded
        yield from frames_out(resampler.resample(None))
        extra = sum(h.shape[1] for h in held)
        if held and extra > 2 * 2048:  # more than AAC padding: not an edit-list trim, keep it (as decode)
            pending.append(np.concatenate(held, axis=1))
        if pending and (tail := np.concatenate(pending, axis=1)).shape[1]:
            for start in range(0, tail.shape[1], block_frames):
                yield tail[:, start:start + block_frames].astype(np.float32, copy=False)
    finally:
        container.close()


def _read(
    path: Path, rate: int | None, keep: bool, channels: int | None = None
) -> tuple[np.ndarray | None, AudioInfo]:
    container = _open(path)
    try:
        stream = container.streams.audio[0]
        resampler = None
        if keep:
            # Only layouts beyond mono/stereo need FFmpeg's mixer; the rest is done in _map_channels.
            layout = "stereo" if channels == 2 and (stream.channels or 0) > 2 else None
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate or stream.rate)
        scan = _scan(container, stream, resampler)
        exact = _mp4_frames(container, stream, scan.frames)
        info = AudioInfo(
            duration_s=(exact or scan.frames) / float(stream.rate),
            sample_rate=int(stream.rate),
            channels=int(stream.channels),
            codec=stream.codec_context.codec.canonical_name,
            format=_format_name(container.format.name),
        )
        declared = _header_seconds(path, container, stream, info, scan.first_pos)
        problem = _integrity_problem(path, scan, info, declared)
        if problem:
            raise AudioDecodeError(f"{path.name}: {problem}")
    finally:
        container.close()
    samples = np.concatenate(scan.chunks, axis=1).astype(np.float32, copy=False) if scan.chunks else None
    if samples is not None and exact:  # the end padding of the last AAC frame, as the edit list says
        samples = samples[:, : round(exact * (rate or info.sample_rate) / info.sample_rate)]
    return samples, info


def _mp4_frames(container: InputContainer, stream: AudioStream, decoded: int) -> int | None:
    """The exact frame count an MP4/M4A edit list declares, when FFmpeg decoded more than that.

    FFmpeg skips the encoder delay the edit list names but keeps the padding of the last frame;
    trimming to the declared duration (at most two codec frames shorter) makes the length exact.
    """
    declared = _mp4_declared_frames(container, stream)
    return declared if declared is not None and 0 < decoded - declared <= 2 * 2048 else None


def _mp4_declared_frames(container: InputContainer, stream: AudioStream) -> int | None:
    if _format_name(container.format.name) != "mp4" or not stream.duration or not stream.time_base:
        return None
    return round(float(stream.duration * stream.time_base) * stream.rate)


def _scan(container: InputContainer, stream: AudioStream, resampler: av.AudioResampler | None) -> _Scan:
    """Decode every packet of ``stream``, counting what went wrong instead of stopping."""
    scan = _Scan()
    try:
        for packet in container.demux(stream):
            if packet.size:  # the final, empty packet only flushes the decoder
                scan.packets += 1
                if scan.first_pos < 0 and packet.pos is not None:
                    scan.first_pos = packet.pos
                scan.last_size, scan.last_head = packet.size, bytes(packet)[:8]
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                scan.errors += 1
                continue
            for frame in decoded:
                scan.frames += frame.samples
                if resampler is not None:
                    scan.chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
    except av.FFmpegError as exc:
        scan.fatal = exc.strerror or str(exc)
    if resampler is not None and scan.frames:
        scan.chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    return scan


def _open(path: Path) -> InputContainer:
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path.name}: the file is empty (0 bytes)")
    try:
        container = av.open(str(path), "r", metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise AudioDecodeError(
            f"{path.name}: not an audio file we can read, or cut off before its first audio frame "
            f"({exc.strerror or exc})"
        ) from exc
    if not container.streams.audio:
        container.close()
        raise AudioDecodeError(f"{path.name}: the file has no audio stream")
    return container


def _integrity_problem(path: Path, scan: _Scan, info: AudioInfo, declared: float | None) -> str | None:
    if scan.fatal:
        return f"reading stopped with an error ({scan.fatal}): the file is corrupt or truncated"
    if scan.frames == 0:
        return "no audio could be decoded (the file is empty, corrupt or cut off)"
    if scan.errors > max(3, _MAX_ERROR_SHARE * scan.packets):
        return (
            f"{scan.errors} of {scan.packets} audio packets could not be decoded: "
            "the file is corrupt or truncated"
        )
    expected = expected_packet_bytes(info.codec, info.format, scan.last_head)
    if expected is not None and scan.last_size < expected:
        return (
            f"it ends in the middle of an audio frame ({scan.last_size} of {expected} bytes): "
            "the file is truncated"
        )
    if info.format == "ogg" and ogg_last_page_cut(path):
        return "it ends in the middle of an Ogg page: the file is truncated"
    if declared and declared - info.duration_s > max(0.5, 0.02 * declared):
        return (
            f"its header declares {declared:.1f} s but only {info.duration_s:.1f} s could be "
            "decoded: the file is truncated"
        )
    return None


def _header_seconds(
    path: Path, container: InputContainer, stream: AudioStream, info: AudioInfo, first_pos: int
) -> float | None:
    """The duration a header states, or None where FFmpeg only guessed it (e.g. from the bitrate)."""
    if info.format == "wav":
        return wav_declared_seconds(path)  # FFmpeg clamps the declared size to the file size
    if info.codec == "mp3":
        trusted = has_vbr_header(path, first_pos)  # without one FFmpeg guesses from the file size
    else:
        trusted = info.format in _EXACT_DURATION_FORMATS
    if not trusted:
        return None
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / 1_000_000.0 if container.duration else None


def _format_name(name: str) -> str:
    first = name.split(",")[0]
    return "mp4" if first == "mov" else first


def _map_channels(samples: np.ndarray, channels: int | None) -> np.ndarray:
    if channels is None or channels == samples.shape[0]:
        return samples
    if channels == 1:
        return samples.mean(axis=0, keepdims=True).astype(np.float32)
    if samples.shape[0] == 1:
        return np.repeat(samples, channels, axis=0)
    raise ValueError(f"cannot map {samples.shape[0]} channels to {channels}")
