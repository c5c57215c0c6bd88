"""Plain lyrics text -> lines of words, and the word normalisation used to match words.

Rules: one lyric line per non-empty text line; words are the whitespace-separated tokens,
punctuation kept, so the output words are exactly the given words. LRC timestamps
(``[01:02.34]``), word tags (``<01:02.34>``) and metadata lines (``[ar:Artist]``) are removed.

Section markers and repeats, as lyrics sites write them, are expanded into what is sung:

- a line that is only a section name in brackets (``[Chorus]``, ``[Verse 2]``, ``{Bridge}``,
  ``(Pre-Chorus)``, ``[Chorus x2]``) is dropped; when such a marker names a section seen earlier and
  no lines follow it (the next line is blank, another marker or the end), the earlier section's
  lines are sung again there (``x2``: twice);
- ``(x2)``, ``x3``, ``(2x)``, ``[x2]``, ``×2`` at the end of a line repeats that line; on a line of
  its own it repeats the stanza above it (the lines since the previous blank line or marker).

A bracketed line that is not a section name (``[MESSAGE REDACTED]``) is a sung line.
"""

from __future__ import annotations

import re
import unicodedata

_TIME_TAG = re.compile(r"[\[<]\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?[\]>]")
_META_LINE = re.compile(r"^\s*\[[a-z#]{1,8}:[^\]]*\]\s*$", re.IGNORECASE)
_REPEAT = r"(?:[x×]\s*(\d{1,2})|(\d{1,2})\s*[x×])"
_TIGHT_REPEAT = r"(?<!\S)(?:[x×](\d{1,2})|(\d{1,2})[x×])"  # bare "x2" / "2x" as a token of its own
_REPEAT_TAIL = re.compile(rf"\s*(?:[(\[]\s*{_REPEAT}\s*[)\]]|{_TIGHT_REPEAT})\s*$", re.IGNORECASE)
_SECTION = re.compile(
    r"^\s*[\[{(]\s*(?P<name>(?:pre[- ]?|post[- ]?)?(?:verse|chorus|refrain|bridge|intro|outro|hook|interlude|"
    r"instrumental|solo|break|breakdown|coda|tag|ending|couplet|strophe|estribillo|coro|puente|refrain)"
    r"(?:\s*\d{1,2})?)\s*(?::[^\]})]*)?(?:\s*" + _REPEAT + r")?\s*[\]})]\s*$",
    re.IGNORECASE,
)
MAX_REPEAT = 8


def _repeat_count(match: re.Match[str]) -> int:
    digits = [g for g in match.groups() if g and g.isdigit()]
    return min(MAX_REPEAT, max(1, int(digits[0]))) if digits else 1


def parse_lyrics(text: str) -> list[list[str]]:
    """Split lyrics into lines of words (tokens keep their punctuation), with section markers and
    repeat marks expanded (see the module notes); empty lines are skipped."""
    return parse_stanzas(text)[0]


def parse_stanzas(text: str) -> tuple[list[list[str]], set[int]]:
    """(lines, stanza starts): the lines of :func:`parse_lyrics` and the indices of the lines,
    other than the first, that begin a stanza (they follow a blank line or a section marker, or
    begin a section sung again). Singers pause between stanzas; the aligner uses that."""
    starts: set[int] = set()
    raw_lines = [_TIME_TAG.sub(" ", raw).strip() for raw in text.splitlines()]
    raw_lines = [raw for raw in raw_lines if not _META_LINE.match(raw)]
    lines: list[list[str]] = []
    sections: dict[str, list[list[str]]] = {}
    current: str | None = None  # the section whose lines are being read
    current_times = 1  # "[Chorus x2]" followed by its lines: they are sung twice
    stanza_start = 0

    def close_section() -> None:
        nonlocal current, current_times
        if current is not None:
            for _ in range(current_times - 1):
                starts.add(len(lines))
                lines.extend(list(line) for line in sections[current])
        current, current_times = None, 1

    for k, raw in enumerate(raw_lines):
        marker = _SECTION.match(raw)
        if marker:
            close_section()
            name = " ".join(marker.group("name").lower().replace("-", " ").split())
            following = raw_lines[k + 1] if k + 1 < len(raw_lines) else ""
            if (not following or _SECTION.match(following)) and name in sections:
                for _ in range(_repeat_count(marker)):
                    starts.add(len(lines))
                    lines.extend(list(line) for line in sections[name])
            else:
                current, current_times, sections[name] = name, _repeat_count(marker), []
            stanza_start = len(lines)
            starts.add(len(lines))
            continue
        if not raw:
            close_section()
            stanza_start = len(lines)
            starts.add(len(lines))
            continue
        repeat = _REPEAT_TAIL.search(raw)
        body = raw[: repeat.start()].strip() if repeat else raw
        if repeat and not body:  # "(x2)" alone: the stanza above, again
            stanza = lines[stanza_start:]
            for _ in range(_repeat_count(repeat) - 1):
                starts.add(len(lines))
                lines.extend(list(line) for line in stanza)
            continue
        for _ in range(_repeat_count(repeat) if repeat else 1):
            lines.append(body.split())
            if current is not None:
                sections[current].append(body.split())
    close_section()
    return lines, {k for k in starts if 0 < k < len(lines)}


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


__all__ = ["lyrics_words", "normalize_word", "parse_lyrics", "parse_stanzas", "plain_lyrics"]
