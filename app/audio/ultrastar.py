"""UltraStar ``.txt``: a strict parser, the import as a :class:`LyricsTiming`, and the writer.

Written from the format specification (github.com/UltraStar-Deluxe/format, "The UltraStar File
Format", unversioned and v1): ``#KEY:value`` headers, then a body of notes
``<type> <start beat> <length> <pitch> <text>`` (types ``:`` regular, ``*`` golden, ``F``
freestyle, ``R`` rap, ``G`` golden rap), end-of-phrase markers ``- <beat>`` and a final ``E``.
Times: ``seconds = GAP/1000 + beat * 60 / (4 * BPM)`` (the BPM value is quadrupled, so one beat
is a quarter of a musical beat). Pitch: semitones relative to C4 (MIDI 60).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.audio.pitch import PitchNote
from app.audio.types import AudioError, Line, LyricsTiming, Word

NOTE_TYPES = {":": "regular", "*": "golden", "F": "freestyle", "R": "rap", "G": "golden_rap"}
PITCHED_TYPES = (":", "*")
MIDI_C4 = 60
REQUIRED_HEADERS = ("TITLE", "ARTIST", "BPM")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NOTE = re.compile(r"(\S)[ \t]+(\d+)[ \t]+(\d+)[ \t]+(-?\d+)[ \t](.*)")
_BREAK = re.compile(r"-[ \t]+(\d+)(?:[ \t]+(\d+))?[ \t]*")
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
# ISO 639-1 code <-> the English language name #LANGUAGE holds (v1: ISO 639-2 English names)
LANGUAGE_NAMES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "pl": "Polish", "sv": "Swedish", "no": "Norwegian", "da": "Danish", "fi": "Finnish",
    "hr": "Croatian", "sr": "Serbian", "bs": "Bosnian", "sl": "Slovenian", "cs": "Czech", "sk": "Slovak",
    "hu": "Hungarian", "ro": "Romanian", "ru": "Russian", "uk": "Ukrainian", "el": "Greek", "tr": "Turkish",
    "ja": "Japanese", "ko": "Korean", "zh": "Chinese", "ar": "Arabic", "he": "Hebrew", "hi": "Hindi",
}  # fmt: skip
_LANGUAGE_CODES = {name.lower(): code for code, name in LANGUAGE_NAMES.items()} | {
    "englisch": "en", "deutsch": "de", "französisch": "fr", "spanisch": "es", "italienisch": "it",
}  # fmt: skip


class UltraStarError(AudioError, ValueError):
    """The text is not a valid UltraStar file; the message names the line (1-based) and the rule."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class UltraStarNote:
    """One note: ``kind`` is the type character, ``start``/``length`` in beats (absolute, after
    #RELATIVE is resolved), ``pitch`` in semitones relative to C4, ``text`` as written (a leading
    space starts a new word, ``~`` continues the previous syllable)."""

    kind: str
    start: int
    length: int
    pitch: int
    text: str

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def pitched(self) -> bool:
        """Regular and golden notes carry a pitch; freestyle and rap notes do not."""
        return self.kind in PITCHED_TYPES

    @property
    def midi(self) -> int:
        return self.pitch + MIDI_C4


@dataclass
class UltraStarSong:
    """A parsed file. ``headers`` has upper-case keys; ``phrases`` are the notes between
    end-of-phrase markers (the lyrics lines)."""

    headers: dict[str, str]
    phrases: list[list[UltraStarNote]] = field(default_factory=list)

    @property
    def notes(self) -> list[UltraStarNote]:
        return [n for phrase in self.phrases for n in phrase]

    @property
    def bpm(self) -> float:
        """The #BPM value as written (beats last ``15 / bpm`` seconds)."""
        return _parse_number(self.headers["BPM"], "BPM")

    @property
    def gap(self) -> float:
        """#GAP in seconds (0 when absent)."""
        value = self.headers.get("GAP")
        return _parse_number(value, "GAP") / 1000.0 if value else 0.0

    def seconds(self, beat: float) -> float:
        """The time in seconds of ``beat``."""
        return self.gap + beat * 15.0 / self.bpm

    @property
    def language(self) -> str:
        """The ISO 639-1 code for #LANGUAGE (its first value), or "" when unknown."""
        first = self.headers.get("LANGUAGE", "").split(",")[0].strip().lower()
        return _LANGUAGE_CODES.get(first, first if len(first) == 2 else "")


def _parse_number(text: str, name: str, line: int | None = None) -> float:
    value = text.strip()
    if not _NUMBER.fullmatch(value):
        raise UltraStarError(f"#{name} must be a decimal number like 300 or 266,6; got {value!r}", line)
    return float(value.replace(",", "."))


def parse_ultrastar(text: str | bytes) -> UltraStarSong:
    """Parse an UltraStar file strictly. Returns an :class:`UltraStarSong`.

    Accepts UTF-8 (a byte order mark is ignored), CR/LF/CRLF line ends, empty lines anywhere,
    #RELATIVE:yes (phrase markers ``- <beat> <offset>`` move the origin of later beats), and the
    legacy second number of ``- <beat> <next>`` in normal mode (ignored, as games do).
    Raises :class:`UltraStarError` naming the line for: non-UTF-8 bytes, #ENCODING other than
    UTF-8, a #VERSION other than 1.x.y, a header without ``:``, a repeated or missing required
    header (TITLE, ARTIST, BPM, and MP3 or AUDIO), BPM/GAP that are not decimal numbers or a BPM
    of 0, headers after the first note, an unknown line or note type, malformed numbers,
    two end-of-phrase markers in a row, notes out of order or overlapping, duet voice changes
    (``P1``/``P2``: not supported), and a file without notes.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UltraStarError(f"not UTF-8 text (byte {exc.start})") from None
    rows = text.removeprefix("\ufeff").splitlines()
    headers, body_start = _parse_headers(rows)
    song = UltraStarSong(headers)
    if song.bpm <= 0:
        raise UltraStarError("#BPM must be greater than 0")
    _parse_body(rows, body_start, song)
    if not song.notes:
        raise UltraStarError("the file has no notes")
    return song


def _parse_headers(rows: list[str]) -> tuple[dict[str, str], int]:
    headers: dict[str, str] = {}
    number = 0
    for number, row in enumerate(rows, 1):
        if not row.strip():
            continue
        if not row.lstrip().startswith("#"):
            break
        key, colon, value = row.lstrip()[1:].partition(":")
        key = key.strip().upper()
        if not colon or not key:
            raise UltraStarError(f"a header must look like #KEY:value, got {row.strip()!r}", number)
        if key in headers:
            raise UltraStarError(f"header #{key} appears twice", number)
        if value.strip():  # an empty value is the same as an absent header
            headers[key] = value.strip()
    else:
        number = len(rows) + 1
    missing = [k for k in REQUIRED_HEADERS if k not in headers]
    if "MP3" not in headers and "AUDIO" not in headers:
        missing.append("MP3")
    if missing:
        raise UltraStarError(f"missing required header(s): {', '.join('#' + k for k in missing)}")
    _check_header_values(headers)
    return headers, number - 1


def _check_header_values(headers: dict[str, str]) -> None:
    version = headers.get("VERSION")
    if version is not None:
        match = _VERSION.fullmatch(version)
        if not match:
            raise UltraStarError(f"#VERSION must look like 1.0.0, got {version!r}")
        if match.group(1) != "1":
            raise UltraStarError(f"#VERSION {version} is not supported (only 1.x.y and unversioned files)")
    encoding = headers.get("ENCODING", "UTF-8").replace("-", "").upper()
    if encoding != "UTF8":
        raise UltraStarError(f"#ENCODING {headers['ENCODING']} is not supported; convert the file to UTF-8")
    if headers.get("RELATIVE", "no").lower() not in ("yes", "no"):
        raise UltraStarError(f"#RELATIVE must be yes or no, got {headers['RELATIVE']!r}")
    _parse_number(headers["BPM"], "BPM")
    if "GAP" in headers:
        _parse_number(headers["GAP"], "GAP")


def _parse_body(rows: list[str], start: int, song: UltraStarSong) -> None:
    relative = song.headers.get("RELATIVE", "no").lower() == "yes"
    origin = 0  # relative mode: the beat later beats count from
    phrase: list[UltraStarNote] = []
    last_end = 0
    after_break = False
    for number, row in enumerate(rows[start:], start + 1):
        if not row.strip():
            continue
        head = row[0]
        if head == "E" and not row[1:].strip():
            break
        if head in NOTE_TYPES:
            note = _parse_note(row, number, origin)
            if note.start < last_end:
                raise UltraStarError(f"note at beat {note.start} starts before the previous note ends "
                                     f"(beat {last_end}); notes must be in order and not overlap", number)
            phrase.append(note)
            last_end, after_break = note.end, False
        elif head == "-":
            if after_break:
                raise UltraStarError("two end-of-phrase markers in a row", number)
            match = _BREAK.fullmatch(row)
            if not match:
                raise UltraStarError(f"an end-of-phrase marker must look like '- 120', got {row!r}", number)
            if relative:
                if match.group(2) is None:
                    raise UltraStarError("in #RELATIVE mode a phrase marker needs two numbers, '- <beat> <offset>'",
                                         number)
                origin += int(match.group(2))
            if phrase:
                song.phrases.append(phrase)
            phrase, after_break = [], True
        elif head == "#":
            raise UltraStarError("headers must come before the first note", number)
        elif head == "P" and row[1:].strip().isdigit():
            raise UltraStarError("duets (P1/P2 voice changes) are not supported", number)
        else:
            raise UltraStarError(f"unknown line {row[:40]!r}: expected a note (: * F R G), '-', or 'E'", number)
    if phrase:
        song.phrases.append(phrase)


def _parse_note(row: str, number: int, origin: int) -> UltraStarNote:
    match = _NOTE.fullmatch(row)
    if not match:
        raise UltraStarError(f"a note must look like ': <start> <length> <pitch> <text>', got {row!r}", number)
    kind, start, length, pitch, text = match.groups()
    if not text:
        raise UltraStarError("a note needs a text (a syllable, or ~ to hold the previous one)", number)
    return UltraStarNote(kind, int(start) + origin, int(length), int(pitch), text)


# ---- import ---------------------------------------------------------------------------------

def ultrastar_to_timing(source: str | bytes | UltraStarSong) -> LyricsTiming:
    """The timing document of an UltraStar file: one line per phrase, one word per run of
    syllables (a syllable starts a new word when its text begins with a space or the previous one
    ended with one; ``~`` is removed and a lone ``~`` extends the previous word). Word start is
    its first syllable's start, end its last syllable's end, in seconds. Freestyle and rap notes
    are words too. Raises :class:`UltraStarError` as :func:`parse_ultrastar` does."""
    song = source if isinstance(source, UltraStarSong) else parse_ultrastar(source)
    lines = []
    for phrase in song.phrases:
        words: list[Word] = []
        for group in syllable_words(phrase):
            text = _word_text("".join(n.text for n in group))
            start, end = song.seconds(group[0].start), song.seconds(group[-1].end)
            if text:
                words.append(Word(text, start, end))
            elif words:  # a held syllable at the start of a word: part of the previous one
                words[-1].end = end
        if words:
            lines.append(Line(" ".join(w.text for w in words), words[0].start, words[-1].end, words))
    return LyricsTiming(language=song.language, lines=lines, models={"timing": "ultrastar"})


def _word_text(joined: str) -> str:
    """Syllables joined, ``~`` removed, punctuation written apart ("deny~ ." -> "deny.") glued back."""
    tokens: list[str] = []
    for token in joined.replace("~", "").split():
        if tokens and not any(ch.isalnum() for ch in token):
            tokens[-1] += token
        else:
            tokens.append(token)
    return " ".join(tokens)


def syllable_words(phrase: list[UltraStarNote]) -> list[list[UltraStarNote]]:
    """The notes of one phrase grouped into words (see :func:`ultrastar_to_timing`)."""
    groups: list[list[UltraStarNote]] = []
    for note in phrase:
        starts_word = not groups or note.text[:1].isspace() or groups[-1][-1].text[-1:].isspace()
        if starts_word and note.text.strip() not in ("~", ""):
            groups.append([note])
        else:
            groups[-1].append(note) if groups else groups.append([note])
    return groups


# ---- export ---------------------------------------------------------------------------------

def choose_bpm(tempo_bpm: float = 0.0) -> float:
    """A #BPM for writing: the song's tempo times the smallest whole number that reaches 300
    (a beat of at most 50 ms, so quantising moves a time by 25 ms at most); 400 (37.5 ms) when the
    tempo is unknown."""
    if not tempo_bpm or tempo_bpm <= 0 or not math.isfinite(tempo_bpm):
        return 400.0
    return float(round(tempo_bpm * math.ceil(300.0 / tempo_bpm), 2))


def to_ultrastar(timing: LyricsTiming, title: str, artist: str, mp3: str, notes: Sequence[PitchNote] | None = None,
                 *, bpm: float | None = None, tempo_bpm: float = 0.0) -> str:
    """An UltraStar file (v1.0.0, UTF-8 text) for ``timing``.

    ``notes`` come from :func:`app.audio.pitch.word_notes` (one or more per word, each with its
    word index); measured notes are regular ``:`` notes, notes whose pitch was borrowed from a
    neighbour are freestyle ``F`` (not scored). Without ``notes`` every word is one freestyle note
    at C4. ``#MP3`` names ``mp3`` (a file next to the .txt), ``#GAP`` is the first note's start in
    ms and ``#BPM`` is ``bpm`` or :func:`choose_bpm` of ``tempo_bpm``. Each lyrics line is a phrase;
    words after the first of a line start with a space, continuation notes are ``~``.
    Raises ValueError for a timing without words or notes of another timing.
    """
    line_of = [k for k, line in enumerate(timing.lines) for _ in line.words]
    if not line_of:
        raise ValueError("an UltraStar file needs at least one timed word")
    if notes is None:
        notes = [PitchNote(w.start, w.end, MIDI_C4, w.text, i, measured=False) for i, w in enumerate(timing.words)]
    if any(not 0 <= n.word < len(line_of) for n in notes) or not notes:
        raise ValueError("the notes do not belong to this timing (word index out of range)")
    bpm = bpm or choose_bpm(tempo_bpm)
    gap_ms = max(0, round(notes[0].start * 1000))

    def beat(seconds: float) -> int:
        return round((seconds - gap_ms / 1000) * bpm / 15.0)

    starts: list[int] = []
    for note in notes:  # strictly increasing: every note keeps at least one beat
        starts.append(max(beat(note.start), starts[-1] + 1) if starts else max(0, beat(note.start)))
    limits = [*starts[1:], 1 << 30]
    ends = [max(start + 1, min(beat(n.end), limit)) for n, start, limit in zip(notes, starts, limits, strict=True)]
    headers = {"VERSION": "1.0.0", "TITLE": title, "ARTIST": artist, "MP3": mp3,
               "LANGUAGE": LANGUAGE_NAMES.get(timing.language, ""), "BPM": f"{bpm:g}", "GAP": str(gap_ms)}
    out = [f"#{key}:{' '.join(str(value).split())}" for key, value in headers.items() if str(value).strip()]
    for k, note in enumerate(notes):
        new_line = k > 0 and line_of[note.word] != line_of[notes[k - 1].word]
        if new_line:
            out.append(f"- {ends[k - 1]}")
        text = " ".join(note.text.split()) or "~"
        if text != "~" and k > 0 and not new_line:
            text = " " + text
        out.append(f"{':' if note.measured else 'F'} {starts[k]} {ends[k] - starts[k]} {note.midi - MIDI_C4} {text}")
    out.append("E")
    return "\n".join(out) + "\n"
