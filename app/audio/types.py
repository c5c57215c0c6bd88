"""Typed values that flow through the audio domain.

Times are seconds (float), sample rates Hz, waveforms float32 arrays shaped
``(channels, frames)`` in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ProgressCallback = Callable[[float, str], None]
"""``on_progress(fraction, stage)``: fraction in 0..1 of the current call. May raise JobCanceled."""


class AudioError(Exception):
    """Base class of the domain's errors."""


class AudioDecodeError(AudioError):
    """The bytes are not audio we can decode (or the stream is empty or truncated)."""


class ModelUnavailable(AudioError):
    """A model was asked for whose weights are not installed on this host."""


class JobCanceled(AudioError):
    """Raised by a progress callback to stop work cooperatively."""


def no_progress(fraction: float, stage: str) -> None:
    """The default progress callback: ignores everything."""


@dataclass
class Waveform:
    """Audio samples, float32, shape ``(channels, frames)``, at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / float(self.sample_rate)

    def mono(self) -> np.ndarray:
        """The channel mean as a 1-D float32 array."""
        return self.samples.mean(axis=0).astype(np.float32)


@dataclass
class AudioInfo:
    """What a probe of a file found: duration in seconds, rate in Hz, channel count, codec name."""

    duration_s: float
    sample_rate: int
    channels: int
    codec: str
    format: str


@dataclass
class Stems:
    """A two-stem separation result, both sample-aligned with the input waveform."""

    vocals: Waveform
    instrumental: Waveform
    model: str
    load_seconds: float = 0.0
    """Seconds spent loading the model in this call (0.0 when it was already cached)."""
    compute_seconds: float = 0.0
    """Seconds spent separating, excluding the model load."""
    others: dict[str, Waveform] = field(default_factory=dict)
    """The model's other sources (drums, bass, other, ...) when all stems were asked for, else empty."""


@dataclass
class Word:
    text: str
    start: float
    end: float
    confidence: float = 1.0


@dataclass
class Line:
    text: str
    start: float
    end: float
    words: list[Word] = field(default_factory=list)
    review: bool | None = None
    """Whether the line needs a human look, as the aligner decided it (its confidence scale has
    its own threshold); None: the mean word confidence is below REVIEW_BELOW."""

    @property
    def confidence(self) -> float:
        """Mean word confidence (0..1); 0 for a line without words."""
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else 0.0

    @property
    def needs_review(self) -> bool:
        return self.review if self.review is not None else self.confidence < REVIEW_BELOW


# Lines of a transcription (word confidence = the recogniser's probability) whose mean word
# confidence is below this are flagged for a human look; known-lyrics alignment flags its lines
# itself (transcribe.REVIEW_BELOW_ALIGNED).
REVIEW_BELOW = 0.25


@dataclass
class LyricsTiming:
    """The timing document every karaoke export is rendered from."""

    language: str
    lines: list[Line]
    models: dict[str, str] = field(default_factory=dict)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    """Sung passages the lyrics do not contain: ``{"start", "end", "heard"}`` (what the
    recogniser heard there), e.g. a verse missing from the given lyrics."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "models": dict(self.models),
            "unmatched": [dict(u) for u in self.unmatched],
            "lines": [
                {
                    "start": round(line.start, 3),
                    "end": round(line.end, 3),
                    "text": line.text,
                    "confidence": round(line.confidence, 3),
                    "needs_review": line.needs_review,
                    "words": [
                        {
                            "text": w.text,
                            "start": round(w.start, 3),
                            "end": round(w.end, 3),
                            "confidence": round(w.confidence, 3),
                        }
                        for w in line.words
                    ],
                }
                for line in self.lines
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LyricsTiming:
        lines = [
            Line(
                text=ld["text"],
                start=float(ld["start"]),
                end=float(ld["end"]),
                words=[Word(**w) for w in ld.get("words", [])],
                review=ld.get("needs_review"),
            )
            for ld in data["lines"]
        ]
        return cls(language=data.get("language", ""), lines=lines, models=dict(data.get("models", {})),
                   unmatched=[dict(u) for u in data.get("unmatched", [])])

    @property
    def words(self) -> list[Word]:
        return [w for line in self.lines for w in line.words]

    def quality(self) -> dict[str, Any]:
        """QA summary: words timed, lines flagged for review (and their share), mean word confidence,
        words placed by interpolation (confidence 0), sung passages missing from the lyrics."""
        words = self.words
        flagged = sum(1 for line in self.lines if line.needs_review)
        confidence = [round(w.confidence, 3) for w in words]  # as the JSON stores it: same summary after a reload
        return {
            "words": len(words),
            "words_timed": sum(1 for w in words if w.end >= w.start >= 0),
            "words_interpolated": sum(1 for c in confidence if c <= 0),
            "lines": len(self.lines),
            "lines_flagged": flagged,
            "share_flagged": round(flagged / len(self.lines), 4) if self.lines else 0.0,
            "mean_confidence": round(sum(confidence) / len(words), 4) if words else 0.0,
            "unmatched_passages": len(self.unmatched),
        }


__all__ = [
    "AudioDecodeError",
    "AudioError",
    "AudioInfo",
    "JobCanceled",
    "Line",
    "LyricsTiming",
    "ModelUnavailable",
    "ProgressCallback",
    "Stems",
    "Waveform",
    "Word",
    "no_progress",
]
