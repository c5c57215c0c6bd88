"""Model-free alignment pieces: word pairing, time estimates, windows, snapping to voice activity."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.alignment import (
    line_outliers,
    plan_windows,
    reconcile,
    skip_leading_pauses,
    snap_to_speech,
    voiced_ends,
)
from app.audio.estimates import estimate_times
from app.audio.vocals import VAD_FRAME_S, SpeechMap
from app.audio.word_matching import match_words, rate_consistent, trusted_anchors


def _speech(duration: float, active: list[tuple[float, float]]) -> SpeechMap:
    frames = np.zeros(int(round(duration / VAD_FRAME_S)), dtype=bool)
    for a, b in active:
        frames[int(a / VAD_FRAME_S) : int(b / VAD_FRAME_S)] = True
    return SpeechMap(frames)


def test_confidence_follows_the_evidence_for_each_time():
    from app.audio.known_lyrics import AGREED_S, CONFIDENCE, _confidences

    source = ["aligned", "aligned", "heard", "aligned", "estimated", "aligned"]
    timed = {0: (1.0, 1.2, 0.3), 1: (2.0, 2.2, 0.99), 2: (3.0, 3.2, 0.9), 3: (4.0, 4.2, 1.0), 5: (6.0, 6.3, 0.5)}
    heard_at = {0: 1.0 + AGREED_S - 0.01, 1: 2.0 + AGREED_S + 0.05, 2: 3.9}
    fixed = {5: (6.1, 6.3, 0.42)}
    got = _confidences(source, timed, heard_at, fixed)
    # heard and aligned agree (whatever the token probability); apart; the heard time won; aligned
    # only; placed from its neighbours; kept from the previous revision
    assert got == [CONFIDENCE["agreed"], CONFIDENCE["one timing"], CONFIDENCE["one timing"],
                   CONFIDENCE["one timing"], 0.0, 0.42]


def test_review_flag_set_by_the_aligner_overrides_the_threshold_and_reads_back():
    from app.audio.types import REVIEW_BELOW, Line, LyricsTiming, Word

    sure = Line("a b", 1.0, 2.0, [Word("a", 1.0, 1.5, 0.88), Word("b", 1.5, 2.0, 0.0)], review=True)
    plain = Line("c d", 3.0, 4.0, [Word("c", 3.0, 3.5, REVIEW_BELOW + 0.1), Word("d", 3.5, 4.0, REVIEW_BELOW + 0.1)])
    assert sure.confidence > REVIEW_BELOW and sure.needs_review and not plain.needs_review
    back = LyricsTiming.from_dict(LyricsTiming("en", [sure, plain]).to_dict())
    assert [line.needs_review for line in back.lines] == [True, False]
    assert back.quality()["lines_flagged"] == 1


def test_match_words_pairs_similar_words_monotonically():
    given = ["where", "did", "we", "go", "when", "was", "the", "moment"]
    heard = ["where", "did", "you", "go", "when", "was", "a", "moments"]
    assert match_words(given, heard) == [0, 1, None, 3, 4, 5, None, 7]


def test_missed_repetition_is_skipped_where_the_recogniser_heard_a_pause():
    chorus = ["i", "feel", "fantastic", "hey"]
    given = ["intro", *chorus, "bridge", *chorus, "end"]
    heard = ["intro", *chorus, "end"]  # the second chorus was not recognised
    # a long pause was heard before "end": the missing words belong there, not before the chorus
    pauses = [0.0, 0.1, 0.1, 0.1, 0.1, 9.0, 0.0]  # before each heard word, then after the last
    matches = match_words(given, heard, pauses)
    assert matches[1:5] == [1, 2, 3, 4]
    assert matches[6:10] == [None] * 4 and matches[-1] == 5


def _heard(words: list[str], start: float, p: float = 0.9, step: float = 0.5) -> list[dict]:
    return [{"text": w, "start": start + k * step, "end": start + k * step + 0.4, "p": p} for k, w in enumerate(words)]


def test_a_heard_word_decoded_at_near_zero_probability_anchors_nothing():
    from app.audio.known_lyrics import _anchors

    heard = _heard(["hello", "right", "now"], 10.0)
    assert set(_anchors(["hello", "right", "now"], heard, 30.0)) == {0, 1, 2}
    heard[1]["p"] = 0.002  # "Right" decoded with no time of its own at a window's end
    # the pair gone, "now" is a short word paired alone: neither anchors
    assert set(_anchors(["hello", "right", "now"], heard, 30.0)) == {0}


def test_a_heard_word_decoded_with_no_duration_anchors_nothing():
    from app.audio.known_lyrics import _anchors

    given = ["on", "the", "run", "yeah", "well"]
    heard = _heard(given, 145.9)
    assert set(_anchors(given, heard, 300.0)) == {0, 1, 2, 3, 4}
    heard[2]["end"] = heard[2]["start"] = heard[3]["start"]  # "run," put on the next word's onset
    assert 2 not in _anchors(given, heard, 300.0)


def test_a_garbled_repeated_line_pairs_with_its_own_repetitions_before_an_instrumental_outro():
    from app.audio.known_lyrics import _anchors

    line = ["les", "larmes", "zapper", "son", "prénom"]
    given = ["et", "la", "pénombre", *line * 3]
    heard = _heard(["je", "s'appaisse", "au", "prénom"] * 3, 10.0)  # only each line's last word right
    speech = _speech(60.0, [(8.0, 16.5)])  # the singing ends with them: then a 44 s instrumental outro
    prenoms = [k for k, w in enumerate(heard) if w["text"] == "prénom"]
    anchored = {i: heard.index(w) for i, w in _anchors(given, heard, 60.0, speech).items()}
    assert anchored == {7: prenoms[0], 12: prenoms[1], 17: prenoms[2]}
    # counted in clock time, the outro looked like room for a whole missed line: the pairing
    # shifted by one repetition (the first heard "prénom" taken for "pénombre")
    shifted = {i: heard.index(w) for i, w in _anchors(given, heard, 60.0).items()}
    assert shifted == {7: prenoms[1], 12: prenoms[2]}


def test_a_confidently_aligned_word_far_from_its_estimate_is_kept():
    from app.audio.drift import drift_suspects

    times = [(10.0, 10.4), (10.5, 10.9), (13.0, 13.4)]
    estimates = [(10.0, 10.4), (10.5, 10.9), (11.0, 11.4)]  # the third word 2 s from its estimate
    source, line_of = ["aligned"] * 3, [0, 0, 1]
    assert drift_suspects(times, source, estimates, line_of) == {2}
    assert drift_suspects(times, source, estimates, line_of, confident={2}) == set()


def test_an_aligned_word_given_no_time_is_a_suspect():
    from app.audio.drift import drift_suspects

    times = [(10.0, 10.4), (10.5, 10.5), (10.9, 11.3), (11.4, 11.8)]  # the window skipped word 1
    source, line_of = ["aligned", "aligned", "aligned", "heard"], [0, 0, 0, 0]
    assert drift_suspects(times, source, times, line_of) == {1}
    assert drift_suspects([*times[:3], (11.4, 11.4)], source, times, line_of) == {1}  # a heard word stays


def test_a_line_mostly_gone_wrong_is_suspect_whole_but_half_a_line_keeps_its_good_words():
    from app.audio.drift import drift_suspects

    estimates = [(10.0 + 0.4 * k, 10.3 + 0.4 * k) for k in range(4)]
    source, line_of = ["aligned"] * 4, [0, 0, 0, 0]
    two_off = [*estimates[:2], (12.8, 13.1), (13.2, 13.5)]  # the last two words 2 s late
    assert drift_suspects(two_off, source, estimates, line_of) == {2, 3}
    three_off = [estimates[0], (12.4, 12.7), (12.8, 13.1), (13.2, 13.5)]
    assert drift_suspects(three_off, source, estimates, line_of) == {0, 1, 2, 3}


def test_an_anchor_paired_with_the_wrong_repetition_is_told_by_the_window_alignment():
    from app.audio.alignment import wrong_repeats

    texts = ["do", "right", "now", "right", "now", "sometimes"]
    # the heard "right now" (108.26, 108.80) paired with words 1-2; the window put words 3-4 there
    aligned = [(106.3, 106.5), (107.5, 107.8), (107.8, 108.3), (108.36, 108.7), (108.7, 109.0), (110.0, 111.0)]
    anchors = {0: (106.4, 106.6), 1: (108.26, 108.8), 2: (108.8, 109.3), 5: (110.1, 111.0)}
    assert wrong_repeats(aligned, anchors, texts) == {1, 2}
    # a plain disagreement (no other occurrence of the word where it was heard) is left to reconcile
    assert wrong_repeats(aligned, {5: (112.0, 113.0)}, texts) == set()


def test_a_window_that_slipped_onto_a_later_repetition_does_not_overrule_the_heard_word():
    from app.audio.alignment import wrong_repeats
    from app.audio.estimates import word_weights

    texts = ["les", "larmes", "jveux", "zapper", "son", "prenom", "les", "larmes", "des"]
    weights = word_weights(texts)
    anchors = {7: (77.4, 77.7)}  # the second "larmes", heard at 77.4 s
    # the window put the first "larmes" at 77.4 s and piled the five words after it (2.2 s of
    # singing) into the 0.55 s before the second: it slipped, the heard word stays
    slipped = [(74.5, 74.8), (77.4, 77.6), (77.6, 77.7), (77.7, 77.7), (77.7, 77.7), (77.7, 77.7),
               (77.7, 77.9), (77.95, 78.2), (78.2, 78.4)]
    assert wrong_repeats(slipped, anchors, texts, weights=weights) == set()
    # the same window with room for those words: the heard word was the wrong repetition
    room = [(72.0, 72.3), (77.4, 77.6), (77.7, 78.1), (78.2, 78.6), (78.7, 78.9), (79.0, 79.5), (79.6, 79.8),
            (79.9, 80.3), (80.4, 80.6)]
    assert wrong_repeats(room, anchors, texts, weights=weights) == {7}
    assert wrong_repeats(slipped, anchors, texts) == {7}  # without weights: the window is believed


def test_an_occurrence_the_window_piled_does_not_overrule_the_heard_word():
    from app.audio.alignment import wrong_repeats
    from app.audio.drift import PILED_S
    from app.audio.estimates import word_weights

    # "prénom les larmes des larmes et la haine les": the second "les" heard at 133.22 s; the
    # window skipped the first "les" and piled it on 132.98 s with the words after it
    texts = ["prenom", "les", "larmes", "des", "larmes", "et", "la", "haine", "les"]
    weights = word_weights(texts)
    anchors = {8: (133.22, 133.82)}
    window = [(132.14, 132.98), (132.98, 132.98), (132.98, 132.98), (132.98, 134.02), (134.02, 134.24),
              (134.24, 134.24), (134.24, 134.38), (134.38, 134.38), (134.38, 134.38)]
    assert wrong_repeats(window, anchors, texts, weights=weights, piled=PILED_S) == set()
    # the same occurrence given a time of its own by the window: the heard word gives way
    timed = [(131.9, 132.9), (132.98, 133.3), *window[2:]]
    assert wrong_repeats(timed, anchors, texts, weights=weights, piled=PILED_S) == {8}
    assert wrong_repeats(window, anchors, texts, weights=weights) == {8}  # piled words counted


def test_kept_words_that_leave_the_words_between_them_no_time_are_told():
    from app.audio.alignment import crowded

    # "la haine les larmes des larmes et": words 1 and 6 kept 0.6 s apart, with 4 words (18
    # letters + 4: 1.76 s of singing) between them: one of the two is a wrong repetition
    weights = [3, 6, 4, 7, 4, 7, 3]
    kept = {0: (61.3, 61.5), 1: (61.5, 62.0), 6: (62.1, 62.3)}
    assert crowded(kept, weights) == {1, 6}
    # the same words with room for them (sung fast: 43% of what they need) are left alone
    assert crowded({0: (61.3, 61.5), 1: (61.5, 62.0), 6: (62.5, 62.7)}, weights) == set()
    # neighbours with nothing between them are never crowded
    assert crowded({0: (1.0, 1.0), 1: (1.0, 1.0)}, weights) == set()


def test_a_line_start_the_window_stretched_back_over_the_pause_is_found():
    from app.audio.known_lyrics import _stretched_line_starts

    line_of, weights = [0, 0, 1, 1, 2, 2], [4, 5, 2, 8, 2, 8]
    timed = {0: (1.0, 1.3, 0.9), 1: (1.3, 1.8, 0.9), 2: (2.0, 3.6, 0.5), 3: (3.6, 4.0, 0.9),
             4: (5.0, 5.2, 0.5), 5: (5.2, 7.0, 0.9)}
    source = ["aligned"] * 6
    # word 2 ("A", 2 weights) held 1.6 s at its line's start; word 5 is long but not a line start
    assert _stretched_line_starts(source, set(), timed, line_of, weights) == {2}
    assert _stretched_line_starts(source, {2}, timed, line_of, weights) == set()  # an anchor: reconcile's
    assert _stretched_line_starts(["heard"] * 6, set(), timed, line_of, weights) == set()


def test_a_line_is_flagged_by_its_mean_or_by_three_drifted_words():
    from app.audio.known_lyrics import CONFIDENCE, _needs_review

    agreed, one, again = CONFIDENCE["agreed"], CONFIDENCE["one timing"], CONFIDENCE["aligned again"]
    assert _needs_review([0.0, one, one, one])  # mean 0.69: one placed word among three single timings
    assert not _needs_review([0.0, agreed, agreed, agreed])
    # a long line keeps a high mean with three drifted words in it: flagged all the same
    long_line = [agreed] * 9 + [again, again, 0.0]
    assert sum(long_line) / len(long_line) > 0.7 and _needs_review(long_line)
    assert not _needs_review([agreed] * 10 + [again, 0.0])


def test_trusted_anchors_drop_isolated_short_words():
    given, heard = ["i", "x", "you", "y", "fantastic"], ["i", "q", "you", "r", "fantastic"]
    assert trusted_anchors([0, None, 2, None, 4], given, heard) == [None, None, None, None, 4]


def test_trusted_anchors_drop_runs_of_repeated_tokens_only():
    given = ["da", "da", "da", "x", "oh", "my", "love", "la", "la"]
    heard = ["da", "da", "da", "q", "oh", "my", "love", "la", "la"]
    # "da da da" alone could be any repetition; "la la" joined to "oh my love" is placed by it
    matches = [0, 1, 2, None, 4, 5, 6, 7, 8]
    assert trusted_anchors(matches, given, heard) == [None, None, None, None, 4, 5, 6, 7, 8]


def test_trusted_anchors_drop_runs_of_a_repeated_phrase_only():
    given = ["right", "now", "right", "now", "x", "i", "feel", "fantastic", "right", "now"]
    heard = ["right", "now", "right", "now", "q", "i", "feel", "fantastic", "right", "now"]
    # "right now right now" alone could be any of its repetitions; a single "right now" after a
    # distinctive word is placed by it
    matches = [0, 1, 2, 3, None, 5, 6, 7, 8, 9]
    assert trusted_anchors(matches, given, heard) == [None] * 5 + [5, 6, 7, 8, 9]


def test_trusted_anchors_drop_a_scat_run_whose_only_other_word_was_misheard():
    # "ba da da dam da da / da da dam da dam da / das ist": seven "da"s heard where the line before
    # is sung paired with the second line and "das" (heard "da", similarity 0.8): no word of the
    # run was heard as written but the scat itself, so it could be any of its repetitions
    given = ["da", "da", "dam", "da", "dam", "da", "das", "ist"]
    heard = ["da", "da", "da", "da", "da", "da", "da", "zwei"]
    matches = [0, 1, 2, 3, 4, 5, 6, None]
    assert trusted_anchors(matches, given, heard) == [None] * 8
    # "das" heard as written places the run
    heard_das = [*heard[:6], "das", "zwei"]
    assert trusted_anchors(matches, given, heard_das) == [0, 1, 2, 3, 4, 5, 6, None]


def test_speech_map_time_conversions():
    speech = _speech(10.0, [(1.0, 2.0), (5.0, 6.0)])
    assert speech.is_speech(1.5) and not speech.is_speech(3.0)
    assert abs(speech.speech_time(5.5) - 1.5) < 0.05
    assert abs(speech.time_at_speech(0.5) - 1.5) < 0.05
    in_pause = speech.speech_time(3.0)
    assert abs(speech.time_at_speech(in_pause) - 2.0) < 0.05  # earliest: the pause start
    assert abs(speech.time_at_speech(in_pause, latest=True) - 5.0) < 0.05  # latest: the pause end
    assert abs(speech.next_onset(2.5, 9.0) - 5.0) < 0.05
    assert speech.next_onset(2.5, 4.0) is None


def test_unanchored_line_start_stays_with_its_line_not_after_the_pause():
    # line 0: words 0-1 (anchored); line 1: words 2 (unanchored) and 3 (anchored at 20 s)
    speech = _speech(30.0, [(1.0, 3.0), (19.0, 22.0)])
    anchors = {0: (1.0, 1.5), 1: (1.5, 2.5), 3: (20.0, 20.5)}
    times = estimate_times([4, 4, 4, 4], [0, 0, 1, 1], anchors, speech)
    assert 19.0 <= times[2][0] < 20.0
    assert times[0] == anchors[0] and times[3] == anchors[3]


def test_estimates_without_anchors_cover_the_speech():
    speech = _speech(20.0, [(2.0, 6.0), (10.0, 14.0)])
    times = estimate_times([1] * 8, [0] * 4 + [1] * 4, {}, speech)
    starts = [s for s, _ in times]
    assert starts == sorted(starts) and 1.9 <= starts[0] and starts[-1] < 14.0
    assert all(speech.is_speech(s + 0.01) for s in starts)


def test_plan_windows_respects_length_and_pauses():
    spans = [(0.0, 3.0), (3.5, 8.0), (8.5, 20.0), (21.0, 29.5), (40.0, 45.0), (45.5, 47.0)]
    windows = plan_windows(spans, duration=60.0, max_len=29.0, pad=1.0)
    assert [(a, b) for _, _, a, b in windows] == [(0, 3), (3, 4), (4, 6)]
    for t0, t1, _, _ in windows:
        assert 0.0 <= t0 < t1 <= 60.0 and t1 - t0 <= 29.0


def test_reconcile_prefers_anchor_when_alignment_disagrees():
    speech = _speech(20.0, [(0.0, 20.0)])
    aligned = [(1.0, 1.4), (9.0, 9.5), (2.0, 2.4), (3.0, 3.5)]
    anchors = {0: (1.1, 1.4), 1: (1.5, 1.9), 3: (3.05, 3.5)}
    times, source = reconcile(aligned, anchors, [3, 3, 3, 3], [0, 0, 0, 0], speech)
    assert source == ["aligned", "heard", "aligned", "aligned"]
    assert times[1] == (1.5, 1.9) and times[0] == pytest.approx((1.05, 1.4))  # aligned and heard averaged


def test_reconcile_prefers_a_later_aligned_onset_over_a_heard_word_stretched_into_the_pause():
    speech = _speech(20.0, [(0.0, 20.0)])
    # word 1 heard from 2.0 s (over the pause) to 3.4 s; the window aligned it at 2.9-3.3 s
    aligned = [(1.0, 1.4), (2.9, 3.3), (3.4, 3.8), (5.0, 5.02)]
    anchors = {0: (1.0, 1.4), 1: (2.0, 3.4), 2: (3.4, 3.8), 3: (4.0, 4.8)}
    times, source = reconcile(aligned, anchors, [3, 3, 3, 3], [0, 0, 0, 0], speech)
    assert times[1] == (2.9, 3.3) and source[1] == "aligned"
    # a later aligned word squeezed to nothing is a window that lost its place: the anchor stays
    assert times[3] == (4.0, 4.8) and source[3] == "heard"


def test_reconcile_keeps_order_when_an_aligned_word_runs_past_the_next_anchor():
    speech = _speech(20.0, [(0.0, 20.0)])
    # word 1 aligned from 2.0 s to 6.0 s, past word 4's heard onset (4.0 s); words 2-3 aligned
    # after it (the window drifted) are placed again between word 1 and word 4
    aligned = [(1.0, 1.4), (2.0, 6.0), (6.0, 6.3), (6.3, 6.6), (6.6, 6.6)]
    anchors = {0: (1.0, 1.4), 4: (4.0, 4.4)}
    times, source = reconcile(aligned, anchors, [3] * 5, [0] * 5, speech)
    assert source[:2] == ["aligned", "aligned"] and source[2:4] == ["estimated", "estimated"]
    starts = [s for s, _ in times]
    assert starts == sorted(starts) and times[4] == (4.0, 4.4), times
    # word 1 is cut back to give words 2-3 the time they need (0.24 s each) before word 4: held
    # on to the next anchored onset, it left them none (both were put at 4.0 s, with no length)
    assert times[1] == (2.0, 3.52)
    assert times[2][0] == 3.52 and abs(times[3][0] - 3.76) < 0.03 and times[3][1] == 4.0


def test_snap_moves_onsets_out_of_silence():
    speech = _speech(10.0, [(2.0, 3.0)])
    (start, end), (s2, e2) = snap_to_speech([(1.2, 2.5), (2.2, 4.0)], speech)
    assert abs(start - 2.0) < 0.05 and end == 2.5
    assert s2 == 2.2 and abs(e2 - 3.0) < 0.05
    # a word placed wholly in a pause moves onto the voice after it, before the next word's onset
    (start, end), nxt = snap_to_speech([(4.0, 4.3), (6.0, 6.4)], _speech(10.0, [(2.0, 3.0), (5.5, 7.0)]))
    assert abs(start - 5.5) < 0.05 and abs(end - start - 0.3) < 0.05 and nxt == (6.0, 6.4)
    # but not past the next word's onset, nor more than max_shift seconds
    assert snap_to_speech([(4.0, 4.3), (5.0, 5.4)], _speech(10.0, [(5.5, 7.0)]))[0] == (4.0, 4.3)
    assert snap_to_speech([(1.0, 1.3)], _speech(10.0, [(5.5, 7.0)]))[0] == (1.0, 1.3)


def test_a_line_end_holds_its_note_until_the_voice_stops():
    # "love" aligned 10.0-10.4 s, but the voice holds it to 13.0 s; the next line starts at 15.0 s
    speech = _speech(20.0, [(9.0, 13.0), (15.0, 16.0)])
    times = [(9.2, 10.0), (10.0, 10.4), (15.0, 15.5)]
    (_, mid_end), (start, end), nxt = voiced_ends(times, speech)
    assert mid_end == 10.0  # a word followed by the next word in the same stretch keeps its end
    assert start == 10.0 and abs(end - 13.0) < 0.05
    assert nxt[0] == 15.0 and abs(nxt[1] - 16.0) < 0.05  # the song's last word holds its note too


def test_a_word_does_not_run_on_over_an_instrumental_break():
    # "home" sung 2.0-4.0 s, then 8 s of instrumental; placed up to the next word's onset at 12.0 s
    speech = _speech(20.0, [(2.0, 4.0), (12.0, 13.0)])
    (start, end), _ = voiced_ends([(2.1, 12.0), (12.0, 12.5)], speech)
    assert start == 2.1 and abs(end - 4.0) < 0.05
    # a breath shorter than the break is part of the word
    speech = _speech(20.0, [(2.0, 4.0), (4.5, 6.0), (12.0, 13.0)])
    assert abs(voiced_ends([(2.1, 6.0), (12.0, 12.5)], speech)[0][1] - 6.0) < 0.05


def test_voiced_ends_leave_kept_words_and_the_next_onset_alone():
    speech = _speech(20.0, [(1.0, 9.0)])
    times = [(1.0, 2.0), (5.0, 5.5)]
    assert voiced_ends(times, speech, keep={0, 1}) == times
    (_, first_end), (_, last_end) = voiced_ends(times, speech)
    assert first_end == 2.0  # the voice runs on into the next word: not extended past it
    assert abs(last_end - 9.0) < 0.05


def test_rate_consistent_drops_a_passage_squeezed_into_a_short_pause():
    # words 0-4 and 10-14 sung at 0-6 s; words 40-42 (a repeated phrase) wrongly paired with what
    # was sung at 6-7 s: 25 words would have to fit in 0.2 s; words 43-50 really sung at 30-34 s
    anchors = {i: (0.4 * i, 0.4 * i + 0.3) for i in [*range(5), *range(10, 15)]}
    anchors |= {i: (6.1 + 0.3 * (i - 40), 6.3 + 0.3 * (i - 40)) for i in range(40, 43)}
    anchors |= {i: (30.0 + 0.5 * (i - 43), 30.4 + 0.5 * (i - 43)) for i in range(43, 51)}
    assert rate_consistent(anchors) == set(anchors) - {40, 41, 42}


def test_line_outliers_finds_words_cut_off_from_their_line():
    line_of = [0, 0, 0, 0, 1, 1, 1]
    starts = {0: 6.75, 1: 11.3, 2: 11.6, 3: 12.0, 4: 14.0, 5: 14.4, 6: 14.9}
    assert line_outliers(starts, line_of) == {0}
    assert line_outliers({i: t for i, t in starts.items() if i}, line_of) == set()


def test_monotonic_orders_onsets_and_clips_overlaps():
    from app.audio.alignment import monotonic

    times = monotonic([(1.0, 1.5), (0.9, 1.2), (2.0, 1.8), (2.5, 3.0)])
    assert [s for s, _ in times] == sorted(s for s, _ in times)
    assert all(e >= s for s, e in times)
    assert all(times[i][1] <= times[i + 1][0] for i in range(len(times) - 1))
    assert times[1][0] == 1.0 and times[2] == (2.0, 2.0)


def test_an_onset_on_the_fading_previous_note_moves_past_the_pause():
    # held note until 2.3 s (the detector's smoothing calls it voice until 2.5 s), quiet to 2.8 s
    frames = np.zeros(int(round(5.0 / VAD_FRAME_S)), dtype=bool)
    loud = frames.copy()
    frames[int(1.0 / VAD_FRAME_S) : int(2.5 / VAD_FRAME_S)] = True
    frames[int(2.8 / VAD_FRAME_S) :] = True
    loud[int(1.0 / VAD_FRAME_S) : int(2.3 / VAD_FRAME_S)] = True
    loud[int(2.8 / VAD_FRAME_S) :] = True
    speech = SpeechMap(frames, loud)
    times = [(1.0, 2.1), (2.1, 3.2), (3.3, 3.6)]  # word 2 put on the tail of word 1, sung after the pause
    out = skip_leading_pauses(times, speech)
    assert out[0] == (1.0, 2.1) and out[2] == (3.3, 3.6)
    assert abs(out[1][0] - 2.8) <= VAD_FRAME_S and out[1][1] == 3.2
    # a short word sung before the pause (it ends there) keeps its onset
    assert skip_leading_pauses([(1.0, 2.0), (2.0, 2.3), (2.8, 3.2)], speech)[1] == (2.0, 2.3)
    # a quiet stretch the voice detector hears (a soft syllable, a backing voice) is no pause
    voiced = SpeechMap(speech.speech | _speech(5.0, [(2.3, 2.8)]).speech, loud=speech.loud)
    assert skip_leading_pauses(times, voiced)[1] == times[1]


def test_a_word_after_the_last_singing_does_not_jump_to_noise_at_the_end():
    # singing ends at 2.0 s; a click at 19.0 s; the last word, estimated right after the singing
    # and running on to the end, keeps its onset instead of moving 17 s to the click
    speech = _speech(20.0, [(0.0, 2.0), (19.0, 19.2)])
    times = [(1.0, 1.9), (1.95, 19.5)]
    assert skip_leading_pauses(times, speech)[1][0] == 1.95
    # a pause of a breath is still skipped
    assert abs(skip_leading_pauses([(1.0, 1.9), (1.95, 5.0)], _speech(20.0, [(0.0, 2.0), (2.5, 4.0)]))[1][0]
               - 2.5) <= VAD_FRAME_S


def test_a_line_is_not_squeezed_into_a_short_stretch_when_a_fitting_one_follows():
    # between two anchors: a 0.4 s scrap of voice, then a 1.6 s sung stretch that fits the six words
    speech = _speech(20.0, [(0.0, 1.0), (5.0, 5.4), (10.0, 11.6), (15.0, 16.0)])
    anchors = {0: (0.0, 1.0), 7: (15.0, 15.5)}
    weights = [4] + [3] * 6 + [4]
    times = estimate_times(weights, [0, 1, 1, 1, 1, 1, 1, 2], anchors, speech)
    starts = [s for s, _ in times[1:7]]
    assert all(10.0 - VAD_FRAME_S <= s < 11.6 for s in starts), starts


def test_words_with_far_too_little_singing_go_to_the_faint_voice():
    # a quiet ad-lib line (faint, 6-9 s) between two loud lines: the loud map has no room for it
    frames = np.zeros(int(round(20.0 / VAD_FRAME_S)), dtype=bool)
    faint = frames.copy()
    for a, b in [(1.0, 2.0), (15.0, 17.0)]:
        frames[int(a / VAD_FRAME_S) : int(b / VAD_FRAME_S)] = True
    faint[int(6.0 / VAD_FRAME_S) : int(9.0 / VAD_FRAME_S)] = True
    speech = SpeechMap(frames, None, faint)
    anchors = {0: (1.0, 2.0), 5: (15.0, 15.5)}
    times = estimate_times([5, 5, 5, 5, 5, 5], [0, 1, 1, 1, 1, 2], anchors, speech)
    assert all(6.0 - VAD_FRAME_S <= s < 9.0 for s, _ in times[1:5]), times
    # without the faint map they have nowhere to go but clock time
    plain = estimate_times([5, 5, 5, 5, 5, 5], [0, 1, 1, 1, 1, 2], anchors, SpeechMap(frames))
    assert not all(6.0 <= s < 9.0 for s, _ in plain[1:5])


def test_decoding_loops_are_told_from_repetitive_lyrics():
    from app.audio.heard import _looped

    assert _looped("Right now, " * 9)
    assert not _looped("Right now, right now, right now")
    assert not _looped("I feel fantastic and I never felt as good as how I do right now")
    assert not _looped("la la la la la la la la")


def test_a_loop_spread_over_segments_is_dropped_but_a_repeating_chorus_is_not():
    from types import SimpleNamespace

    from app.audio.heard import _marked_loops

    def seg(text: str, ratio: float) -> SimpleNamespace:
        return SimpleNamespace(text=" " + text, compression_ratio=ratio)

    # the first pass over veranderung with 3.7 s of silence before it: one window's decode writes
    # one line six times over 25 s of other words; the next window, conditioned on it, once more
    loop = "Wir leben die Veränderungen für Veränderungen."
    segments = [seg(loop, 1.52)] + [seg(loop, 6.23)] * 6 + [seg(loop.lower().rstrip("."), 1.14)]
    segments.append(seg("Das ist die Zeit für Veränderungen.", 1.14))
    assert [looped for _, looped in _marked_loops(segments)] == [False] + [True] * 7 + [False]
    # a chorus window has Whisper's ratio above 2.4 too, but no segment repeats the one before it
    chorus = ["I feel fantastic and I never felt as good as how I do right now",
              "It's never maybe when I think of how I felt that day when I felt the way that I do right now",
              "Right now, I feel fantastic and I never felt as good as how I do right now",
              "It's never maybe when I think of how I felt that day when I felt the way that I do right now"]
    assert not any(looped for _, looped in _marked_loops([seg(t, 2.7) for t in chorus]))
    # the same line twice in a window that does not loop is sung twice
    assert not any(looped for _, looped in _marked_loops([seg("Right now", 1.3), seg("Right now", 1.3)]))


def test_a_decoding_loop_keeps_the_words_decoded_before_it():
    from types import SimpleNamespace

    from app.audio.heard import _segment_words

    def segment(timed: list[tuple[str, float, float]]) -> SimpleNamespace:
        words = [SimpleNamespace(word=" " + w, start=a, end=b, probability=0.9) for w, a, b in timed]
        return SimpleNamespace(text="".join(w.word for w in words), words=words)

    sung = [("j'veux", 64.6, 64.8), ("zapper", 64.8, 65.1), ("son", 65.1, 65.3), ("prénom", 65.3, 65.7),
            ("les", 65.8, 66.1), ("larmes", 66.2, 66.5)]
    loop = [(w, 66.6 + 0.2 * k, 66.6 + 0.2 * k + 0.15) for k, w in enumerate(["et", "les", "larmes"] * 2)]
    loop += [(w, 67.8, 67.8) for w in ["et", "les", "larmes"] * 8]  # the decoder repeats with no audio left
    words = _segment_words(segment(sung + loop))
    # the text before the loop and the loop's start (timed) are kept; the collapsed repeats are not
    assert [w["text"] for w in words] == [w for w, _, _ in sung + loop[:6]]
    assert words[0] == {"text": "j'veux", "start": 64.6, "end": 64.8, "p": 0.9}
    # a segment that is not a loop keeps every word, short ones too
    assert len(_segment_words(segment([*sung, ("oh", 66.6, 66.6)]))) == 7


def test_elisions_written_as_two_words_are_joined():
    from app.audio.heard import join_elisions

    heard = [
        {"text": "j", "start": 1.0, "end": 1.1, "p": 0.9},
        {"text": "'ai", "start": 1.1, "end": 1.4, "p": 0.7},
        {"text": "mal,", "start": 1.5, "end": 1.9, "p": 0.8},
        {"text": "'cause", "start": 3.0, "end": 3.3, "p": 0.8},  # after a comma and a pause: its own word
    ]
    out = join_elisions(heard)
    assert [w["text"] for w in out] == ["j'ai", "mal,", "'cause"]
    assert (out[0]["start"], out[0]["end"], out[0]["p"]) == (1.0, 1.4, 0.7)


def test_a_long_unheard_stretch_is_cut_at_pauses_into_short_clips():
    from app.audio.heard import _split_stretch

    speech = _speech(60.0, [(10.0, 16.0), (16.5, 22.0), (23.0, 30.0), (31.0, 45.0)])
    pieces = _split_stretch((10.0, 45.0), speech, max_len=15.0)
    assert pieces[0][0] == pytest.approx(10.0, abs=VAD_FRAME_S) and pieces[-1][1] == pytest.approx(45.0, abs=0.05)
    assert all(b - a <= 15.0 for a, b in pieces) and len(pieces) == 3
    assert all(not speech.is_speech((b1 + a2) / 2) for (_, b1), (a2, _) in zip(pieces, pieces[1:], strict=False))
    assert _split_stretch((10.0, 20.0), speech, max_len=15.0) == [(10.0, 20.0)]


def test_a_smeared_heard_word_does_not_hide_the_singing_after_it():
    from app.audio.heard import _unheard_speech

    speech = _speech(20.0, [(2.0, 10.5)])
    heard = [
        {"text": "you're", "start": 2.0, "end": 9.5, "p": 0.5},  # smeared over the words it skipped
        {"text": "gay", "start": 9.6, "end": 10.0, "p": 0.5},
    ]
    gaps = _unheard_speech(heard, speech)
    assert len(gaps) == 1 and gaps[0][0] == pytest.approx(4.5) and gaps[0][1] == pytest.approx(9.1)


def test_work_in_lanes_keeps_order_and_stops_when_the_main_lane_fails():
    import threading
    import time

    from app.audio.heard import in_lanes

    class Model:
        parallel = 2

    seen: list[tuple[int, bool, str]] = []

    def work(item: int, main: bool) -> int:
        seen.append((item, main, threading.current_thread().name))
        return item * item

    assert in_lanes(Model(), list(range(7)), work) == [k * k for k in range(7)]
    assert {item for item, main, _ in seen if main} == {0, 2, 4, 6}
    assert len({name for _, main, name in seen if not main}) == 1

    started: list[int] = []

    def failing(item: int, main: bool) -> int:
        started.append(item)
        if main and item == 2:
            raise RuntimeError("canceled")
        time.sleep(0.05)
        return item

    with pytest.raises(RuntimeError, match="canceled"):
        in_lanes(Model(), list(range(40)), failing)
    assert len(started) < 10  # the other lane stopped taking items


def test_whisper_cpu_layout():
    from app.audio.whisper_models import cpu_layout

    assert cpu_layout(2) == (1, 2)
    assert cpu_layout(16) == (8, 2)
    assert cpu_layout(16, workers=4) == (4, 4)
    assert cpu_layout(1) == (1, 1)
    assert cpu_layout(8, device="cuda") == (0, 1)


def test_a_stanza_does_not_start_on_the_held_end_of_the_previous_word():
    # "here we go" anchored at 1.0-1.6, its last note held to 3.0; the next stanza (after a blank
    # line) is sung quietly at 8-12 s, then a loud anchored line at 15 s
    frames = np.zeros(int(round(20.0 / VAD_FRAME_S)), dtype=bool)
    faint = frames.copy()
    for a, b in [(1.0, 3.0), (15.0, 17.0)]:
        frames[int(a / VAD_FRAME_S) : int(b / VAD_FRAME_S)] = True
    for a, b in [(8.0, 9.0), (10.0, 12.0)]:
        faint[int(a / VAD_FRAME_S) : int(b / VAD_FRAME_S)] = True
    speech = SpeechMap(frames, None, faint)
    anchors = {2: (1.4, 1.6), 7: (15.0, 15.5)}
    line_of = [0, 0, 0, 1, 1, 2, 2, 3]
    weights = [5, 3, 3, 4, 4, 5, 5, 4]
    breaks = [False, False, False, True, False, False, False, True]
    times = estimate_times(weights, line_of, anchors, speech, breaks=breaks)
    assert all(8.0 - VAD_FRAME_S <= s < 12.0 for s, _ in times[3:7]), times
    # without the stanza break the same words are sung on straight after "go", in the held note
    plain = estimate_times(weights, line_of, anchors, speech)
    assert all(s < 3.0 for s, _ in plain[3:5]), plain


def test_a_line_is_not_sung_into_the_held_note_before_an_instrumental_break():
    # on-the-run: "...seeing you soon" anchored, `soon` held to 6 s, a 9 s break, then the next
    # line (unanchored, 2 s of words) and an anchored line at 18 s
    weights, line_of = [4, 5, 10, 3, 4, 4, 5, 5], [0, 0, 1, 1, 1, 1, 1, 2]
    anchors = {1: (2.0, 2.4), 7: (18.0, 18.5)}
    times = estimate_times(weights, line_of, anchors, _speech(25.0, [(1.0, 6.0), (15.0, 20.0)]))
    assert all(15.0 - VAD_FRAME_S <= s < 18.0 for s, _ in times[2:7]), times
    # the same words inside the anchored line go on in its singing: a phrase is not torn apart
    times = estimate_times(weights, [0] * 7 + [1], anchors, _speech(25.0, [(1.0, 6.0), (15.0, 20.0)]))
    assert all(2.4 <= s < 6.0 for s, _ in times[2:7]), times


def test_a_short_word_after_a_held_note_starts_after_the_pause_a_long_word_keeps_its_stops():
    # a note held to 2.55 s, a pause to 3.0 s; "te" (sung in ~0.24 s) was put at 2.0 s, on the note
    speech = _speech(6.0, [(0.5, 2.55), (3.0, 5.0)])
    times = [(0.5, 2.0), (2.0, 3.3), (3.3, 4.0)]
    weights, line_of = [4, 3, 4], [0, 0, 0]
    out = skip_leading_pauses(times, speech, weights=weights, line_of=line_of)
    assert abs(out[1][0] - 3.0) <= VAD_FRAME_S
    # "que" put on the end of a held "palabras" that goes on 0.7 s after it (te-amo's chorus)
    late = skip_leading_pauses([(0.5, 1.85), (1.85, 3.3), (3.3, 4.0)], speech, weights=weights, line_of=line_of)
    assert abs(late[1][0] - 3.0) <= VAD_FRAME_S
    # a one-frame dip in the held note before the pause is passed over, not taken for the pause
    dipped = _speech(6.0, [(0.5, 2.2), (2.2 + VAD_FRAME_S, 2.55), (3.0, 5.0)])
    out = skip_leading_pauses(times, dipped, weights=weights, line_of=line_of)
    assert abs(out[1][0] - 3.0) <= VAD_FRAME_S
    # without the word lengths the pause is too far after the onset to be skipped
    assert skip_leading_pauses(times, speech)[1] == times[1]
    # a long word ("protectors", ~0.9 s) with a stop 0.55 s in keeps its onset
    assert skip_leading_pauses(times, speech, weights=[4, 11, 4], line_of=line_of)[1] == times[1]
    # so does the last word of a line: the pause after it is the line's end
    assert skip_leading_pauses(times, speech, weights=weights, line_of=[0, 0, 1])[1] == times[1]


def test_a_word_sung_before_a_pause_is_not_squeezed_in_after_it():
    # "best" (~0.4 s) sung from 1.0 s to 1.35 s, a breath, the voice back at 1.6 s and the next
    # word at 1.75 s: moving "best" past the pause would leave it 0.15 s, so it keeps its onset
    speech = _speech(4.0, [(0.2, 1.35), (1.6, 3.0)])
    times = [(0.2, 1.0), (1.0, 1.75), (1.75, 2.5)]
    weights, line_of = [4, 5, 5], [0, 0, 0]
    assert skip_leading_pauses(times, speech, weights=weights, line_of=line_of)[1] == times[1]
    # with room for the word after the pause, it starts there (the voice before was the held note)
    later = [(0.2, 1.0), (1.0, 2.2), (2.3, 2.9)]
    assert abs(skip_leading_pauses(later, speech, weights=weights, line_of=line_of)[1][0] - 1.6) <= VAD_FRAME_S


def test_trusted_anchors_keep_a_long_word_alone_only_when_it_was_heard_or_holds_what_was_heard():
    given = ["x", "jfais", "y", "jamais", "z", "denkt", "w", "lange"]
    heard = ["q", "fais", "r", "javais", "s", "denk", "t", "lange"]
    # an elided pronoun or an ending dropped by the recogniser is the same word; "javais" for
    # "jamais" (one letter changed inside) is another word, and alone it anchors nothing
    matches = [None, 1, None, 3, None, 5, None, 7]
    assert trusted_anchors(matches, given, heard) == [None, 1, None, None, None, 5, None, 7]
    # in a run of pairs the neighbours vouch for it
    assert trusted_anchors([None, None, 2, 3, None, None, None, None], given, heard)[3] == 3


def test_a_kept_word_held_over_the_words_after_it_gives_their_time_back():
    from app.audio.alignment import release_held

    weights = [4.0, 7.0, 6.0, 7.0, 4.0]  # 0.32, 0.56, 0.48, 0.56, 0.32 s
    # word 0 held to 77.4 s, past word 3's onset at 75.5: words 1-2 need 1.04 s before it
    kept = {0: (73.5, 77.4), 3: (75.5, 75.8), 4: (76.0, 76.3)}
    out = release_held(kept, weights)
    assert out[0] == (73.5, pytest.approx(75.5 - 1.04)) and out[3] == kept[3] and out[4] == kept[4]
    # never below what the word needs itself; a word to keep (an earlier revision's) is left alone
    assert release_held({0: (74.5, 77.4), 3: (74.9, 75.2)}, weights)[0] == (74.5, pytest.approx(74.5 + 0.32))
    assert release_held(kept, weights, keep={0})[0] == kept[0]
