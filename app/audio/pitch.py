"""Pitch of the sung melody: the f0 contour of a vocals stem (probabilistic YIN), one or more notes
per timed word, the key and the tempo.

Times are seconds, frequencies Hz, pitches MIDI note numbers (60 = C4, 69 = A4 = 440 Hz). The
contour is computed at 16 kHz mono with 64 ms frames every 20 ms and 20-cent pitch bins, which
keeps pYIN at about 0.02-0.03x real time on one CPU core (a 3-minute song in about 5 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.audio.types import LyricsTiming, ProgressCallback, Waveform, no_progress

SAMPLE_RATE = 16000
FRAME_LENGTH = 1024  # 64 ms: two periods of the lowest pitch fit in a frame
HOP_LENGTH = 320  # 20 ms
FMIN_HZ = 65.41  # C2, below a bass's lowest sung note
FMAX_HZ = 1046.5  # C6, a soprano's high C
RESOLUTION = 0.2  # pitch bins of 20 cents: the Viterbi cost grows with the square of the bin count
CHUNK_SECONDS = 30.0  # pYIN runs per chunk: progress, cancellation, bounded memory
CHUNK_CONTEXT_SECONDS = 1.0  # extra audio each side of a chunk so its Viterbi path settles
MIN_NOTE_SECONDS = 0.1  # a pitch run shorter than this within a word is an ornament, not a note
# Syllable timings (UltraStar files, and the aligner, which is measured against them) start a note
# at its consonant, before the voice reaches the pitch: a word's pitch is read from frames this much
# later. With the notes made from the shared songs' own word timing this raised octave-invariant
# accuracy against their UltraStar notes from 0.57 to 0.65; on vocadito, whose notes are annotated
# at the pitch onset, it lowered accuracy within 50 cents from 0.90 to 0.85.
PITCH_LAG_SECONDS = 0.05
# What a cached pitch analysis depends on (part of the karaoke job's cache key)
SETTINGS = {"method": "pyin", "sample_rate": SAMPLE_RATE, "frame": FRAME_LENGTH, "hop": HOP_LENGTH, "fmin": FMIN_HZ,
            "fmax": FMAX_HZ, "resolution": RESOLUTION, "lag": PITCH_LAG_SECONDS, "min_note": MIN_NOTE_SECONDS}
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# Krumhansl-Kessler key profiles (probe-tone ratings), tonic first
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass
class PitchContour:
    """Frame-wise f0: ``times`` (s, frame centres), ``f0_hz`` (NaN where unvoiced), ``voiced``."""

    times: np.ndarray
    f0_hz: np.ndarray
    voiced: np.ndarray

    @property
    def hop_seconds(self) -> float:
        return HOP_LENGTH / SAMPLE_RATE

    def midi(self) -> np.ndarray:
        """f0 as fractional MIDI numbers (NaN where unvoiced)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.voiced, 69.0 + 12.0 * np.log2(self.f0_hz / 440.0), np.nan)


@dataclass
class PitchNote:
    """A sung note: ``start``/``end`` in seconds, ``midi`` a whole semitone, ``text`` the word
    (``"~"`` for a continuation of the previous word), ``word`` its index in the timing's words,
    ``measured`` False when the word had no voiced frames and the pitch came from a neighbour."""

    start: float
    end: float
    midi: int
    text: str
    word: int
    measured: bool = True


@dataclass
class PitchAnalysis:
    """What :func:`analyze_pitch` found: contour, notes (empty without timing), key, tempo."""

    contour: PitchContour
    notes: list[PitchNote] = field(default_factory=list)
    key: str = ""
    key_confidence: float = 0.0
    tempo_bpm: float = 0.0
    tuning_semitones: float = 0.0

    def word_pitches(self) -> list[int]:
        """The MIDI pitch of each word (its first note), in timing order."""
        return [n.midi for n in self.notes if n.text != "~"]

    def to_dict(self, step_seconds: float = 0.04) -> dict[str, Any]:
        """JSON-ready: the contour every ``step_seconds`` (``times`` s, ``hz`` rounded to 0.1 Hz,
        null where unvoiced), the notes (MIDI), key, tempo (BPM) and tuning (semitones)."""
        c = self.contour
        n = max(1, round(step_seconds / c.hop_seconds))
        hz = [round(float(f), 1) if v else None for f, v in zip(c.f0_hz[::n], c.voiced[::n], strict=True)]
        return {
            "model": f"librosa.pyin {SAMPLE_RATE} Hz, hop {HOP_LENGTH}, {FMIN_HZ}-{FMAX_HZ} Hz",
            "f0": {"step": round(n * c.hop_seconds, 4), "times": [round(float(t), 3) for t in c.times[::n]],
                   "hz": hz},
            "notes": [{"start": round(x.start, 3), "end": round(x.end, 3), "midi": x.midi, "text": x.text,
                       "word": x.word, "measured": x.measured} for x in self.notes],
            "key": self.key,
            "key_confidence": round(self.key_confidence, 3),
            "tempo_bpm": round(self.tempo_bpm, 2),
            "tuning_semitones": round(self.tuning_semitones, 3),
        }


def pitch_contour(vocals: Waveform, on_progress: ProgressCallback = no_progress) -> PitchContour:
    """The f0 contour of a (separated or a cappella) vocals waveform, any rate or channel count.

    Runs pYIN on 30 s chunks (each with 1 s of context on both sides) and reports
    ``on_progress(fraction, "pitch")`` after each; the callback may raise ``JobCanceled``.
    """
    import librosa

    mono = vocals.mono()
    if vocals.sample_rate != SAMPLE_RATE:
        mono = librosa.resample(mono, orig_sr=vocals.sample_rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    total = 1 + len(mono) // HOP_LENGTH
    chunk = int(CHUNK_SECONDS * SAMPLE_RATE) // HOP_LENGTH
    context = int(CHUNK_CONTEXT_SECONDS * SAMPLE_RATE) // HOP_LENGTH
    f0 = np.full(total, np.nan)
    voiced = np.zeros(total, dtype=bool)
    for first in range(0, total, chunk):
        lo, hi = max(0, first - context), min(total, first + chunk + context)
        part = mono[lo * HOP_LENGTH: hi * HOP_LENGTH]
        if len(part) >= FRAME_LENGTH // 2:
            part_f0, part_voiced, _ = librosa.pyin(part, fmin=FMIN_HZ, fmax=FMAX_HZ, sr=SAMPLE_RATE,
                                                   frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH,
                                                   resolution=RESOLUTION)
            keep = slice(first - lo, min(first + chunk, total) - lo)
            got = part_f0[keep], part_voiced[keep]
            f0[first: first + len(got[0])], voiced[first: first + len(got[1])] = got
        on_progress(min(1.0, (first + chunk) / total), "pitch")
    voiced &= np.isfinite(f0)
    return PitchContour(np.arange(total) * HOP_LENGTH / SAMPLE_RATE, f0, voiced)


def warm() -> None:
    """Compile librosa's numba kernels (pYIN, Viterbi, beat tracking: seconds on a cold process)."""
    noise = np.random.default_rng(0).standard_normal((1, SAMPLE_RATE)).astype(np.float32) * 0.01
    analyze_pitch(Waveform(noise, SAMPLE_RATE))


def estimate_tuning(contour: PitchContour) -> float:
    """The singer's offset from equal temperament in semitones (-0.5..0.5): the circular mean of
    the voiced frames' distance to the nearest semitone; 0 without voiced frames."""
    midi = contour.midi()[contour.voiced]
    if not len(midi):
        return 0.0
    angle = np.angle(np.mean(np.exp(2j * np.pi * midi)))
    return float(angle / (2 * np.pi))


def estimate_key(contour: PitchContour) -> tuple[str, float]:
    """The key of the voiced frames' pitch-class histogram (see :func:`estimate_key_from_histogram`)."""
    midi = contour.midi()[contour.voiced]
    if not len(midi):
        return "", 0.0
    pitch_classes = np.round(midi - estimate_tuning(contour)).astype(int) % 12
    return estimate_key_from_histogram(np.bincount(pitch_classes, minlength=12))


def estimate_key_from_histogram(histogram: np.ndarray) -> tuple[str, float]:
    """Krumhansl-Schmuckler: the major or minor key whose profile best correlates with a 12-bin
    pitch-class histogram (C first). Returns ``("A minor", correlation)``; ``("", 0.0)`` for a
    flat histogram."""
    best = ("", 0.0)
    if np.ptp(histogram) == 0:
        return best
    for tonic in range(12):
        for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
            r = float(np.corrcoef(histogram, np.roll(profile, tonic))[0, 1])
            if r > best[1] or not best[0]:
                best = (f"{PITCH_CLASSES[tonic]} {mode}", r)
    return best


def estimate_tempo(wave: Waveform) -> float:
    """Tempo in beats per minute (librosa's beat tracker on the mono mix at 22.05 kHz); 0 for silence."""
    import librosa

    mono = wave.mono()
    if wave.sample_rate != 22050:
        mono = librosa.resample(mono, orig_sr=wave.sample_rate, target_sr=22050, res_type="soxr_hq")
    if not len(mono) or not np.any(mono):
        return 0.0
    tempo, _ = librosa.beat.beat_track(y=mono, sr=22050)
    return float(np.atleast_1d(tempo)[0])


def word_notes(contour: PitchContour, timing: LyricsTiming, split: bool = True, tuning: float = 0.0,
               lag: float = PITCH_LAG_SECONDS) -> list[PitchNote]:
    """Notes for every word of ``timing``: the median pitch of the voiced frames inside the word's
    [start + lag, end + lag] (its whole span when that has none), rounded to a semitone after
    subtracting ``tuning`` (semitones; see :func:`estimate_tuning`). The default 0 keeps absolute
    pitch: on vocadito, correcting the singer's -0.15 semitone detuning lowered note accuracy
    (0.92 to 0.81 within 50 cents of the annotated Hz) and did not change it on the shared songs.

    With ``split``, a word whose pitch moves (a melisma, or several syllables) becomes several
    notes: runs of one semitone lasting at least 0.1 s, the later ones with text ``"~"``. A word
    without voiced frames takes the pitch of the nearest word that has them (``measured=False``).
    """
    midi = contour.midi()
    notes: list[PitchNote] = []
    unmeasured: list[int] = []
    for index, word in enumerate(timing.words):
        shift = lag
        inside = _voiced_between(contour, word.start + lag, word.end + lag)
        if not inside.any():
            shift, inside = 0.0, _voiced_between(contour, word.start, word.end)
        values = midi[inside] - tuning
        if not len(values):
            unmeasured.append(len(notes))
            notes.append(PitchNote(word.start, word.end, 0, word.text, index, measured=False))
            continue
        runs = _runs(contour.times[inside] - shift, values, word.start, word.end) if split else []
        if len(runs) <= 1:
            notes.append(PitchNote(word.start, word.end, int(np.round(np.median(values))), word.text, index))
            continue
        for k, (start, end, pitch) in enumerate(runs):
            notes.append(PitchNote(start, end, pitch, word.text if k == 0 else "~", index))
    _borrow_pitch(notes, unmeasured)
    return notes


def _voiced_between(contour: PitchContour, start: float, end: float) -> np.ndarray:
    return (contour.times >= start) & (contour.times <= end) & contour.voiced


def _runs(times: np.ndarray, values: np.ndarray, start: float, end: float) -> list[tuple[float, float, int]]:
    """Split [start, end] where the rounded pitch changes for at least MIN_NOTE_SECONDS."""
    steps = np.round(values).astype(int)
    runs: list[list[Any]] = []  # [first time, last time, pitch, frames]
    for t, p in zip(times, steps, strict=True):
        if runs and runs[-1][2] == p:
            runs[-1][1] = t
            runs[-1][3] += 1
        else:
            runs.append([t, t, int(p), 1])
    min_frames = max(1, round(MIN_NOTE_SECONDS * SAMPLE_RATE / HOP_LENGTH))
    while len(runs) > 1:
        k = min(range(len(runs)), key=lambda i: runs[i][3])
        if runs[k][3] >= min_frames:
            break
        # a short run joins the neighbour nearer in pitch
        left, right = runs[k - 1] if k else None, runs[k + 1] if k + 1 < len(runs) else None
        target = k - 1 if right is None or (left is not None and abs(left[2] - runs[k][2])
                                             <= abs(right[2] - runs[k][2])) else k + 1
        a, b = sorted((k, target))
        merged_pitch = runs[a][2] if runs[a][3] >= runs[b][3] else runs[b][2]
        runs[a:b + 1] = [[runs[a][0], runs[b][1], merged_pitch, runs[a][3] + runs[b][3]]]
        # neighbours with the same pitch are one run
        runs = _join_equal(runs)
    bounds = [start] + [(runs[i][1] + runs[i + 1][0]) / 2 for i in range(len(runs) - 1)] + [end]
    return [(bounds[i], bounds[i + 1], runs[i][2]) for i in range(len(runs))]


def _join_equal(runs: list[list[Any]]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for run in runs:
        if out and out[-1][2] == run[2]:
            out[-1] = [out[-1][0], run[1], run[2], out[-1][3] + run[3]]
        else:
            out.append(run)
    return out


def _borrow_pitch(notes: list[PitchNote], unmeasured: list[int]) -> None:
    measured = [i for i, n in enumerate(notes) if n.measured]
    fallback = int(np.round(np.median([notes[i].midi for i in measured]))) if measured else 60
    for i in unmeasured:
        if not measured:
            notes[i].midi = fallback
            continue
        nearest = min(measured, key=lambda j: min(abs(notes[j].start - notes[i].end),
                                                   abs(notes[i].start - notes[j].end)))
        notes[i].midi = notes[nearest].midi


def analyze_pitch(vocals: Waveform, timing: LyricsTiming | None = None, tempo_source: Waveform | None = None,
                  on_progress: ProgressCallback = no_progress, split: bool = True) -> PitchAnalysis:
    """Contour, notes per word of ``timing`` (none without it), key and tempo (from
    ``tempo_source``, e.g. the instrumental; default the vocals) of a vocals waveform.
    ``on_progress`` goes from 0 to 1 (stages "pitch", "tempo") and may raise ``JobCanceled``."""
    contour = pitch_contour(vocals, lambda f, s: on_progress(0.85 * f, s))
    notes = word_notes(contour, timing, split) if timing is not None else []
    key, confidence = estimate_key(contour)
    on_progress(0.85, "tempo")
    tempo = estimate_tempo(tempo_source if tempo_source is not None else vocals)
    on_progress(1.0, "tempo")
    return PitchAnalysis(contour, notes, key, confidence, tempo, estimate_tuning(contour))
