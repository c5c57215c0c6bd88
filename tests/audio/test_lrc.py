"""LRC import: line and enhanced (word) LRC, including the project's own exports (round trip)."""

from __future__ import annotations

import pytest

from app.audio.exports import to_lrc, to_words_lrc
from app.audio.lrc import LrcError, lrc_to_timing
from app.audio.ultrastar import ultrastar_to_timing


@pytest.fixture(scope="module")
def timing(data_dir):
    return ultrastar_to_timing((data_dir / "songs-en/jonathan-coulton-better/ultrastar.txt").read_text())


def test_words_lrc_round_trip(timing):
    back = lrc_to_timing(to_words_lrc(timing, "Better", "Jonathan Coulton", "Thing a Week", 194.6), "en")
    assert [line.text for line in back.lines] == [line.text for line in timing.lines]
    assert [w.text for w in back.words] == [w.text for w in timing.words]
    for got, want in zip(back.words, timing.words, strict=True):
        assert abs(got.start - want.start) <= 0.005 + 1e-9 and got.confidence == 1.0
    for got, want in zip(back.lines, timing.lines, strict=True):  # the closing tag is the line's end
        assert abs(got.start - want.start) <= 0.005 + 1e-9 and abs(got.end - want.end) <= 0.005 + 1e-9
    assert back.language == "en" and back.models == {"timing": "lrc"}


def test_line_lrc_round_trip(timing):
    back = lrc_to_timing(to_lrc(timing, "Better", "Jonathan Coulton"))
    assert [line.text for line in back.lines] == [line.text for line in timing.lines]
    assert max(abs(a.start - b.start) for a, b in zip(back.lines, timing.lines, strict=True)) <= 0.005 + 1e-9
    # words share the time up to the next line, marked as interpolated
    first, second = back.lines[:2]
    assert [w.text for w in first.words] == first.text.split() and first.end == second.start
    assert all(w.confidence == 0.0 for w in back.words)
    assert [w.start for w in first.words] == sorted(w.start for w in first.words)


def test_headers_offset_repeats_syllables_and_breaks():
    text = ("[ti:Song]\n[ar:Someone]\n[la:hr]\n[offset:500]\n\n"
            "[00:20.50][00:10.00]chorus <00:10.50>line\n"
            "[00:12.00]<00:12.00>Hel<00:12.30>lo <00:12.60>you <00:13.00>\n"
            "[00:15]\n[1:02.345]last words\n")
    back = lrc_to_timing(text)
    assert back.language == "hr"
    assert [line.text for line in back.lines] == ["chorus line", "Hello you", "chorus line", "last words"]
    assert [line.start for line in back.lines] == [9.5, 11.5, 20.0, pytest.approx(61.845)]
    hello, you = back.lines[1].words
    assert (hello.text, hello.start, hello.end, you.end) == ("Hello", 11.5, 12.1, 12.5)
    assert back.lines[2].words[1].start == pytest.approx(20.5)  # word tags move with the repeated line
    assert back.lines[3].end == pytest.approx(61.845 + 2 * 0.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just words\n", "line 1: expected a \\[mm:ss.xx\\] time tag"),
        ("[ti:x]\n[00:01.00]\n", "no timed lyrics"),
        ("[offset:soon]\n[00:01.00]a\n", "offset"),
        (b"[00:01.00]\xff\n", "not UTF-8"),
    ],
)
def test_malformed_lrc(text, message):
    with pytest.raises(LrcError, match=message):
        lrc_to_timing(text)
