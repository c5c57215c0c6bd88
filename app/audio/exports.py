"""Karaoke exports rendered from one :class:`LyricsTiming`: LRC (line and word level), JSON,
ID3 tags with synchronised lyrics (SYLT) and plain lyrics (USLT), and the karaoke file set.

Times in LRC are ``mm:ss.xx`` (centiseconds, rounded); SYLT times are milliseconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from app.audio.subtitles import to_ass, to_srt, to_vtt
from app.audio.types import LyricsTiming, Waveform

if TYPE_CHECKING:
    from app.audio.pitch import PitchAnalysis

# ISO 639-1 (what Whisper reports) -> ISO 639-2/B (what ID3 language fields hold)
_ID3_LANGUAGES = {
    "ar": "ara", "bs": "bos", "ca": "cat", "cs": "cze", "da": "dan", "de": "ger", "el": "gre",
    "en": "eng", "es": "spa", "et": "est", "fa": "per", "fi": "fin", "fr": "fre", "he": "heb",
    "hi": "hin", "hr": "hrv", "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "ko": "kor",
    "lt": "lit", "lv": "lav", "mk": "mac", "nl": "dut", "no": "nor", "pl": "pol", "pt": "por",
    "ro": "rum", "ru": "rus", "sk": "slo", "sl": "slv", "sq": "alb", "sr": "srp", "sv": "swe",
    "tr": "tur", "uk": "ukr", "vi": "vie", "zh": "chi",
}  # fmt: skip
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)}


def id3_language(language: str) -> str:
    """The three-letter ID3 language code for an ISO 639-1/-2 code ("en" -> "eng"; unknown -> "XXX")."""
    code = (language or "").strip().lower()
    if len(code) == 3 and code.isalpha():
        return code
    return _ID3_LANGUAGES.get(code, "XXX")


def lrc_time(seconds: float) -> str:
    """``mm:ss.xx`` for a time in seconds (minutes may exceed 59; negative times clamp to 0)."""
    cs = max(0, round(seconds * 100))
    return f"{cs // 6000:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _tag_value(text: str) -> str:
    return " ".join(str(text).replace("]", ")").replace("[", "(").split())


def _lrc_headers(title: str, artist: str, album: str | None, length_s: float | None) -> list[str]:
    headers = [f"[ti:{_tag_value(title)}]", f"[ar:{_tag_value(artist)}]"]
    if album:
        headers.append(f"[al:{_tag_value(album)}]")
    if length_s is not None:
        total = max(0, round(length_s))
        headers.append(f"[length:{total // 60:02d}:{total % 60:02d}]")
    return headers


def to_lrc(
    timing: LyricsTiming, title: str, artist: str, album: str | None = None, length_s: float | None = None
) -> str:
    """Line-level LRC: ``[ti:]``, ``[ar:]``, ``[al:]`` (if album), ``[length:mm:ss]`` (if known)
    headers, then one ``[mm:ss.xx]text`` per line (line start time)."""
    body = [f"[{lrc_time(line.start)}]{line.text}" for line in timing.lines]
    return "\n".join(_lrc_headers(title, artist, album, length_s) + body) + "\n"


def to_words_lrc(
    timing: LyricsTiming, title: str, artist: str, album: str | None = None, length_s: float | None = None
) -> str:
    """Enhanced (word-level) LRC: ``[mm:ss.xx]<mm:ss.xx>word <mm:ss.xx>word ... <mm:ss.xx>`` per
    line; each ``<>`` tag is a word start, the final tag is the end of the line's last word."""
    body = []
    for line in timing.lines:
        if not line.words:
            body.append(f"[{lrc_time(line.start)}]{line.text}")
            continue
        words = " ".join(f"<{lrc_time(w.start)}>{w.text}" for w in line.words)
        body.append(f"[{lrc_time(line.start)}]{words} <{lrc_time(line.words[-1].end)}>")
    return "\n".join(_lrc_headers(title, artist, album, length_s) + body) + "\n"


def to_json(timing: LyricsTiming) -> str:
    """The timing document as pretty JSON (UTF-8 text, times in seconds to the millisecond)."""
    return json.dumps(timing.to_dict(), ensure_ascii=False, indent=2) + "\n"


def tag_karaoke_mp3(
    mp3_path: str | Path,
    timing: LyricsTiming,
    title: str,
    artist: str,
    album: str | None = None,
    plain_lyrics: str | None = None,
) -> None:
    """Write ID3v2.4 tags into an MP3 in place: TIT2, TPE1, TALB (if album), USLT (plain lyrics;
    default: the timing's line texts), SYLT description "" with one entry per line and SYLT
    "words" with one entry per word (both: milliseconds, content type lyrics, UTF-8).

    Word entries follow the ID3 convention that concatenating them gives the lyrics: words after
    the first of a line start with a space, the first word of each later line with a newline.
    Raises mutagen's errors for a file that is not MP3.
    """
    from mutagen.id3 import ID3, SYLT, TALB, TIT2, TPE1, USLT, Encoding, ID3NoHeaderError

    try:
        tags = ID3(str(mp3_path))
    except ID3NoHeaderError:
        tags = ID3()
    lang = id3_language(timing.language)
    text = plain_lyrics if plain_lyrics is not None else "\n".join(line.text for line in timing.lines)
    utf8 = Encoding.UTF8
    for frame_id in ("TIT2", "TPE1", "TALB", "USLT", "SYLT"):
        tags.delall(frame_id)
    tags.add(TIT2(encoding=utf8, text=[title]))
    tags.add(TPE1(encoding=utf8, text=[artist]))
    if album:
        tags.add(TALB(encoding=utf8, text=[album]))
    tags.add(USLT(encoding=utf8, lang=lang, desc="", text=text))
    lines = [(line.text, _ms(line.start)) for line in timing.lines]
    tags.add(SYLT(encoding=utf8, lang=lang, format=2, type=1, desc="", text=lines))
    words = []
    for n, line in enumerate(timing.lines):
        for k, word in enumerate(line.words):
            prefix = " " if k else ("\n" if n else "")
            words.append((prefix + word.text, _ms(word.start)))
    tags.add(SYLT(encoding=utf8, lang=lang, format=2, type=1, desc="words", text=words))
    tags.save(str(mp3_path), v2_version=4)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def slugify(text: str, max_length: int = 100) -> str:
    """A file-name-safe slug: NFKC, lower case, unicode letters and digits kept, every other run
    of characters turned into one "-" ("Beyoncé - Déjà Vu" -> "beyoncé-déjà-vu"); "untitled" when
    nothing is left; Windows device names get a trailing "-"."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = re.sub(r"['’`]", "", text)  # "don't" -> "dont", not "don-t"
    kept = "".join(ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in text)
    slug = "-".join(kept.split())[:max_length].strip("-")
    if not slug:
        return "untitled"
    return slug + "-" if slug in _WINDOWS_RESERVED else slug


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_pitch_files(pitch: PitchAnalysis, timing: LyricsTiming, title: str, artist: str, out: Path, slug: str,
                       mp3_name: str) -> dict[str, Path]:
    from app.audio.ultrastar import to_ultrastar

    written = {"pitch": out / f"{slug}.pitch.json"}
    _write_text_atomic(written["pitch"], json.dumps(pitch.to_dict(), ensure_ascii=False) + "\n")
    if timing.words:
        written["ultrastar"] = out / f"{slug}.txt"
        text = to_ultrastar(timing, title, artist, mp3_name, pitch.notes or None, tempo_bpm=pitch.tempo_bpm)
        _write_text_atomic(written["ultrastar"], text)
    return written


def write_karaoke_files(
    instrumental: Waveform | str | Path,
    timing: LyricsTiming,
    title: str,
    artist: str,
    album: str | None,
    out_dir: str | Path,
    slug: str,
    plain_lyrics: str | None = None,
    bitrate_kbps: int = 192,
    pitch: PitchAnalysis | None = None,
) -> dict[str, Path]:
    """Write the karaoke set into ``out_dir`` (created if needed), each file atomically:

    ``instrumental`` is a waveform (encoded to MP3 here) or the path of an MP3 already encoded
    (copied, so nothing is encoded twice).

    - ``karaoke_mp3``: ``<slug> (karaoke).mp3``, the instrumental with ID3 title/artist/album,
      USLT and SYLT (see :func:`tag_karaoke_mp3`), tagged before it is renamed into place;
    - ``lrc``: ``<slug>.lrc``; ``words_lrc``: ``<slug>.words.lrc``; ``lyrics_json``: ``<slug>.lyrics.json``;
    - ``ass`` (``\\k`` karaoke tags), ``srt``, ``vtt`` (word timestamps): see :mod:`app.audio.subtitles`;
    - with ``pitch`` (:func:`app.audio.pitch.analyze_pitch` of the vocals, notes for this timing):
      ``ultrastar``: ``<slug>.txt`` (UltraStar, ``#MP3`` = the karaoke MP3; only when the timing has
      words) and ``pitch``: ``<slug>.pitch.json`` (:meth:`PitchAnalysis.to_dict`).

    Returns the paths by key. Raises ValueError for an empty slug or an unwritable waveform.
    """
    from app.audio.io import probe
    from app.audio.writing import write_audio

    if not slug or "/" in slug or "\\" in slug or slug.startswith("."):
        raise ValueError(f"unsafe slug {slug!r}; use slugify()")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "karaoke_mp3": out / f"{slug} (karaoke).mp3",
        "lrc": out / f"{slug}.lrc",
        "words_lrc": out / f"{slug}.words.lrc",
        "lyrics_json": out / f"{slug}.lyrics.json",
        "ass": out / f"{slug}.ass",
        "srt": out / f"{slug}.srt",
        "vtt": out / f"{slug}.vtt",
    }
    is_mp3_file = not isinstance(instrumental, Waveform)
    length = probe(instrumental).duration_s if is_mp3_file else instrumental.duration
    _write_text_atomic(paths["lrc"], to_lrc(timing, title, artist, album, length))
    _write_text_atomic(paths["words_lrc"], to_words_lrc(timing, title, artist, album, length))
    _write_text_atomic(paths["lyrics_json"], to_json(timing))
    _write_text_atomic(paths["ass"], to_ass(timing, title))
    _write_text_atomic(paths["srt"], to_srt(timing))
    _write_text_atomic(paths["vtt"], to_vtt(timing))
    if pitch is not None:
        paths.update(_write_pitch_files(pitch, timing, title, artist, out, slug, paths["karaoke_mp3"].name))
    tmp_mp3 = out / f".{slug}.{uuid.uuid4().hex[:8]}.karaoke.mp3"
    try:
        if is_mp3_file:
            shutil.copyfile(instrumental, tmp_mp3)
        else:
            write_audio(tmp_mp3, instrumental, "mp3", bitrate_kbps)
        tag_karaoke_mp3(tmp_mp3, timing, title, artist, album, plain_lyrics)
        os.replace(tmp_mp3, paths["karaoke_mp3"])
    except BaseException:
        tmp_mp3.unlink(missing_ok=True)
        raise
    return paths
