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


class ReferenceFree:
    """The reference-free measures, fed block by block (``add``), read at the end (``result``).

    Memory is bounded: the residue analysis runs on ``WINDOW_S`` windows of 16 kHz mono audio (the
    voice detector's loudness rule is relative to each window's loud frames); a song shorter than
    that is one window.
    """

    WINDOW_S = 120

    def __init__(self, sample_rate: int) -> None:
        from app.audio.resampling import StreamResampler
        from app.audio.vocals import SAMPLE_RATE, VAD_FRAME_S

        self.rate = SAMPLE_RATE  # of the analysis: 16 kHz mono, as the voice detector wants
        self.frame = round(VAD_FRAME_S * SAMPLE_RATE)
        self.window = self.WINDOW_S * SAMPLE_RATE // self.frame * self.frame
        self.mix_energy = self.residual_energy = 0.0
        self.voice = StreamResampler(1, sample_rate, SAMPLE_RATE)
        self.inst = StreamResampler(1, sample_rate, SAMPLE_RATE)
        self.voice_parts: list[np.ndarray] = []
        self.inst_parts: list[np.ndarray] = []
        self.buffered = 0
        self.has_residue = False
        self.singing_frames = 0
        self.power = {True: [0.0, 0], False: [0.0, 0]}  # singing? -> [sum of power, frames]

    def add(self, mix: np.ndarray, stems: dict[str, np.ndarray]) -> None:
        """The next block of the mix and of every stem, ``(channels, n)`` each."""
        residual = mix.astype(np.float64)
        for block in stems.values():
            residual[: block.shape[0]] -= block
        self.mix_energy += _energy(mix)
        self.residual_energy += _energy(residual)
        instrumental = _instrumental(stems)
        if VOCALS not in stems or instrumental is None:
            return
        self.has_residue = True
        self.voice_parts.append(self.voice.push(stems[VOCALS].mean(axis=0, keepdims=True))[0])
        self.inst_parts.append(self.inst.push(instrumental.mean(axis=0, keepdims=True))[0])
        self.buffered = min(sum(len(v) for v in self.voice_parts), sum(len(i) for i in self.inst_parts))
        while self.buffered >= self.window:
            self._analyse(self.window)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reconstruction_error_db": _db(self.residual_energy / self.mix_energy)
                               if self.mix_energy > 0 else FLOOR_DB}
        if not self.has_residue:
            return out
        self.voice_parts.append(self.voice.finish()[0])
        self.inst_parts.append(self.inst.finish()[0])
        self.buffered = min(sum(len(v) for v in self.voice_parts), sum(len(i) for i in self.inst_parts))
        if self.buffered:
            self._analyse(self.buffered)

        def level(singing: bool) -> float | None:
            total, frames = self.power[singing]
            return _db(total / frames) if frames else None

        during, outside = level(True), level(False)
        out["vocal_residue"] = {
            "singing_seconds": round(self.singing_frames * self.frame / self.rate, 2),
            "instrumental_db_singing": during,
            "instrumental_db_not_singing": outside,
            "residue_db": round(during - outside, 2) if during is not None and outside is not None else None,
        }
        return out

    def _analyse(self, n: int) -> None:
        from app.audio.vocals import speech_map

        voice, self.voice_parts = _split(self.voice_parts, n)
        inst, self.inst_parts = _split(self.inst_parts, n)
        self.buffered -= n
        singing = speech_map(voice).speech
        frames = min(len(singing), n // self.frame)
        if not frames:
            return

        def power(x: np.ndarray) -> np.ndarray:
            return (x[: frames * self.frame].astype(np.float64).reshape(frames, self.frame) ** 2).mean(axis=1)

        # the detector's level rule is relative to the stem's loudest frames: on (near) silent vocals it
        # would call every frame singing, so frames below SILENT_DB never count
        singing = singing[:frames] & (power(voice) > 10 ** (SILENT_DB / 10))
        inst_power = power(inst)
        self.singing_frames += int(singing.sum())
        for mask, key in ((singing, True), (~singing, False)):
            self.power[key][0] += float(inst_power[mask].sum())
            self.power[key][1] += int(mask.sum())


def _split(parts: list[np.ndarray], n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    joined = np.concatenate(parts) if len(parts) != 1 else parts[0]
    return joined[:n], [joined[n:]] if len(joined) > n else []


def _instrumental(stems: dict[str, np.ndarray]) -> np.ndarray | None:
    for name in INSTRUMENTAL:
        if name in stems:
            return stems[name]
    others = [block for name, block in stems.items() if name != VOCALS]  # Demucs' sources, no instrumental
    return np.sum(others, axis=0, dtype=np.float32) if others else None


def reference_free(mix: Waveform, stems: dict[str, Waveform]) -> dict[str, Any]:
    """Measures that need no true stems (``ReferenceFree`` over whole waveforms): the reconstruction
    error, 10·log10(energy(mix - sum of ``stems``) / energy(mix)) clamped at FLOOR_DB, and, given
    ``vocals`` and an ``instrumental`` (or ``accompaniment``, or else the sum of the other sources),
    the vocal residue: the instrumental's RMS level (dBFS) over the frames where the voice detector
    hears the separated vocals singing and over those where it does not, and their difference."""
    n = mix.frames
    measure = ReferenceFree(mix.sample_rate)
    measure.add(mix.samples, {name: _fit(w.samples, n) for name, w in stems.items()})
    return measure.result()


def _fit(samples: np.ndarray, frames: int) -> np.ndarray:
    if samples.shape[1] >= frames:
        return samples[:, :frames]
    return np.pad(samples, ((0, 0), (0, frames - samples.shape[1])))


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
