"""The output and quality options of a separation request, checked before any job is created.

``POST /api/v1/songs/<id>/separate`` takes ``stems`` ("two" | "all"), ``format`` (wav, flac, mp3,
m4a, ogg), ``bitrate`` (kbps, lossy formats), ``sample_format`` (s16, s24; f32 for WAV), and for
Demucs models ``segment`` (seconds), ``overlap`` (0 <= x < 0.99) and ``shifts`` (0..10). Options
equal to the defaults are the default request: same job params, same cache key, same files.
"""

from __future__ import annotations

from typing import Any

from app.audio import separation
from app.audio.encoders import BITRATE_RANGES_KBPS, DEFAULT_BITRATE_KBPS, LOSSY_FORMATS, SAMPLE_FORMATS
from app.audio.writing import WRITE_FORMATS
from app.errors import ApiError

DEFAULTS: dict[str, Any] = {"stems": "two", "format": "flac", "sample_format": "s16", "bitrate": None,
                            "segment": None, "overlap": 0.25, "shifts": 0}
MAX_SHIFTS = 10
MAX_OVERLAP = 0.99


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message)


def _number(body: dict[str, Any], name: str, integer: bool = False) -> float | int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise _bad(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    return value


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in choices:
        raise _bad(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value.lower()


def parse_options(body: dict[str, Any], model_name: str) -> dict[str, Any] | None:
    """The full, normalised options of ``body`` for ``model_name``; None when they are the defaults.

    Raises ``ApiError`` 400 ``invalid_parameter`` for an unknown format, stems or sample format, a
    bitrate for a lossless format or out of the codec's range, a sample format for a lossy format,
    ``segment``/``overlap``/``shifts`` for a model they do not tune (Spleeter) or out of range.
    """
    spec = separation.model_spec(model_name)
    fmt = _choice(body, "format", WRITE_FORMATS) or DEFAULTS["format"]
    opts = dict(DEFAULTS, format=fmt, stems=_choice(body, "stems", ("two", "all")) or DEFAULTS["stems"])
    bitrate = _number(body, "bitrate", integer=True)
    sample_format = _choice(body, "sample_format", ("s16", "s24", "f32"))
    if fmt in LOSSY_FORMATS:
        if sample_format is not None:
            raise _bad(f"sample_format applies to wav and flac only; {fmt} is lossy (set bitrate instead)")
        low, high = BITRATE_RANGES_KBPS[fmt]
        if bitrate is not None and not low <= bitrate <= high:
            raise _bad(f"bitrate for {fmt} must be {low}..{high} kbps, got {bitrate}")
        opts.update(bitrate=bitrate or DEFAULT_BITRATE_KBPS, sample_format=None)
    else:
        if bitrate is not None:
            raise _bad(f"bitrate applies to {', '.join(LOSSY_FORMATS)} only; {fmt} is lossless "
                       "(set sample_format instead)")
        if sample_format is not None and sample_format not in SAMPLE_FORMATS[fmt]:
            allowed = ", ".join(SAMPLE_FORMATS[fmt])
            raise _bad(f"sample_format for {fmt} must be one of {allowed}, got {sample_format!r}")
        opts["sample_format"] = sample_format or DEFAULTS["sample_format"]
    opts.update(_tuning(body, spec))
    return None if opts == DEFAULTS else opts


def _tuning(body: dict[str, Any], spec: separation.ModelSpec) -> dict[str, Any]:
    given = [name for name in ("segment", "overlap", "shifts") if body.get(name) is not None]
    if given and not spec.tunable:
        raise _bad(f"{', '.join(given)} tune Demucs models only; {spec.name} takes none of them")
    out: dict[str, Any] = {}
    shifts = _number(body, "shifts", integer=True)
    if shifts is not None:
        if not 0 <= shifts <= MAX_SHIFTS:
            raise _bad(f"shifts must be 0..{MAX_SHIFTS}, got {shifts}")
        out["shifts"] = shifts
    overlap = _number(body, "overlap")
    if overlap is not None:
        if not 0 <= overlap < MAX_OVERLAP:
            raise _bad(f"overlap must be at least 0 and below {MAX_OVERLAP}, got {overlap}")
        out["overlap"] = float(overlap)
    segment = _number(body, "segment")
    if segment is not None:
        limit = spec.max_segment or 0.0
        if not 0 < segment <= limit:
            raise _bad(f"segment must be above 0 and at most {limit:g} s for {spec.name}, got {segment}")
        out["segment"] = float(segment)
    return out


def stem_names(model_name: str, stems: str) -> list[str]:
    """The stems a separation writes: vocals and instrumental, plus the model's other sources for "all"."""
    spec = separation.model_spec(model_name)
    extra = [s for s in spec.sources if s not in ("vocals", "accompaniment")] if stems == "all" else []
    return ["vocals", "instrumental", *extra]
