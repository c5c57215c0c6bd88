"""Subtitle exports of a LyricsTiming: SRT, WebVTT (with word timestamps) and ASS with ``\\k`` karaoke tags.

All times in the timing document are seconds; each format's own notation is produced here.
"""

from __future__ import annotations

from app.audio.types import Line, LyricsTiming


def _clock(seconds: float, sep: str, digits: int) -> str:
    """``HH:MM:SS<sep>fff`` (digits=3) or ``H:MM:SS.cc`` style fractions (digits=2)."""
    scale = 10**digits
    total = max(0, round(seconds * scale))
    whole, frac = divmod(total, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{frac:0{digits}d}"


def _lines(timing: LyricsTiming) -> list[Line]:
    return [line for line in timing.lines if line.text.strip()]


def to_srt(timing: LyricsTiming) -> str:
    """SubRip: one cue per line, ``HH:MM:SS,mmm``."""
    cues = []
    for n, line in enumerate(_lines(timing), start=1):
        cues.append(f"{n}\n{_clock(line.start, ',', 3)} --> {_clock(line.end, ',', 3)}\n{line.text}\n")
    return "\n".join(cues)


def to_vtt(timing: LyricsTiming) -> str:
    """WebVTT: one cue per line; every word after the first carries its onset as a ``<HH:MM:SS.mmm>`` tag,
    which browsers use to highlight the sung part (``::cue(:past)``)."""
    cues = ["WEBVTT", ""]
    for line in _lines(timing):
        words = [w.text if i == 0 else f"<{_clock(w.start, '.', 3)}>{w.text}" for i, w in enumerate(line.words)]
        text = " ".join(words) if line.words else line.text
        cues += [f"{_clock(line.start, '.', 3)} --> {_clock(line.end, '.', 3)}", text, ""]
    return "\n".join(cues)


ASS_HEADER = """[Script Info]
ScriptType: v4.00+
Title: {title}
PlayResX: 1280
PlayResY: 720
WrapStyle: 0

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Arial,48,&H0000FFFF,&H00FFFFFF,&H00000000,&H80000000,-1,0,0,0,100,100,0,0,1,3,0,2,40,40,60,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def _ass_text(line: Line) -> str:
    """Words with ``{\\kN}`` tags (N in centiseconds) so each is highlighted from its onset to the next."""
    if not line.words:
        return line.text
    parts, cursor = [], round(line.start * 100)
    for i, word in enumerate(line.words):
        nxt = line.words[i + 1].start if i + 1 < len(line.words) else line.end
        start, end = round(word.start * 100), round(max(nxt, word.start) * 100)
        if start > cursor:  # a silence before the word: an empty syllable keeps later words in time
            parts.append(f"{{\\k{start - cursor}}}")
        parts.append(f"{{\\k{max(0, end - max(start, cursor))}}}{word.text} ")
        cursor = max(end, cursor)
    return "".join(parts).rstrip()


def to_ass(timing: LyricsTiming, title: str = "") -> str:
    """Advanced SubStation Alpha with karaoke timing (plays highlighted in mpv and Aegisub)."""
    events = [
        f"Dialogue: 0,{_clock(line.start, '.', 2)[1:]},{_clock(line.end, '.', 2)[1:]},Default,,0,0,0,,{_ass_text(line)}"
        for line in _lines(timing)
    ]
    return ASS_HEADER.format(title=title.replace("\n", " ")) + "\n".join(events) + "\n"
