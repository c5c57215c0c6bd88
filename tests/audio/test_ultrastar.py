"""UltraStar: the strict parser (shared community files, our own output, malformed files), the import
as a timing document (reproduces the shared words.json), the writer, and the karaoke file set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.audio.exports import write_karaoke_files
from app.audio.pitch import PitchAnalysis, PitchContour, PitchNote
from app.audio.types import Line, LyricsTiming, Waveform, Word
from app.audio.ultrastar import (
    UltraStarError,
    choose_bpm,
    parse_ultrastar,
    syllable_words,
    to_ultrastar,
    ultrastar_to_timing,
)

HEAD = "#TITLE:T\n#ARTIST:A\n#MP3:a.mp3\n#BPM:300\n#GAP:1000\n"


def _song_dirs(data_dir):
    dirs = sorted(p for p in (data_dir / "songs-en").iterdir() if (p / "ultrastar.txt").exists())
    assert len(dirs) == 7
    return dirs


def test_every_shared_file_parses(data_dir):
    for folder in _song_dirs(data_dir):
        song = parse_ultrastar((folder / "ultrastar.txt").read_bytes())
        assert song.headers["TITLE"] and song.headers["ARTIST"] and song.bpm > 0
        assert len(song.phrases) > 20 and all(phrase for phrase in song.phrases)
        assert sum(n.pitched for n in song.notes) > 200
        starts = [n.start for n in song.notes]
        assert starts == sorted(starts)


def test_import_reproduces_words_json(data_dir):
    """words.json was derived from ultrastar.txt: same words and lines, times within 1 ms."""
    for folder in _song_dirs(data_dir):
        timing = ultrastar_to_timing((folder / "ultrastar.txt").read_text(encoding="utf-8"))
        reference = json.loads((folder / "words.json").read_text(encoding="utf-8"))
        assert [line.text for line in timing.lines] == [line["text"] for line in reference["lines"]], folder.name
        ref_words = [w for line in reference["lines"] for w in line["words"]]
        assert [w.text for w in timing.words] == [w["text"] for w in ref_words]
        assert max(abs(w.start - r["start"]) for w, r in zip(timing.words, ref_words, strict=True)) <= 0.001
        assert max(abs(w.end - r["end"]) for w, r in zip(timing.words, ref_words, strict=True)) <= 0.001
        assert timing.language == "en"


def test_syllables_join_into_words():
    song = parse_ultrastar(HEAD + ": 0 2 0 mo\n: 2 2 1 ~\n: 4 2 2 ment\n: 8 2 3  in\n: 10 2 3 ~\n"
                                  ": 12 2 4  deny\n: 14 2 4 ~ .\n- 20\nF 24 4 0 Hey \nR 28 4 0 you\nE\n")
    timing = ultrastar_to_timing(song)
    assert [line.text for line in timing.lines] == ["moment in deny.", "Hey you"]
    assert [len(g) for g in syllable_words(song.phrases[0])] == [3, 2, 2]
    moment = timing.lines[0].words[0]
    assert moment.start == pytest.approx(1.0) and moment.end == pytest.approx(1.0 + 6 * 15 / 300)


def test_relative_mode_and_legacy_phrase_markers():
    relative = parse_ultrastar(HEAD + "#RELATIVE:yes\n: 0 2 0 a\n: 4 2 0  b\n- 8 10\n: 0 2 0 c\n- 4 6\n: 2 2 0 d\nE\n")
    assert [n.start for n in relative.notes] == [0, 4, 10, 18]
    normal = parse_ultrastar(HEAD + ": 0 2 0 a\n- 4 8\n: 8 2 0 b\nE\n")  # the second number is ignored
    assert [n.start for n in normal.notes] == [0, 8] and len(normal.phrases) == 2


def test_tolerated_variants():
    text = "\ufeff" + HEAD.replace("\n", "\r\n") + "\r\n: 0 2 -3 a\r\n* 2 2 0  b\r\nG 4 2 0  c"  # no E
    song = parse_ultrastar(text.encode("utf-8"))
    assert [n.kind for n in song.notes] == [":", "*", "G"] and song.notes[0].midi == 57
    assert parse_ultrastar(HEAD.replace("#BPM:300", "#bpm : 266,6") + ": 0 1 0 x\nE\nanything after E").bpm == 266.6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEAD.replace("#TITLE:T\n", "") + ": 0 1 0 a\n", "#TITLE"),
        (HEAD.replace("#MP3:a.mp3\n", "") + ": 0 1 0 a\n", "#MP3"),
        (HEAD.replace("300", "fast") + ": 0 1 0 a\n", "#BPM must be a decimal number"),
        (HEAD.replace("300", "0") + ": 0 1 0 a\n", "greater than 0"),
        (HEAD.replace("1000", "-5") + ": 0 1 0 a\n", "#GAP"),
        (HEAD + "#TITLE:again\n: 0 1 0 a\n", "appears twice"),
        (HEAD + "#VERSION:2.0.0\n: 0 1 0 a\n", "not supported"),
        (HEAD + "#ENCODING:CP1252\n: 0 1 0 a\n", "UTF-8"),
        (HEAD + "#RELATIVE:maybe\n: 0 1 0 a\n", "#RELATIVE"),
        (HEAD + "#NOCOLON\n: 0 1 0 a\n", "#KEY:value"),
        (HEAD + "E\n", "no notes"),
        (HEAD + ": 0 1 0 a\n#GAP:5\n", "before the first note"),
        (HEAD + ": 0 1 0 a\nX 2 1 0 b\n", "unknown line"),
        (HEAD + ": 0 1 0 a\n: x 1 0 b\n", "a note must look like"),
        (HEAD + ": 0 1 0 a\n: 2 1 0\n", "a note must look like"),
        (HEAD + ": 0 1 0 a\n: 2 1 0 \n", "needs a text"),
        (HEAD + ": 0 1 0 a\n- 2\n- 3\n: 4 1 0 b\n", "in a row"),
        (HEAD + ": 0 1 0 a\n- two\n", "end-of-phrase"),
        (HEAD + ": 4 4 0 a\n: 6 1 0 b\n", "before the previous note ends"),
        (HEAD + "#RELATIVE:yes\n: 0 1 0 a\n- 2\n: 0 1 0 b\n", "two numbers"),
        (HEAD + "P1\n: 0 1 0 a\n", "duets"),
        (b"#TITLE:\xe9t\xe9\n", "not UTF-8"),
    ],
)
def test_malformed_files_are_rejected_with_the_reason(text, message):
    with pytest.raises(UltraStarError, match=message):
        parse_ultrastar(text)


def test_errors_name_the_line():
    with pytest.raises(UltraStarError) as info:
        parse_ultrastar(HEAD + ": 0 1 0 a\n\n: nope\n")
    assert info.value.line == 8 and str(info.value).startswith("line 8: ")


def _timing() -> LyricsTiming:
    words = [Word("Where", 8.26, 8.49), Word("did", 8.6, 8.71), Word("we", 8.77, 9.05), Word("go?", 9.16, 9.78)]
    second = [Word("Ça", 11.86, 12.03), Word("va", 12.2, 12.37)]
    return LyricsTiming("fr", [Line("Where did we go?", 8.26, 9.78, words), Line("Ça va", 11.86, 12.37, second)])


def _notes() -> list[PitchNote]:
    return [PitchNote(8.26, 8.49, 57, "Where", 0), PitchNote(8.6, 8.71, 60, "did", 1),
            PitchNote(8.77, 8.9, 62, "we", 2), PitchNote(8.9, 9.05, 64, "~", 2), PitchNote(9.16, 9.78, 62, "go?", 3),
            PitchNote(11.86, 12.03, 55, "Ça", 4, measured=False), PitchNote(12.2, 12.37, 50, "va", 5)]


def test_writer_output_parses_and_round_trips():
    timing = _timing()
    text = to_ultrastar(timing, "Better", "Jonathan Coulton", "jc-better (karaoke).mp3", _notes(), tempo_bpm=120)
    song = parse_ultrastar(text)
    assert song.headers["VERSION"] == "1.0.0" and song.headers["MP3"] == "jc-better (karaoke).mp3"
    assert song.headers["LANGUAGE"] == "French" and song.bpm == 360 and song.gap == pytest.approx(8.26)
    assert [n.pitch for n in song.notes] == [-3, 0, 2, 4, 2, -5, -10]
    assert [n.kind for n in song.notes] == [":", ":", ":", ":", ":", "F", ":"]
    assert [n.text for n in song.notes] == ["Where", " did", " we", "~", " go?", "Ça", " va"]
    back = ultrastar_to_timing(song)
    assert [line.text for line in back.lines] == [line.text for line in timing.lines]
    half_beat = 15 / 360 / 2
    for got, want in zip(back.words, timing.words, strict=True):
        assert abs(got.start - want.start) <= half_beat + 1e-9 and abs(got.end - want.end) <= half_beat + 1e-9
    assert text.endswith("E\n") and "- " in text


def test_writer_keeps_notes_apart_and_without_pitch_writes_freestyle():
    words = [Word("a", 1.0, 1.001), Word("b", 1.002, 1.003), Word("c", 1.004, 1.5)]  # closer than a beat
    text = to_ultrastar(LyricsTiming("en", [Line("a b c", 1.0, 1.5, words)]), "T", "A", "t.mp3")
    notes = parse_ultrastar(text).notes  # the parser rejects overlapping notes
    assert [(n.start, n.length) for n in notes][:2] == [(0, 1), (1, 1)]
    assert {n.kind for n in notes} == {"F"} and {n.pitch for n in notes} == {0}
    with pytest.raises(ValueError):
        to_ultrastar(LyricsTiming("en", []), "T", "A", "t.mp3")
    with pytest.raises(ValueError, match="word index"):
        to_ultrastar(_timing(), "T", "A", "t.mp3", [PitchNote(0, 1, 60, "x", 99)])


@pytest.mark.parametrize(("tempo", "bpm"),
                         [(120, 360), (95, 380), (150, 300), (299, 598), (0, 400), (float("nan"), 400)])
def test_choose_bpm(tempo, bpm):
    assert choose_bpm(tempo) == bpm


def test_karaoke_files_with_pitch(tmp_path):
    timing = _timing()
    contour = PitchContour(np.arange(3) * 0.02, np.array([220.0, 221.0, np.nan]), np.array([True, True, False]))
    analysis = PitchAnalysis(contour, _notes(), "A minor", 0.8, 120.0, 0.01)
    instrumental = Waveform(np.zeros((2, 44100 * 13), np.float32), 44100)
    paths = write_karaoke_files(instrumental, timing, "Better", "JC", None, tmp_path, "jc-better", pitch=analysis)
    assert paths["ultrastar"].name == "jc-better.txt" and paths["pitch"].name == "jc-better.pitch.json"
    song = parse_ultrastar(paths["ultrastar"].read_bytes())
    assert song.headers["MP3"] == paths["karaoke_mp3"].name == "jc-better (karaoke).mp3"
    document = json.loads(paths["pitch"].read_text(encoding="utf-8"))
    assert document["key"] == "A minor" and document["tempo_bpm"] == 120.0
    assert document["f0"] == {"step": 0.04, "times": [0.0, 0.04], "hz": [220.0, None]}
    assert [n["midi"] for n in document["notes"]] == [57, 60, 62, 64, 62, 55, 50]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
