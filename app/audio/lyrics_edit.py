"""Lyrics edits: keep the timing of lines that did not change."""

from __future__ import annotations

from difflib import SequenceMatcher

from app.audio.alignment import monotonic
from app.audio.types import Line, LyricsTiming, Word


def keep_unchanged_lines(previous: LyricsTiming, fresh: LyricsTiming) -> tuple[LyricsTiming, int]:
    """``fresh`` (the edited lyrics, just aligned) with every line whose text is unchanged since
    ``previous`` replaced by its previous timing. Returns ``(timing, lines kept)``.

    Lines are paired in order (an edit never moves the lines around it); word times stay
    non-decreasing across the seams between kept and re-aligned lines.
    """
    old_texts = [line.text for line in previous.lines]
    new_texts = [line.text for line in fresh.lines]
    lines = list(fresh.lines)
    kept = 0
    for block in SequenceMatcher(a=old_texts, b=new_texts, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            lines[block.b + k] = previous.lines[block.a + k]
            kept += 1
    times = monotonic([(w.start, w.end) for line in lines for w in line.words])
    out, i = [], 0
    for line in lines:
        words = [Word(w.text, *times[i + j], w.confidence) for j, w in enumerate(line.words)]
        i += len(words)
        out.append(Line(line.text, words[0].start if words else line.start, words[-1].end if words else line.end,
                        words))
    return LyricsTiming(fresh.language, out, dict(fresh.models)), kept
