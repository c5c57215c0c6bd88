"""Karaoke exports: LRC (read back by FFmpeg's lrc demuxer), enhanced LRC, JSON, ID3 SYLT/USLT."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from mutagen.id3 import ID3

from app.audio import io, writing
from app.audio.exports import (
    id3_language,
    lrc_time,
    slugify,
    tag_karaoke_mp3,
    to_json,
    to_lrc,
    to_words_lrc,
    write_karaoke_files,
)
from app.audio.types import Line, LyricsTiming, Waveform, Word


def _timing() -> LyricsTiming:
    lines = []
    for n, text in enumerate(["Where did we go?", "When was the moment", "Ça va, [très] bien", "Fin"]):
        start = 8.26 + 7.123 * n
        words = [Word(w, start + 0.4 * k, start + 0.4 * k + 0.3, 0.9) for k, w in enumerate(text.split())]
        lines.append(Line(text, words[0].start, words[-1].end, words))
    return LyricsTiming("fr", lines, {"alignment": "tiny.en"})


def _read_lrc_events(path: Path) -> list[tuple[float, str]]:
    with av.open(str(path)) as container:
        stream = container.streams[0]
        assert stream.type == "subtitle"
        events = []
        for packet in container.demux(stream):
            if packet.pts is not None and packet.size:
                events.append((float(packet.pts * stream.time_base), bytes(packet).decode("utf-8").strip()))
        return events


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00.00"),
        (8.264, "00:08.26"),
        (59.996, "01:00.00"),
        (61.234, "01:01.23"),
        (3725.5, "62:05.50"),
        (-1, "00:00.00"),
    ],
)
def test_lrc_time(seconds, text):
    assert lrc_time(seconds) == text


def test_lrc_is_read_by_ffmpeg_with_one_event_per_line(tmp_path):
    timing = _timing()
    text = to_lrc(timing, "Better", "Jonathan Coulton", "Thing a Week", length_s=194.6)
    assert text.splitlines()[:4] == [
        "[ti:Better]",
        "[ar:Jonathan Coulton]",
        "[al:Thing a Week]",
        "[length:03:15]",
    ]
    path = tmp_path / "song.lrc"
    path.write_text(text, encoding="utf-8")
    events = _read_lrc_events(path)
    assert len(events) == len(timing.lines)
    for (start, line_text), line in zip(events, timing.lines, strict=True):
        assert abs(start - line.start) <= 0.01
        assert line_text == line.text
    with av.open(str(path)) as container:
        assert container.metadata.get("title") == "Better"
        assert container.metadata.get("artist") == "Jonathan Coulton"


def test_lrc_without_album_or_length_has_no_such_headers():
    text = to_lrc(_timing(), "T", "A")
    assert "[al:" not in text and "[length:" not in text


def test_words_lrc_format():
    timing = _timing()
    body = [ln for ln in to_words_lrc(timing, "T", "A").splitlines() if re.match(r"\[\d\d:\d\d\.\d\d\]", ln)]
    assert len(body) == len(timing.lines)
    tag = r"<(\d\d):(\d\d\.\d\d)>"
    for row, line in zip(body, timing.lines, strict=True):
        assert re.fullmatch(r"\[\d\d:\d\d\.\d\d\](" + tag + r"\S+ )+" + tag, row), row
        words = re.findall(tag + r"(\S+) ", row)
        assert [w for _, _, w in words] == [w.text for w in line.words]
        for (mm, ss, _), word in zip(words, line.words, strict=True):
            assert abs(int(mm) * 60 + float(ss) - word.start) <= 0.005 + 1e-9
    assert body[0].startswith("[00:08.26]<00:08.26>Where <00:08.66>did ")


def test_json_round_trip():
    timing = _timing()
    data = json.loads(to_json(timing))
    back = LyricsTiming.from_dict(data)
    assert [w.text for w in back.words] == [w.text for w in timing.words]
    assert data["language"] == "fr" and data["models"] == {"alignment": "tiny.en"}
    assert "Ça va" in to_json(timing)  # UTF-8, not \\u escapes


def _silent_mp3(path: Path, seconds: float = 2.0) -> Path:
    return writing.write_audio(path, Waveform(np.zeros((2, int(44100 * seconds)), np.float32), 44100), "mp3")


def test_tag_karaoke_mp3_sylt_and_uslt(tmp_path):
    timing = _timing()
    mp3 = _silent_mp3(tmp_path / "k.mp3")
    tag_karaoke_mp3(mp3, timing, "Better", "Jonathan Coulton", "Thing a Week", plain_lyrics="plain\ntext")
    tags = ID3(mp3)
    assert tags.version[:2] == (2, 4)
    assert str(tags["TIT2"]) == "Better" and str(tags["TPE1"]) == "Jonathan Coulton"
    assert str(tags["TALB"]) == "Thing a Week"
    (uslt,) = tags.getall("USLT")
    assert uslt.text == "plain\ntext" and uslt.lang == "fre"
    sylt = {frame.desc: frame for frame in tags.getall("SYLT")}
    assert set(sylt) == {"", "words"}
    for frame in sylt.values():
        assert frame.format == 2 and frame.type == 1
    assert sylt[""].text == [(line.text, round(line.start * 1000)) for line in timing.lines]
    words = sylt["words"].text
    assert len(words) == len(timing.words)
    assert [t.strip() for t, _ in words] == [w.text for w in timing.words]
    assert [ms for _, ms in words] == [round(w.start * 1000) for w in timing.words]
    assert "".join(t for t, _ in words) == "\n".join(line.text for line in timing.lines)
    # tagging again replaces the frames instead of adding more
    tag_karaoke_mp3(mp3, timing, "Better", "Jonathan Coulton")
    tags = ID3(mp3)
    assert len(tags.getall("SYLT")) == 2 and "TALB" not in tags
    assert tags.getall("USLT")[0].text == "\n".join(line.text for line in timing.lines)


def test_write_karaoke_files(tmp_path):
    timing = _timing()
    instrumental = Waveform(np.zeros((2, 44100 * 3), np.float32), 44100)
    out = tmp_path / "Karaoke-pjesme"
    slug = slugify("Jonathan Coulton - Better")
    paths = write_karaoke_files(instrumental, timing, "Better", "Jonathan Coulton", None, out, slug, "plain")
    assert set(paths) == {"karaoke_mp3", "lrc", "words_lrc", "lyrics_json", "ass", "srt", "vtt"}
    assert paths["ass"].name == "jonathan-coulton-better.ass" and paths["vtt"].read_text().startswith("WEBVTT")
    assert paths["karaoke_mp3"].name == "jonathan-coulton-better (karaoke).mp3"
    assert paths["lrc"].name == "jonathan-coulton-better.lrc"
    assert paths["words_lrc"].name == "jonathan-coulton-better.words.lrc"
    assert paths["lyrics_json"].name == "jonathan-coulton-better.lyrics.json"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths.values())  # no temp files
    assert "[length:00:03]" in paths["lrc"].read_text(encoding="utf-8")
    assert len(_read_lrc_events(paths["lrc"])) == len(timing.lines)
    assert abs(io.decode(paths["karaoke_mp3"]).duration - 3.0) < 0.01
    assert len(ID3(paths["karaoke_mp3"]).getall("SYLT")) == 2
    assert LyricsTiming.from_dict(json.loads(paths["lyrics_json"].read_text(encoding="utf-8"))).words


def test_write_karaoke_files_rejects_unsafe_slugs(tmp_path):
    wf = Waveform(np.zeros((1, 4410), np.float32), 44100)
    for slug in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            write_karaoke_files(wf, _timing(), "T", "A", None, tmp_path, slug)


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Beyoncé - Déjà Vu", "beyoncé-déjà-vu"),
        ("Jonathan Coulton — Better!!", "jonathan-coulton-better"),
        ("Don't Stop", "dont-stop"),
        ("नमस्ते दुनिया", "नमस्ते-दुनिया"),
        ("../../etc/passwd", "etc-passwd"),
        ("   ", "untitled"),
        ("CON", "con-"),
    ],
)
def test_slugify(text, slug):
    assert slugify(text) == slug


def test_slugify_is_filename_safe_and_bounded():
    slug = slugify("a" * 300 + ' <>:"/\\|?* b')
    assert len(slug) <= 100 and not set('<>:"/\\|?* ') & set(slug)


def test_id3_language():
    assert id3_language("en") == "eng" and id3_language("de") == "ger" and id3_language("") == "XXX"
    assert id3_language("spa") == "spa"


def test_karaoke_mp3_from_an_encoded_mp3_is_copied_not_reencoded(tmp_path):
    import numpy as np

    from app.audio.exports import write_karaoke_files
    from app.audio.io import decode
    from app.audio.types import Line, LyricsTiming, Waveform, Word
    from app.audio.writing import write_audio

    rng = np.random.default_rng(0)
    source = write_audio(tmp_path / "inst.mp3", Waveform((rng.standard_normal((2, 44100 * 3)) * 0.1).astype(np.float32),
                                                         44100), "mp3")
    timing = LyricsTiming("en", [Line("la la", 0.5, 1.5, [Word("la", 0.5, 1.0), Word("la", 1.0, 1.5)])])
    paths = write_karaoke_files(source, timing, "T", "A", None, tmp_path / "out", "a-t")
    original, tagged = decode(source), decode(paths["karaoke_mp3"])
    assert np.array_equal(original.samples, tagged.samples)  # same audio frames, only tags added
    assert "[length:00:03" in paths["lrc"].read_text()
