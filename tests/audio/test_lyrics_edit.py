from app.audio.lyrics_edit import keep_unchanged_lines
from app.audio.types import Line, LyricsTiming, Word


def timing(*lines: tuple[str, float]) -> LyricsTiming:
    out = []
    for text, start in lines:
        words = [Word(w, start + 0.3 * i, start + 0.3 * i + 0.25, 0.9) for i, w in enumerate(text.split())]
        out.append(Line(text, words[0].start, words[-1].end, words))
    return LyricsTiming("en", out, {"alignment": "tiny.en"})


def test_unchanged_lines_keep_their_timing_and_edited_lines_take_the_new_one():
    old = timing(("la la land", 10.0), ("second line here", 20.0), ("la la land", 30.0))
    new = timing(("la la land", 10.4), ("second verse here", 20.6), ("la la land", 30.2), ("new end", 40.0))
    merged, kept = keep_unchanged_lines(old, new)
    assert kept == 2
    assert [line.text for line in merged.lines] == ["la la land", "second verse here", "la la land", "new end"]
    assert merged.lines[0].start == 10.0 and merged.lines[2].start == 30.0  # previous timing kept
    assert merged.lines[1].start == 20.6 and merged.lines[3].start == 40.0  # edited / added lines re-aligned
    onsets = [w.start for w in merged.words]
    assert onsets == sorted(onsets)
