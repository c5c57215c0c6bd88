from app.audio.metrics import align_sequences, onset_report, word_error_rate


def test_repeated_chorus_pairs_with_the_right_repetition():
    ref = ["la", "la", "hey", "x", "la", "la", "hey"]
    pred = ["la", "la", "hey", "la", "la", "hey"]  # "x" missed
    pairs = align_sequences(pred, ref)
    assert (3, 4) in pairs and (5, 6) in pairs


def test_onset_report_counts_misses():
    ref = [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)]
    pred = [("a", 1.1), ("b", 2.5), ("c", 5.0)]
    rep = onset_report(pred, ref)
    assert rep.paired == 3
    assert rep.within_0_3 == 0.25 and rep.within_1_0 == 0.5
    assert abs(rep.mean_abs - (0.1 + 0.5 + 2.0) / 3) < 1e-9


def test_wer():
    assert word_error_rate(["Hello,", "world"], ["hello", "world!"]) == 0.0
    assert word_error_rate(["hello"], ["hello", "world"]) == 0.5
