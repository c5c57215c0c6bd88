"""Header facts FFmpeg does not check, to tell a complete file from a truncated one.

MP3: FFmpeg's demuxer hands the last, partial frame of a cut-off file to the decoder without any
error, and for constant-bitrate files without a Xing/Info header it estimates the duration from the
file size, so neither a decode error nor a duration mismatch reveals the cut. The frame header
does: it states the frame's length in bytes.
ADTS (raw .aac) frame headers state their length the same way. WAV: FFmpeg clamps the data size
the header declares to what the file holds, so the declared duration is read from the RIFF chunks
here. Ogg: FFmpeg takes the duration from the last page, so a cut file looks complete; walking the
page headers shows whether the last page is whole.
"""

from __future__ import annotations

import struct
from pathlib import Path

# Layer III bitrates in kbit/s by bitrate index (index 0 = free format, 15 = invalid).
_BITRATES_V1_L3 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_V2_L3 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
# Sample rates in Hz by version bits (3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5) and rate index.
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_VBR_TAGS = (b"Xing", b"Info", b"VBRI")


def layer3_frame_length(header: bytes) -> int | None:
    """Length in bytes of the MPEG Layer III frame whose 4-byte header starts ``header``.

    Returns None when the bytes are not a Layer III header we can size (other layers, free format).
    """
    if len(header) < 4 or header[0] != 0xFF or (header[1] & 0xE0) != 0xE0:
        return None
    version = (header[1] >> 3) & 0x03
    layer = (header[1] >> 1) & 0x03
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 0x03
    padding = (header[2] >> 1) & 0x01
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    sample_rate = _SAMPLE_RATES[version][rate_index]
    if version == 3:
        return 144 * _BITRATES_V1_L3[bitrate_index] * 1000 // sample_rate + padding
    return 72 * _BITRATES_V2_L3[bitrate_index] * 1000 // sample_rate + padding


def adts_frame_length(header: bytes) -> int | None:
    """Length in bytes of the ADTS (AAC) frame whose header starts ``header``; None if not ADTS."""
    if len(header) < 6 or header[0] != 0xFF or (header[1] & 0xF6) != 0xF0:
        return None
    return ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)


def expected_packet_bytes(codec: str, container_format: str, header: bytes) -> int | None:
    """The byte length a packet's own header announces (MP3 and ADTS AAC), else None."""
    if codec == "mp3":
        return layer3_frame_length(header)
    if codec == "aac" and container_format == "aac":
        return adts_frame_length(header)
    return None


def ogg_last_page_cut(path: str | Path) -> bool:
    """True when walking the Ogg page headers runs past the end of the file (a cut last page).

    Returns False when the file does not parse as a plain sequence of pages (nothing to judge).
    """
    size = Path(path).stat().st_size
    with open(path, "rb") as handle:
        position = 0
        while position < size:
            handle.seek(position)
            header = handle.read(27)
            if len(header) < 27:
                return True
            if header[:4] != b"OggS":
                return False
            lacing = handle.read(header[26])
            if len(lacing) < header[26]:
                return True
            position += 27 + header[26] + sum(lacing)
    return position > size


def id3v2_size(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of ``head`` (0 when there is none)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def has_vbr_header(path: str | Path, first_audio_offset: int) -> bool:
    """True when a Xing/Info/VBRI header (which states the exact frame count) precedes the audio.

    ``first_audio_offset`` is the byte position of the first audio packet; FFmpeg consumes the
    header frame itself, so it lies between the end of the ID3v2 tag and that position.
    """
    if first_audio_offset <= 0:
        return False
    with open(path, "rb") as handle:
        head = handle.read(first_audio_offset + 64)
    start = id3v2_size(head)
    region = head[start:first_audio_offset]
    return any(tag in region for tag in _VBR_TAGS)


def wav_declared_seconds(path: str | Path) -> float | None:
    """Seconds of audio the RIFF/WAVE header declares (data chunk size / byte rate).

    Returns None when the file is not a plain RIFF/WAVE file or the sizes are placeholders
    (0 or 0xFFFFFFFF, written by streaming encoders that never went back to fill them in).
    """
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    byte_rate = 0
    offset = 12
    while offset + 8 <= len(head):
        chunk_id, size = head[offset : offset + 4], struct.unpack("<I", head[offset + 4 : offset + 8])[0]
        if chunk_id == b"fmt " and offset + 20 <= len(head):
            byte_rate = struct.unpack("<I", head[offset + 16 : offset + 20])[0]
        elif chunk_id == b"data":
            if not byte_rate or size in (0, 0xFFFFFFFF):
                return None
            return size / byte_rate
        offset += 8 + size + (size & 1)
    return None
