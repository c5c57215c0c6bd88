"""LRC import: line-level LRC and enhanced (word-level) LRC as a :class:`LyricsTiming`, the starting
timing for a song whose lyrics were timed elsewhere. The writers are in :mod:`app.audio.exports`.

Line tags are ``[mm:ss]``, ``[mm:ss.x]``, ``[mm:ss.xx]`` or ``[mm:ss.xxx]`` (``:`` also accepted
before the fraction; minutes may exceed 59); a line may carry several (a repeated chorus). Word tags
``<mm:ss.xx>`` come before each word; a tag with no text after it ends the previous word. Headers
``[ti:]``, ``[ar:]``, ``[al:]``, ``[length:]``, ``[la:]``, ``[offset:+/-ms]`` (positive: the lyrics
come earlier) and any other ``[name:value]`` are read or ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.audio.types import AudioError, Line, LyricsTiming, Word

_TIME = r"(\d+):(\d{1,2})(?:[.:](\d{1,3}))?"
_LINE_TAG = re.compile(r"\s*\[" + _TIME + r"\]")
_WORD_TAG = re.compile(r"<" + _TIME + r">")
_HEADER = re.compile(r"\[([A-Za-z#][\w#-]*):(.*)\]")
SECONDS_PER_WORD = 0.5  # the length given to an untimed last line: a guess, marked by confidence 0


class LrcError(AudioError, ValueError):
    """The text is not LRC; the message names the line (1-based)."""


@dataclass
class _Entry:
    start: float
    text: str
    shift: float  # a repeated line (several time tags): its word tags move with it


def _seconds(minutes: str, seconds: str, fraction: str | None) -> float:
    return int(minutes) * 60 + int(seconds) + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def lrc_to_timing(text: str | bytes, language: str = "") -> LyricsTiming:
    """Read LRC text (UTF-8). Lines come out sorted by time. With word tags a word starts at its tag
    and ends at the next tag (confidence 1); without them the line's words share the time up to the
    next line evenly (confidence 0: interpolated). A line ends at its closing word tag, else at
    the next time tag (an empty timed line ends the one before it).
    Raises :class:`LrcError` for a line that has neither a time tag nor a ``[name:value]`` header,
    a malformed time, or no timed lyrics at all."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LrcError(f"not UTF-8 text (byte {exc.start})") from None
    headers: dict[str, str] = {}
    entries: list[_Entry] = []
    for number, row in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        if not row.strip():
            continue
        starts, rest = [], row
        while match := _LINE_TAG.match(rest):
            starts.append(_seconds(*match.groups()))
            rest = rest[match.end():]
        if starts:
            entries += [_Entry(start, rest.strip(), start - _tagged_line_start(starts, rest)) for start in starts]
        elif header := _HEADER.fullmatch(row.strip()):
            headers[header.group(1).lower()] = header.group(2).strip()
        else:
            raise LrcError(f"line {number}: expected a [mm:ss.xx] time tag or a [name:value] header, got {row[:40]!r}")
    offset = _offset(headers.get("offset", "0"))
    entries.sort(key=lambda e: e.start)
    lines = []
    for k, entry in enumerate(entries):
        following = next((e.start for e in entries[k + 1:] if e.start > entry.start), None)
        line = _line(entry, following)
        if line is not None:
            lines.append(line)
    if not lines:
        raise LrcError("no timed lyrics lines")
    for line in lines:
        line.start, line.end = max(0.0, line.start - offset), max(0.0, line.end - offset)
        for word in line.words:
            word.start, word.end = max(0.0, word.start - offset), max(0.0, word.end - offset)
    return LyricsTiming(language=language or headers.get("la", ""), lines=lines, models={"timing": "lrc"})


def _tagged_line_start(starts: list[float], text: str) -> float:
    """Which of a repeated line's times its word tags were written for: the last one before them."""
    first_tag = _WORD_TAG.search(text)
    if not first_tag:
        return starts[0]
    tag = _seconds(*first_tag.groups())
    return max((s for s in starts if s <= tag), default=min(starts))


def _offset(value: str) -> float:
    try:
        return int(value.strip() or 0) / 1000.0
    except ValueError:
        raise LrcError(f"[offset:] must be whole milliseconds, got {value!r}") from None


def _line(entry: _Entry, following: float | None) -> Line | None:
    parts = _WORD_TAG.split(entry.text)  # text, then (mm, ss, fraction, text) per word tag
    tagged = [(_seconds(*parts[i:i + 3]) + entry.shift, parts[i + 3]) for i in range(1, len(parts), 4)]
    plain = " ".join(_WORD_TAG.sub(" ", entry.text).split())
    if not plain:
        return None  # an empty timed line: only ends the previous one
    if not tagged:
        end = following if following is not None else entry.start + SECONDS_PER_WORD * len(plain.split())
        return Line(plain, entry.start, end, _spread(plain.split(), entry.start, end))
    words = _spread(parts[0].split(), entry.start, tagged[0][0])
    before = parts[0]
    for i, (start, segment) in enumerate(tagged):
        end = tagged[i + 1][0] if i + 1 < len(tagged) else (following or start + SECONDS_PER_WORD)
        if not segment.strip():
            pass
        elif words and before.strip() and not before[-1:].isspace() and not segment[:1].isspace():
            words[-1].text += segment.strip()  # a tag inside a word (syllables): <00:01.00>Hel<00:01.20>lo
            words[-1].end = max(words[-1].end, end)
        else:
            words.append(Word(" ".join(segment.split()), start, max(start, end)))
        before = segment
    closing = tagged[-1][0] if not tagged[-1][1].strip() else words[-1].end
    return Line(" ".join(w.text for w in words), words[0].start, max(closing, words[-1].end), words)


def _spread(words: list[str], start: float, end: float) -> list[Word]:
    step = max(0.0, end - start) / max(1, len(words))
    return [Word(w, start + k * step, start + (k + 1) * step, confidence=0.0) for k, w in enumerate(words)]
