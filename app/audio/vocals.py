"""The vocals stem as the lyrics aligner reads it: 16 kHz mono samples and a voice-activity map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.audio.types import Waveform

SAMPLE_RATE = 16000
ENERGY_RANGE_DB = 20.0
FAINT_RANGE_DB = 40.0
"""Faint voice activity: within this range (dB) of the loud frames and 20 dB above the stem's floor."""
VAD_FRAME_S = 512 / 16000
"""Silero VAD resolution: one speech probability per 512 samples at 16 kHz (seconds)."""
REGION_GAP_S = 0.3
"""Pauses shorter than this do not split a sung stretch (estimate placement)."""


@dataclass
class SpeechMap:
    """Where the voice is active: one boolean per frame of VAD_FRAME_S seconds."""

    speech: np.ndarray
    loud: np.ndarray | None = None
    """Frames loud enough to be singing by level alone (no voice-detector smoothing), if known."""
    faint: np.ndarray | None = None
    """Frames too quiet to count as singing but clearly above the stem's silence, if known:
    where the words of a passage find far too little singing, they look for it there."""

    def __post_init__(self) -> None:
        self.speech = np.asarray(self.speech, dtype=bool)
        self.loud = self.speech if self.loud is None else np.asarray(self.loud, dtype=bool)
        self.probs = self.speech  # frame count via len()
        self.cumulative = np.concatenate([[0.0], np.cumsum(self.speech) * VAD_FRAME_S])

    def with_faint(self) -> SpeechMap:
        """This map with the faint frames counted as singing too."""
        return self if self.faint is None else SpeechMap(self.speech | self.faint, self.loud)

    @property
    def duration(self) -> float:
        return len(self.speech) * VAD_FRAME_S

    def _frame(self, t: float) -> int:
        return int(np.clip(t / VAD_FRAME_S, 0, len(self.probs) - 1)) if len(self.probs) else 0

    def is_speech(self, t: float) -> bool:
        return bool(len(self.probs)) and bool(self.speech[self._frame(t)])

    def speech_time(self, t: float) -> float:
        """Seconds of speech between 0 and ``t``."""
        x = np.clip(t / VAD_FRAME_S, 0, len(self.probs))
        return float(np.interp(x, np.arange(len(self.cumulative)), self.cumulative))

    def time_at_speech(self, s: float, latest: bool = False) -> float:
        """Inverse of :meth:`speech_time`: the earliest (or latest) time with ``s`` seconds of
        speech before it. Within a pause the earliest is the pause start, the latest its end."""
        if latest:
            idx = int(np.searchsorted(self.cumulative, s + 1e-9, side="right")) - 1
        else:
            idx = int(np.searchsorted(self.cumulative, s - 1e-9, side="left"))
        return float(np.clip(idx * VAD_FRAME_S, 0.0, self.duration))

    def regions(self, merge_gap: float = 1.0) -> list[tuple[float, float]]:
        """(start, end) of the active stretches, those less than ``merge_gap`` seconds apart merged."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], self.speech.astype(np.int8), [0]])))
        out: list[tuple[float, float]] = []
        for a, b in zip(edges[::2] * VAD_FRAME_S, edges[1::2] * VAD_FRAME_S, strict=True):
            if out and a - out[-1][1] < merge_gap:
                out[-1] = (out[-1][0], float(b))
            else:
                out.append((float(a), float(b)))
        return out

    def run_end(self, t: float) -> float:
        """The end of the sung stretch (pauses under REGION_GAP_S bridged) that ``t`` is in, or
        ``t`` itself when the voice is silent there."""
        if not self.is_speech(t):
            return t
        return next((b for a, b in self.regions(REGION_GAP_S) if a <= t <= b), t)

    def next_onset(self, t: float, limit: float) -> float | None:
        """The first speech frame start in [t, limit), or None."""
        lo, hi = self._frame(t), int(min(limit / VAD_FRAME_S, len(self.probs)))
        hits = np.flatnonzero(self.speech[lo:hi])
        return None if len(hits) == 0 else (lo + int(hits[0])) * VAD_FRAME_S

    def last_offset(self, t: float, limit: float) -> float | None:
        """The end of the last speech frame in (limit, t], or None."""
        lo, hi = int(max(limit / VAD_FRAME_S, 0)), self._frame(t) + 1
        hits = np.flatnonzero(self.speech[lo:hi])
        return None if len(hits) == 0 else (lo + int(hits[-1]) + 1) * VAD_FRAME_S


def to_16k_mono(wf: Waveform) -> np.ndarray:
    """The waveform as float32 mono at 16 kHz (channel mean, FFmpeg resampler, no added delay)."""
    from app.audio.resampling import resample

    mono = wf.mono()[None, :]
    return np.ascontiguousarray(resample(mono, wf.sample_rate, SAMPLE_RATE)[0], dtype=np.float32)


def speech_map(audio: np.ndarray) -> SpeechMap:
    """Voice activity of 16 kHz vocals, per 32 ms frame.

    Silero VAD (bundled with faster-whisper) misses some singing (vocalises, soft or backing
    parts), so a frame also counts as active when its level is within ENERGY_RANGE_DB of the
    stem's loud frames (95th percentile): on a separated vocals stem the instruments are gone.
    """
    from faster_whisper.vad import get_vad_model

    frame = 512
    n = len(audio) // frame + 1
    padded = np.pad(audio, (0, n * frame - len(audio)))
    silero = np.asarray(get_vad_model()(padded), dtype=np.float32).reshape(-1)[:n] >= 0.5
    level = 10 * np.log10((padded.reshape(n, frame) ** 2).mean(axis=1) + 1e-12)
    loud = level >= np.percentile(level, 95) - ENERGY_RANGE_DB
    faint = (level >= np.percentile(level, 95) - FAINT_RANGE_DB) & (level >= np.percentile(level, 10) + 20.0)
    return SpeechMap(loud | silero, loud, faint)
