"""Note pitch metrics: pair estimated notes with reference notes by time overlap, then measure.

Notes are ``(start s, end s, pitch)`` with pitch in (fractional) MIDI numbers. Raw accuracy is the
share of reference notes whose paired estimate is within 50 cents (and within one semitone);
octave-invariant accuracy compares pitch classes (errors folded into -6..6 semitones). Community
UltraStar files are often written one or two octaves off, so the whole-octave shift that most
notes agree on is reported too, and octave errors are the notes off by a different octave.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np

NoteSpan = tuple[float, float, float]


def match_notes(reference: Sequence[NoteSpan], estimated: Sequence[NoteSpan]) -> list[tuple[float, float]]:
    """``(estimated pitch, reference pitch)`` for every reference note that some estimated note
    overlaps in time; the estimate overlapping it longest is taken."""
    ordered = sorted(estimated)
    starts = [n[0] for n in ordered]
    longest = max((n[1] - n[0] for n in ordered), default=0.0)
    pairs = []
    for start, end, ref_pitch in reference:
        best, overlap = None, 0.0
        for k in range(bisect.bisect_left(starts, start - longest), bisect.bisect_left(starts, end)):
            shared = min(end, ordered[k][1]) - max(start, ordered[k][0])
            if shared > overlap:
                best, overlap = ordered[k][2], shared
        if best is not None:
            pairs.append((best, ref_pitch))
    return pairs


def pitch_accuracy(pairs: Sequence[tuple[float, float]], reference_count: int | None = None) -> dict[str, Any]:
    """Accuracy figures of ``(estimated, reference)`` pitch pairs (MIDI numbers), as shares of
    ``reference_count`` (default: the pairs; unpaired reference notes count as misses):

    - ``raw_50c``, ``raw_1st``: within 50 cents, within one semitone;
    - ``octave_invariant_50c``: pitch class within 50 cents;
    - ``octave_shift``: the whole-octave offset (semitones, a multiple of 12) most notes share;
      ``shifted_50c``: accuracy within 50 cents after removing it;
    - ``octave_errors``: notes off by a whole number of octaves (within a semitone), other than
      that shared shift: the tracker (or the file) jumped an octave.
    """
    total = reference_count if reference_count is not None else len(pairs)
    if not pairs or not total:
        return {"notes": total, "paired": 0, "raw_50c": 0.0, "raw_1st": 0.0, "octave_invariant_50c": 0.0,
                "octave_shift": 0, "shifted_50c": 0.0, "octave_errors": 0.0}
    error = np.array([e - r for e, r in pairs], dtype=float)
    folded = np.abs((error + 6.0) % 12.0 - 6.0)
    octaves = np.round(error / 12.0).astype(int)
    shift = int(np.bincount(octaves - octaves.min()).argmax() + octaves.min()) * 12
    shifted = error - shift
    return {
        "notes": total,
        "paired": len(pairs),
        "raw_50c": round(float(np.sum(np.abs(error) <= 0.5)) / total, 4),
        "raw_1st": round(float(np.sum(np.abs(error) <= 1.0)) / total, 4),
        "octave_invariant_50c": round(float(np.sum(folded <= 0.5)) / total, 4),
        "octave_shift": shift,
        "shifted_50c": round(float(np.sum(np.abs(shifted) <= 0.5)) / total, 4),
        "octave_errors": round(float(np.sum((np.abs(shifted) > 1.0) & (folded <= 1.0))) / total, 4),
    }
