"""The vocals stem as the lyrics aligner reads it: 16 kHz mono samples and a voice-activity map."""

from __future__ import annotations

import numpy as np

from app.audio import alignment
from app.audio.types import Waveform

SAMPLE_RATE = 16000
ENERGY_RANGE_DB = 20.0
FAINT_RANGE_DB = 40.0
"""Faint voice activity: within this range (dB) of the loud frames and 20 dB above the stem's floor."""


def to_16k_mono(wf: Waveform) -> np.ndarray:
    """The waveform as float32 mono at 16 kHz (channel mean, FFmpeg resampler, no added delay)."""
    from app.audio.io import resample

    mono = wf.mono()[None, :]
    return np.ascontiguousarray(resample(mono, wf.sample_rate, SAMPLE_RATE)[0], dtype=np.float32)


def speech_map(audio: np.ndarray) -> alignment.SpeechMap:
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
    return alignment.SpeechMap(loud | silero, loud, faint)
