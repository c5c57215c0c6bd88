"""Parsing user lyrics into lines of words."""

from __future__ import annotations

from app.audio.lyrics import lyrics_words, normalize_word, parse_lyrics, parse_stanzas, plain_lyrics

LYRICS = """[Verse 1]
Where did we go?
  When was the   moment

[Chorus]
That we broke in two?
{Bridge}
(Oh, oh) I think I know
"""


def test_one_line_per_non_empty_line_without_section_markers():
    assert parse_lyrics(LYRICS) == [
        ["Where", "did", "we", "go?"],
        ["When", "was", "the", "moment"],
        ["That", "we", "broke", "in", "two?"],
        ["(Oh,", "oh)", "I", "think", "I", "know"],
    ]


def test_words_are_exactly_the_given_tokens_in_order():
    text = "Don't stop — believin'!\nHold on to that feelin'..."
    assert lyrics_words(text) == [
        "Don't",
        "stop",
        "—",
        "believin'!",
        "Hold",
        "on",
        "to",
        "that",
        "feelin'...",
    ]
    assert " ".join(lyrics_words(text)) == " ".join(text.split())


def test_lrc_timestamps_and_metadata_are_removed():
    text = "[ar:Someone]\n[ti:Song]\n[00:12.34]First line\n[00:15.00]<00:15.00>Second <00:15.50>line\n"
    assert parse_lyrics(text) == [["First", "line"], ["Second", "line"]]


def test_windows_line_endings_and_unicode():
    assert parse_lyrics("Ça va\r\n\r\nÜber  alles\r\n") == [["Ça", "va"], ["Über", "alles"]]


def test_empty_lyrics():
    assert parse_lyrics("") == []
    assert parse_lyrics("\n  \n[Chorus]\n") == []


def test_plain_lyrics_normalises_spacing():
    assert plain_lyrics(LYRICS).splitlines()[1] == "When was the moment"


def test_normalize_word_for_matching():
    assert normalize_word("Don't!") == "dont"
    assert normalize_word("Über,") == "über"
    assert normalize_word("13") == "13"
    assert normalize_word("—") == ""


def test_quality_summary_and_review_flags():
    from app.audio.types import Line, LyricsTiming, Word

    timing = LyricsTiming("en", [
        Line("sure thing", 1.0, 2.0, [Word("sure", 1.0, 1.4, 0.9), Word("thing", 1.5, 2.0, 0.8)]),
        Line("guess work", 3.0, 4.0, [Word("guess", 3.0, 3.5, 0.0), Word("work", 3.5, 4.0, 0.1)]),
    ], unmatched=[{"start": 5.0, "end": 7.5, "heard": "a verse the lyrics lack"}])
    assert [line.needs_review for line in timing.lines] == [False, True]
    q = timing.quality()
    assert q == {"words": 4, "words_timed": 4, "words_interpolated": 1, "lines": 2, "lines_flagged": 1,
                 "share_flagged": 0.5, "mean_confidence": 0.45, "unmatched_passages": 1}
    lines = timing.to_dict()["lines"]
    assert lines[1]["needs_review"] is True and lines[0]["confidence"] == 0.85
    assert LyricsTiming.from_dict(timing.to_dict()).quality() == q  # the extra line keys read back
    assert LyricsTiming.from_dict(timing.to_dict()).unmatched == timing.unmatched
    # confidences at full precision (fresh from the aligner) summarise as the stored JSON does
    fine = LyricsTiming("en", [Line("a b c", 1.0, 2.0, [Word("a", 1.0, 1.2, 0.72034), Word("b", 1.2, 1.5, 0.00042),
                                                        Word("c", 1.5, 2.0, 0.72036)])])
    assert LyricsTiming.from_dict(fine.to_dict()).quality() == fine.quality()


def test_chorus_marker_without_lines_repeats_the_chorus():
    text = "[Verse 1]\nfirst verse\n\n[Chorus]\nsing it\nloud\n\n[Verse 2]\nsecond verse\n\n[Chorus]\n\n[Outro]\nbye\n"
    assert [" ".join(w) for w in parse_lyrics(text)] == [
        "first verse", "sing it", "loud", "second verse", "sing it", "loud", "bye",
    ]


def test_repeat_marks_on_a_line_and_on_their_own_line():
    text = "hey now (x2)\nthat's it 3x\n\nla la\nlo lo\n(x2)\n[Chorus x2]\nchorus line\n"
    assert [" ".join(w) for w in parse_lyrics(text)] == [
        "hey now", "hey now", "that's it", "that's it", "that's it",
        "la la", "lo lo", "la la", "lo lo", "chorus line", "chorus line",
    ]


def test_bracketed_sung_line_is_kept_and_repeat_counts_are_bounded():
    assert parse_lyrics("[MESSAGE REDACTED]\n[Chorus: Both]\nx\n") == [["[MESSAGE", "REDACTED]"], ["x"]]
    assert len(parse_lyrics("go (x99)")) == 8
    assert parse_lyrics("Matrix x\nBox 2\n") == [["Matrix", "x"], ["Box", "2"]]


def test_stanza_starts_follow_blank_lines_markers_and_repeated_sections():
    text = "intro line\n\nverse a\nverse b\n[Chorus]\nsing it\n\n[Chorus]\n\nla la\n(x2)\nend (x2)\n"
    lines, starts = parse_stanzas(text)
    assert [" ".join(w) for w in lines] == [
        "intro line", "verse a", "verse b", "sing it", "sing it", "la la", "la la", "end", "end",
    ]
    # a blank line, a marker, a chorus sung again and a stanza repeated by "(x2)" each begin a stanza;
    # a line repeated by its own "(x2)" does not, nor does the first line
    assert starts == {1, 3, 4, 5, 6}
    assert parse_stanzas("one\ntwo\n")[1] == set()
