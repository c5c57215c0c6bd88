"""Plain lyrics text -> lines of words, and the word normalisation used to match words.

Rules: one lyric line per non-empty text line; lines that are only a section marker
(``[Chorus]``, ``[Verse 2]``, ``{Bridge}``) or an LRC metadata tag (``[ar:Artist]``) are dropped;
leading LRC timestamps (``[01:02.34]``) and word tags (``<01:02.34>``) are removed; words are the
whitespace-separated tokens, punctuation kept, so the output words are exactly the given words.
"""

from __future__ import annotations

import re
import unicodedata

_SECTION_LINE = re.compile(r"^\s*(\[[^\]]*\]|\{[^}]*\})\s*$")
_TIME_TAG = re.compile(r"[\[<]\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?[\]>]")


def parse_lyrics(text: str) -> list[list[str]]:
    """Split lyrics into lines of words (tokens keep their punctuation); empty lines are skipped."""
    lines: list[list[str]] = []
    for raw in text.splitlines():
        raw = _TIME_TAG.sub(" ", raw)
        if not raw.strip() or _SECTION_LINE.match(raw):
            continue
        words = raw.split()
        if words:
            lines.append(words)
    return lines


def lyrics_words(text: str) -> list[str]:
    """All words of :func:`parse_lyrics` in order."""
    return [word for line in parse_lyrics(text) for word in line]


def plain_lyrics(text: str) -> str:
    """The lyrics as clean text: one line per lyric line, words joined by single spaces."""
    return "\n".join(" ".join(words) for words in parse_lyrics(text))


def normalize_word(word: str) -> str:
    """Lower-case letters and digits only (NFKC; apostrophes and punctuation removed), for matching."""
    word = unicodedata.normalize("NFKC", word).casefold()
    return "".join(ch for ch in word if ch.isalnum())


__all__ = ["lyrics_words", "normalize_word", "parse_lyrics", "plain_lyrics"]
