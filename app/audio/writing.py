"""Writing audio files atomically: ``write_audio`` for a whole waveform, ``AudioWriter`` block by block.

The encoding itself is in ``app.audio.encoders``: every format written here carries the
delay/padding metadata (LAME header, edit list + iTunSMPB, Ogg granule positions), so any decoder
(``app.audio.io.decode``) gets the samples back at lag 0.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from app.audio import encoders
from app.audio.encoders import BITRATE_RANGES_KBPS, DEFAULT_BITRATE_KBPS, LOSSY_FORMATS, SAMPLE_FORMATS
from app.audio.types import Waveform

WRITE_FORMATS = ("wav", "flac", "mp3", "m4a", "ogg")


def write_audio(
    path: str | Path,
    wf: Waveform,
    fmt: str | None = None,
    bitrate_kbps: int = DEFAULT_BITRATE_KBPS,
    sample_format: str = "s16",
) -> Path:
    """Write ``wf`` atomically as ``fmt``: "wav" / "flac" (``sample_format`` "s16" or "s24" PCM, or
    "f32" float for WAV), or "mp3" / "m4a" (AAC) / "ogg" (Vorbis) at ``bitrate_kbps``.

    ``fmt`` defaults to the path's suffix. Samples are clipped to [-1, 1]. Every format decodes
    sample-aligned with ``wf`` (lag 0, same length; see ``app.audio.encoders``). The file is written
    under a temporary name in the same folder and renamed into place, so readers never see a
    partial file. Lossy formats take 1 or 2 channels; a rate the codec cannot encode is resampled
    to 44100 Hz. ``sample_format`` applies to WAV/FLAC only, ``bitrate_kbps`` to lossy formats only
    (``BITRATE_RANGES_KBPS``). Raises ``ValueError`` for an unknown format or sample format, a
    bitrate out of range, or a lossy file with more than 2 channels.
    """
    with AudioWriter(path, wf.channels, wf.sample_rate, fmt, bitrate_kbps, sample_format) as writer:
        writer.write(wf.samples)
    return writer.path


class AudioWriter:
    """``write_audio`` for audio that arrives in blocks: ``write`` each block, then ``close``.

    Checks its arguments as ``write_audio`` does, encodes under a temporary name next to ``path``
    and renames it into place at ``close``; ``abort`` (or leaving a ``with`` block by an exception)
    deletes it, so ``path`` is either whole or untouched. Memory does not grow with the length.
    """

    def __init__(self, path: str | Path, channels: int, sample_rate: int, fmt: str | None = None,
                 bitrate_kbps: int = DEFAULT_BITRATE_KBPS, sample_format: str = "s16") -> None:
        self.path = Path(path)
        fmt = (fmt or self.path.suffix.lstrip(".")).lower()
        if fmt not in WRITE_FORMATS:
            raise ValueError(f"cannot write audio format {fmt!r}; choose one of {', '.join(WRITE_FORMATS)}")
        if fmt in LOSSY_FORMATS:
            if channels not in (1, 2):
                raise ValueError(f"{fmt.upper()} holds 1 or 2 channels, got {channels}")
            low, high = BITRATE_RANGES_KBPS[fmt]
            if not low <= bitrate_kbps <= high:
                raise ValueError(f"{fmt.upper()} bitrate must be {low}..{high} kbps, got {bitrate_kbps}")
        elif sample_format not in SAMPLE_FORMATS[fmt]:
            raise ValueError(f"{fmt.upper()} takes sample_format {' / '.join(SAMPLE_FORMATS[fmt])}, "
                             f"got {sample_format!r}")
        self.channels = channels
        self.tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.part")
        self._encoder: encoders.Encoder | None = None
        try:
            self._encoder = encoders.open_encoder(self.tmp, fmt, channels, sample_rate, bitrate_kbps, sample_format)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, samples: np.ndarray) -> None:
        """Append float32 ``(channels, n)`` samples (clipped to [-1, 1], NaN as 0)."""
        if self._encoder is None:
            raise ValueError(f"{self.path.name}: the writer is closed")
        if samples.ndim != 2 or samples.shape[0] != self.channels:
            raise ValueError(f"expected ({self.channels}, n) samples, got {samples.shape}")
        try:
            self._encoder.write(np.clip(np.nan_to_num(samples.astype(np.float32, copy=False)), -1.0, 1.0))
        except BaseException:
            self.abort()
            raise

    def close(self) -> Path:
        """Finish the file and rename it into place; returns its path."""
        encoder, self._encoder = self._encoder, None
        if encoder is None:
            return self.path
        try:
            encoder.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        """Stop writing and delete the partial file (``path`` is left as it was)."""
        encoder, self._encoder = self._encoder, None
        try:
            if encoder is not None:
                encoder.abort()
        except Exception:  # noqa: BLE001 - the file is being thrown away anyway
            pass
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
