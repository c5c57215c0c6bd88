"""Quality measures of a separation.

``reference_free(mix, stems)`` needs only the mix and the estimated stems, so every separation
stores it: the reconstruction error (how much of the mix the stems fail to add up to) and the
vocal residue (the instrumental's level while the separated vocals sing, against its level
while they do not; a clean instrumental keeps the same level, a leaky one gets louder).

``bss_eval(references, estimates)`` needs the true stems (evaluation sets): SDR, SIR and SAR of
BSSEval v4 (museval), per source, the median over 1 s windows as in SiSEC 2018.
"""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from app.audio.types import Waveform

FLOOR_DB = -120.0
"""Levels and ratios are clamped here instead of reaching -inf (digital silence)."""
SILENT_DB = -60.0
"""Vocals frames quieter than this (dBFS) are never singing, whatever the voice detector says."""
MAX_DB = 300.0
"""BSSEval ratios are clamped to ±MAX_DB (a perfect estimate has an infinite SDR)."""
VOCALS = "vocals"
INSTRUMENTAL = ("instrumental", "accompaniment")


def _db(ratio: float) -> float:
    return round(max(FLOOR_DB, 10 * math.log10(ratio)) if ratio > 0 else FLOOR_DB, 2)


def _energy(x: np.ndarray) -> float:
    return float(np.dot(x.ravel().astype(np.float64), x.ravel().astype(np.float64)))


def reconstruction_error_db(mix: Waveform, stems: dict[str, Waveform]) -> float:
    """10·log10(energy(mix - sum of stems) / energy(mix)), clamped at FLOOR_DB."""
    residual = mix.samples.astype(np.float64).copy()
    for wave in stems.values():
        n = min(residual.shape[1], wave.frames)
        residual[: wave.channels, :n] -= wave.samples[:, :n]
    mix_energy = _energy(mix.samples)
    return _db(_energy(residual) / mix_energy) if mix_energy > 0 else FLOOR_DB


def _instrumental(stems: dict[str, Waveform]) -> Waveform | None:
    for name in INSTRUMENTAL:
        if name in stems:
            return stems[name]
    others = [w for name, w in stems.items() if name != VOCALS]  # Demucs' sources without an instrumental
    if not others:
        return None
    total = sum(w.samples.astype(np.float32) for w in others)
    return Waveform(np.asarray(total, dtype=np.float32), others[0].sample_rate)


def vocal_residue(vocals: Waveform, instrumental: Waveform) -> dict[str, Any]:
    """The instrumental's RMS level (dBFS) over the frames where the voice detector hears the
    separated vocals singing and over those where it does not, and their difference (dB)."""
    from app.audio.alignment import VAD_FRAME_S
    from app.audio.transcribe import SAMPLE_RATE, speech_map, to_16k_mono

    voice = to_16k_mono(vocals)
    singing = speech_map(voice).speech
    inst = to_16k_mono(instrumental).astype(np.float64)
    frame = round(VAD_FRAME_S * SAMPLE_RATE)
    n = min(len(singing), len(inst) // frame, len(voice) // frame)

    def power(x: np.ndarray) -> np.ndarray:
        return (x[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(axis=1) if n else np.zeros(0)

    # the detector's level rule is relative to the stem's loudest frames: on (near) silent vocals it
    # would call every frame singing, so frames below SILENT_DB never count
    singing = singing[:n] & (power(voice) > 10 ** (SILENT_DB / 10))
    inst_power = power(inst)

    def level(mask: np.ndarray) -> float | None:
        return _db(float(inst_power[mask].mean())) if mask.any() else None

    during, outside = level(singing), level(~singing)
    return {
        "singing_seconds": round(float(singing.sum()) * VAD_FRAME_S, 2),
        "instrumental_db_singing": during,
        "instrumental_db_not_singing": outside,
        "residue_db": round(during - outside, 2) if during is not None and outside is not None else None,
    }


def reference_free(mix: Waveform, stems: dict[str, Waveform]) -> dict[str, Any]:
    """Measures that need no true stems. ``stems`` maps source name to waveform; ``vocals`` and an
    ``instrumental`` (or ``accompaniment``, or else the sum of the other sources) give the residue."""
    result: dict[str, Any] = {"reconstruction_error_db": reconstruction_error_db(mix, stems)}
    instrumental = _instrumental(stems)
    if VOCALS in stems and instrumental is not None:
        result["vocal_residue"] = vocal_residue(stems[VOCALS], instrumental)
    return result


@cache
def _museval_metrics() -> ModuleType:
    """``museval.metrics`` without ``museval/__init__`` (which imports musdb and stempeg, and
    those want FFmpeg binaries). The module itself needs only numpy and scipy."""
    package = importlib.util.find_spec("museval")
    if package is None or not package.submodule_search_locations:
        raise ImportError("museval is not installed")
    location = f"{next(iter(package.submodule_search_locations))}/metrics.py"
    spec = importlib.util.spec_from_file_location("_museval_metrics", location)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {location}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frames_channels(wave: Waveform, frames: int) -> np.ndarray:
    """(frames, channels) float64, padded with zeros or cut to ``frames``."""
    x = wave.samples.T.astype(np.float64)
    if len(x) < frames:
        x = np.pad(x, ((0, frames - len(x)), (0, 0)))
    return x[:frames]


def _median(values: np.ndarray) -> float | None:
    """Median over the windows museval could measure (NaN: a silent window), clamped to
    ±MAX_DB: a perfect estimate gives +inf, which JSON cannot carry."""
    kept = values[~np.isnan(values)]
    return round(float(np.clip(np.median(kept), -MAX_DB, MAX_DB)), 3) if kept.size else None


def bss_eval(
    references: dict[str, Waveform], estimates: dict[str, Waveform], window_s: float = 1.0
) -> dict[str, dict[str, float | None]]:
    """BSSEval v4 (time-invariant distortion filters, images): per source in both dicts, the
    median SDR, SIR, SAR and ISR (dB) over ``window_s`` windows without overlap."""
    names = [name for name in references if name in estimates]
    if not names:
        raise ValueError("no source is in both references and estimates")
    rate = references[names[0]].sample_rate
    if any(w.sample_rate != rate for w in [*references.values(), *estimates.values()]):
        raise ValueError("all waveforms must share one sample rate")
    frames = references[names[0]].frames
    refs = np.stack([_frames_channels(references[n], frames) for n in names])
    ests = np.stack([_frames_channels(estimates[n], frames) for n in names])
    win = round(window_s * rate)
    sdr, isr, sir, sar, _ = _museval_metrics().bss_eval(
        refs, ests, compute_permutation=False, window=win, hop=win,
        framewise_filters=False, bsseval_sources_version=False,
    )
    return {
        name: {"SDR": _median(sdr[i]), "SIR": _median(sir[i]), "SAR": _median(sar[i]), "ISR": _median(isr[i])}
        for i, name in enumerate(names)
    }
