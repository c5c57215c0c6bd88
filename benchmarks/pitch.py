"""Pitch benchmark: the notes the product writes into UltraStar files, against reference notes.

- vocadito-1 (a cappella): notes for the annotated note spans (``vocadito_1_notesA1.csv``),
  compared with the annotated Hz; plus the frame-level raw pitch accuracy of the f0 contour
  against ``vocadito_1_f0.csv`` (within 50 cents, over the reference's voiced frames).
- every shared English song: vocals separated with the project's Spleeter, notes for the words of
  ``ultrastar.txt`` (its own timing, so only the pitch is measured), compared with its notes,
  paired by time overlap. Community files are often whole octaves off, hence the octave-invariant
  and octave-shifted figures.

Prints raw accuracy within 50 cents and within one semitone, octave-invariant accuracy, the shared
octave shift, accuracy after it, the octave-error share, the key (ours / from the reference notes)
and the pitch runtime (contour + notes + key + tempo) as a fraction of the song's duration.

    .venv/bin/python benchmarks/pitch.py [--songs better,flickr] [--stems-cache /tmp/stems]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
FIELDS = ("raw_50c", "raw_1st", "octave_invariant_50c", "octave_shift", "shifted_50c", "octave_errors")


def vocadito() -> dict:
    from app.audio import pitch
    from app.audio.io import decode
    from app.audio.pitch_metrics import match_notes, pitch_accuracy
    from app.audio.types import Line, LyricsTiming, Word

    folder = DATA / "singing" / "vocadito-1"
    wave = decode(folder / "vocadito_1.wav")
    notes = np.loadtxt(folder / "vocadito_1_notesA1.csv", delimiter=",", ndmin=2)
    reference = [(on, on + dur, 69 + 12 * np.log2(hz / 440)) for on, hz, dur in notes]
    words = [Word(f"n{i}", start, end) for i, (start, end, _) in enumerate(reference)]
    timing = LyricsTiming("tl", [Line("notes", words[0].start, words[-1].end, words)])
    started = time.perf_counter()
    analysis = pitch.analyze_pitch(wave, timing)
    seconds = time.perf_counter() - started
    row = pitch_accuracy(match_notes(reference, [(n.start, n.end, n.midi) for n in analysis.notes]), len(reference))
    f0 = np.loadtxt(folder / "vocadito_1_f0.csv", delimiter=",", ndmin=2)
    row.update(name="vocadito-1", duration=wave.duration, rtf=seconds / wave.duration, key=analysis.key,
               ref_key="", frame_rpa_50c=_frame_rpa(analysis.contour, f0))
    return row


def _frame_rpa(contour, f0: np.ndarray) -> float:
    """Raw pitch accuracy (mir_eval's definition): reference-voiced frames whose estimate is voiced
    and within 50 cents, over all reference-voiced frames; the estimate is read at the nearest frame."""
    ref_voiced = f0[:, 1] > 0
    index = np.clip(np.round(f0[:, 0] / contour.hop_seconds).astype(int), 0, len(contour.times) - 1)
    est_hz, est_voiced = contour.f0_hz[index], contour.voiced[index]
    both = ref_voiced & est_voiced
    cents = 1200 * np.abs(np.log2(est_hz[both] / f0[both, 1]))
    return float(np.sum(cents <= 50) / max(1, ref_voiced.sum()))


def song(folder: Path, stems_cache: Path | None) -> dict:
    from app.audio import pitch
    from app.audio.pitch_metrics import match_notes, pitch_accuracy
    from app.audio.types import Waveform
    from app.audio.ultrastar import parse_ultrastar, ultrastar_to_timing

    vocals, instrumental = _stems(folder, stems_cache)
    reference_song = parse_ultrastar((folder / "ultrastar.txt").read_bytes())
    timing = ultrastar_to_timing(reference_song)
    started = time.perf_counter()
    analysis = pitch.analyze_pitch(Waveform(vocals[None, :], 44100), timing, Waveform(instrumental[None, :], 44100))
    seconds = time.perf_counter() - started
    reference = [(reference_song.seconds(n.start), reference_song.seconds(n.end), n.midi)
                 for n in reference_song.notes if n.pitched]
    estimated = [(n.start, n.end, n.midi) for n in analysis.notes]
    row = pitch_accuracy(match_notes(reference, estimated), len(reference))
    duration = len(vocals) / 44100
    row.update(name=folder.name, duration=duration, rtf=seconds / duration, key=analysis.key,
               ref_key=_reference_key(reference_song))
    return row


def _stems(folder: Path, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Mono vocals and instrumental at 44.1 kHz from the project's Spleeter separation."""
    cached = cache / f"{folder.name}.npz" if cache else None
    if cached and cached.exists():
        data = np.load(cached)
        return data["vocals"], data["instrumental"]
    from app.audio import separation
    from app.audio.io import decode

    stems = separation.separate(decode(next(folder.glob("audio.*")), sample_rate=44100), "spleeter",
                                REPO / "models")
    vocals, instrumental = stems.vocals.mono(), stems.instrumental.mono()
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, vocals=vocals, instrumental=instrumental)
    return vocals, instrumental


def _reference_key(reference_song) -> str:
    from app.audio.pitch import estimate_key_from_histogram

    histogram = np.zeros(12)
    for note in reference_song.notes:
        if note.pitched:
            histogram[note.midi % 12] += note.length
    return estimate_key_from_histogram(histogram)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", default="", help="comma-separated substrings of song folder names (default: all)")
    parser.add_argument("--stems-cache", type=Path, default=None, help="keep separated stems here between runs")
    parser.add_argument("--no-songs", action="store_true", help="vocadito only")
    args = parser.parse_args()
    from app.audio import pitch

    pitch.warm()  # numba compilation is a once-per-process cost, not the method's
    rows = [vocadito()]
    print(_format(rows[0], header=True), flush=True)
    if not args.no_songs:
        wanted = [s for s in args.songs.split(",") if s]
        for folder in sorted((DATA / "songs-en").iterdir()):
            if not wanted or any(w in folder.name for w in wanted):
                rows.append(song(folder, args.stems_cache))
                print(_format(rows[-1]), flush=True)
    if len(rows) > 2:
        songs = rows[1:]
        mean = {f: float(np.mean([r[f] for r in songs])) for f in (*FIELDS, "rtf", "notes")}
        print(_format(mean | {"name": f"mean of {len(songs)} songs", "duration": 0, "key": "", "ref_key": ""}))


def _format(row: dict, header: bool = False) -> str:
    line = (f"{row['name'][:34]:34s} {row['duration']:6.1f}s notes {row['notes']:4.0f}  "
            f"50c {row['raw_50c']:.3f}  1st {row['raw_1st']:.3f}  oct-inv {row['octave_invariant_50c']:.3f}  "
            f"shift {row['octave_shift']:+4.0f}  shifted {row['shifted_50c']:.3f}  "
            f"oct-err {row['octave_errors']:.3f}  rtf {row['rtf']:.3f}  key {row['key']} / {row['ref_key']}")
    if "frame_rpa_50c" in row:
        line += f"  frame RPA {row['frame_rpa_50c']:.3f}"
    return ("(50c/1st: raw accuracy within 50 cents / 1 semitone; shift: whole-octave offset of the file)\n"
            + line) if header else line


if __name__ == "__main__":
    main()
