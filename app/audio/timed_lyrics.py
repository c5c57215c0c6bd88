"""Lyrics that arrive with timing: an LRC file or an UltraStar ``.txt`` given as the lyrics text.

Such a text is used as the starting timing of the alignment (refined against the audio), and its
words are the lyrics.
"""

from __future__ import annotations

import re

from app.audio.lrc import lrc_to_timing
from app.audio.types import LyricsTiming
from app.audio.ultrastar import ultrastar_to_timing

_ULTRASTAR = re.compile(r"^#(TITLE|ARTIST|BPM):", re.MULTILINE | re.IGNORECASE)
_LRC_LINE = re.compile(r"^\s*\[\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?\]", re.MULTILINE)


def timing_format(text: str) -> str | None:
    """``"ultrastar"``, ``"lrc"`` (at least half of the non-empty lines start with a time tag)
    or None for plain lyrics."""
    if len(_ULTRASTAR.findall(text)) >= 2:
        return "ultrastar"
    rows = [row for row in text.splitlines() if row.strip() and not re.match(r"^\s*\[[a-z#]+:", row, re.I)]
    if rows and len(_LRC_LINE.findall(text)) * 2 >= len(rows):
        return "lrc"
    return None


def imported_timing(text: str, language: str = "") -> LyricsTiming | None:
    """The timing an LRC or UltraStar text carries, or None for plain lyrics. Raises the format's
    error (a ValueError subclass, with a line number) when the text is malformed."""
    kind = timing_format(text)
    if kind == "ultrastar":
        timing = ultrastar_to_timing(text)
    elif kind == "lrc":
        timing = lrc_to_timing(text, language)
    else:
        return None
    timing.language = timing.language or language
    return timing


def lyrics_text(timing: LyricsTiming) -> str:
    """The plain lyrics of a timing document, one line per lyric line."""
    return "\n".join(line.text for line in timing.lines if line.words)
