"""Checks of a finished karaoke folder with tools this project did not write (mutagen, PyAV/ffmpeg)."""

from __future__ import annotations

import json
from pathlib import Path

import av
from mutagen.id3 import ID3

from app.audio.lyrics import parse_lyrics
from app.audio.metrics import onset_report


def check_karaoke_mp3(path: Path, lyrics_lines: list[list[str]], title: str, artist: str) -> None:
    tags = ID3(path)
    assert tags.version[:2] == (2, 4)
    assert str(tags["TIT2"]) == title and str(tags["TPE1"]) == artist
    uslt = tags.getall("USLT")
    assert len(uslt) == 1 and " ".join(lyrics_lines[0]) in uslt[0].text
    sylt = tags.getall("SYLT")
    assert len(sylt) == 2, [s.desc for s in sylt]
    by_size = sorted(sylt, key=lambda f: len(f.text))
    line_frame, word_frame = by_size
    for frame in sylt:
        assert frame.format == 2 and frame.type == 1  # milliseconds, lyrics
        times = [t for _, t in frame.text]
        assert times == sorted(times)
    assert len(line_frame.text) == len(lyrics_lines)
    assert len(word_frame.text) == sum(len(words) for words in lyrics_lines)
    with av.open(str(path)) as container:  # still a playable MP3
        assert container.format.name == "mp3" and container.streams.audio[0].codec_context.name.startswith("mp3")
        assert float(container.duration / 1e6) > 10


def check_lrc(path: Path, n_lines: int, fmt: str = "lrc") -> list[float]:
    """ffmpeg's demuxer for ``fmt`` (through PyAV) must read one subtitle event per lyric line."""
    with av.open(str(path), format=fmt) as container:
        stream = container.streams.subtitles[0]
        starts = [float(p.pts * p.time_base) for p in container.demux(stream) if p.pts is not None and p.size]
    assert len(starts) == n_lines
    return starts


def check_words_lrc(text: str, n_words: int) -> None:
    assert text.count("<") == text.count(">") >= n_words


def check_timing_json(doc: dict, lyrics_lines: list[list[str]], reference_json: Path, min_within_1s: float) -> None:
    given = [w for line in lyrics_lines for w in line]
    words = [w for line in doc["lines"] for w in line["words"]]
    assert [w["text"] for w in words] == given  # exactly the given words, in order
    assert all(isinstance(w["start"], float | int) and w["end"] >= w["start"] for w in words)
    assert doc["language"] and doc["models"].get("transcription")
    ref = json.loads(reference_json.read_text())
    reference = [(w["text"], w["start"]) for line in ref["lines"] for w in line["words"]]
    report = onset_report([(w["text"], w["start"]) for w in words], reference)
    print("alignment vs words.json:", report.line())
    assert report.within_1_0 >= min_within_1s, report.line()


def lyrics_lines(path: Path) -> list[list[str]]:
    return parse_lyrics(path.read_text(encoding="utf-8"))
