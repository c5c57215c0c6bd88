"""SRT, WebVTT and ASS exports read back by ffmpeg's demuxers (PyAV): one event per line, times within 10 ms."""

from __future__ import annotations

import re

import av
import pytest

from app.audio.subtitles import to_ass, to_srt, to_vtt
from app.audio.types import Line, LyricsTiming, Word

TIMING = LyricsTiming("en", [
    Line("Where did we go?", 8.26, 9.779, [Word("Where", 8.26, 8.485), Word("did", 8.6, 8.9),
                                          Word("we", 9.0, 9.2), Word("go?", 9.3, 9.779)]),
    Line("When was the moment", 10.5, 12.25, [Word("When", 10.5, 10.9), Word("was", 11.0, 11.3),
                                              Word("the", 11.31, 11.5), Word("moment", 11.6, 12.25)]),
    Line("Ünïcödé – čćž", 3725.004, 3727.5, [Word("Ünïcödé", 3725.004, 3726.0), Word("–", 3726.1, 3726.2),
                                             Word("čćž", 3726.5, 3727.5)]),
])


def demux(path, fmt: str) -> list[tuple[float, float]]:
    with av.open(str(path), format=fmt) as container:
        stream = container.streams.subtitles[0]
        return [(float(p.pts * p.time_base), float(p.duration * p.time_base))
                for p in container.demux(stream) if p.pts is not None and p.size]


@pytest.mark.parametrize(("render", "suffix", "fmt"), [(to_srt, "srt", "srt"), (to_vtt, "vtt", "webvtt"),
                                                       (to_ass, "ass", "ass")])
def test_ffmpeg_reads_one_event_per_line_on_time(tmp_path, render, suffix, fmt):
    path = tmp_path / f"song.{suffix}"
    path.write_text(render(TIMING), encoding="utf-8")
    events = demux(path, fmt)
    assert len(events) == len(TIMING.lines)
    for (start, duration), line in zip(events, TIMING.lines, strict=True):
        assert abs(start - line.start) <= 0.010
        assert abs(start + duration - line.end) <= 0.010


def test_ass_karaoke_tags_add_up_to_the_line():
    text = to_ass(TIMING, "Better")
    dialogues = [row for row in text.splitlines() if row.startswith("Dialogue:")]
    assert len(dialogues) == 3
    for row, line in zip(dialogues, TIMING.lines, strict=True):
        ks = [int(k) for k in re.findall(r"\{\\k(\d+)\}", row)]
        assert abs(sum(ks) - round((line.end - line.start) * 100)) <= 1
        assert re.sub(r"\{\\k\d+\}", "", row.split(",,", 1)[1].split(",", 4)[-1]).strip() == line.text


def test_vtt_word_timestamps():
    text = to_vtt(TIMING)
    assert text.startswith("WEBVTT\n")
    assert "Where <00:00:08.600>did <00:00:09.000>we <00:00:09.300>go?" in text
    assert "01:02:05.004 --> 01:02:07.500" in text
