"""Helpers of benchmarks/separation.py: test audio, random Demucs models, the Redis + Celery stack,
the demucs CLI run, the pure model-forward timing, stem comparison and the peak-RSS child process.

Nothing here is product code; it drives the product (``app``) the way a user and the worker do.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
SONGS = REPO.parent / "shared" / "data" / "songs-en"
SEPARATION_DATA = REPO.parent / "shared" / "data" / "separation"
RATE = 44100
FOUR_SOURCES = ["drums", "bass", "other", "vocals"]
FINISHED = ("completed", "failed", "canceled")


# ---- test audio -------------------------------------------------------------------------------

class SongLibrary:
    """The shared songs, decoded once with ``app.audio.io.decode`` to 44.1 kHz stereo int16 (frames, 2)."""

    def __init__(self, root: Path = SONGS) -> None:
        self.paths = sorted(next(d.glob("audio.*")) for d in root.iterdir() if d.is_dir() and any(d.glob("audio.*")))
        if not self.paths:
            raise SystemExit(f"no songs under {root}")
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def pcm(self, index: int) -> np.ndarray:
        index %= len(self.paths)
        if index not in self._cache:
            from app.audio.io import decode

            wave = decode(self.paths[index], sample_rate=RATE, channels=2)
            self._cache[index] = np.round(np.clip(wave.samples.T, -1.0, 32767 / 32768) * 32768).astype(np.int16)
        return self._cache[index]

    def stream(self, start_song: int = 0) -> Iterator[np.ndarray]:
        """Whole songs one after the other, starting at ``start_song``, forever."""
        index = start_song
        while True:
            yield self.pcm(index)
            index += 1


def write_concat(lib: SongLibrary, path: Path, seconds: float, start_song: int = 0, offset_s: float = 0.0) -> Path:
    """A 16-bit stereo 44.1 kHz WAV of exactly ``seconds``: the songs concatenated (repeated as needed)
    from ``offset_s`` into song ``start_song``, written block by block (memory stays one song)."""
    import soundfile as sf

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    need = round(seconds * RATE)
    skip = round(offset_s * RATE)
    tmp = path.with_suffix(".part" + path.suffix)
    with sf.SoundFile(tmp, "w", samplerate=RATE, channels=2, subtype="PCM_16", format="WAV") as out:
        for pcm in lib.stream(start_song):
            block = pcm[skip:need + skip]
            skip = max(0, skip - len(pcm))
            out.write(block)
            need -= len(block)
            if need <= 0:
                break
    tmp.rename(path)
    return path


def excerpt_set(lib: SongLibrary, folder: Path, count: int, seconds: float, salt: int = 0) -> list[Path]:
    """``count`` different excerpts of ``seconds`` each (song i % n, later rounds further in)."""
    paths = []
    for i in range(count):
        song, round_ = i % len(lib), i // len(lib)
        offset = 15.0 + 47.0 * round_ + 3.0 * salt
        paths.append(write_concat(lib, folder / f"excerpt-{salt}-{i:02d}.wav", seconds, song, offset))
    return paths


# ---- random Demucs models ---------------------------------------------------------------------

@dataclass(frozen=True)
class DemucsRepo:
    models_dir: Path  # MODELS_DIR of the product; the repo is models_dir / "demucs"
    name: str
    segment: float  # seconds, the model's own (the most a transformer model accepts)
    params: int

    @property
    def repo(self) -> Path:
        return self.models_dir / "demucs"


def released_shape_repo(models_dir: Path, seed: int = 0) -> DemucsRepo:
    """A random-weight HTDemucs shaped like the released ``htdemucs`` (41.5 M parameters), saved as
    ``<models_dir>/demucs/<sig>.th`` plus ``htdemucs.yaml`` listing it (Demucs's local repo format)."""
    import torch
    import yaml
    from demucs.htdemucs import HTDemucs

    from tests.audio.demucs_fixtures import save_demucs_model

    torch.manual_seed(seed)
    model = HTDemucs(FOUR_SOURCES, samplerate=RATE, segment=Fraction(39, 5), bottom_channels=512).eval()
    params = sum(p.numel() for p in model.parameters())
    repo = models_dir / "demucs"
    signature = hashlib.sha256(f"bench-htdemucs:{seed}".encode()).hexdigest()[:8]
    if not (repo / f"{signature}.th").exists():
        save_demucs_model(model, repo, signature)
    (repo / "htdemucs.yaml").write_text(yaml.safe_dump({"models": [signature]}))
    return DemucsRepo(models_dir, "htdemucs", float(model.segment), params)


def small_repo(models_dir: Path) -> DemucsRepo:
    """The tests' tiny random HTDemucs (``make_demucs_repo``), named htdemucs."""
    from tests.audio.demucs_fixtures import SMALL_HTDEMUCS, make_demucs_repo, make_small_htdemucs

    make_demucs_repo(models_dir)
    params = sum(p.numel() for p in make_small_htdemucs().parameters())
    return DemucsRepo(models_dir, "htdemucs", float(SMALL_HTDEMUCS["segment"]), params)


# ---- the demucs CLI and the pure forward time -------------------------------------------------

def run_demucs_cli(
    model: DemucsRepo, song: Path, out: Path, overlap: float = 0.25, shifts: int = 0
) -> tuple[float, Path]:
    """``python -m demucs --two-stems vocals`` on ``song``: (wall seconds of the subprocess, stems folder)."""
    cmd = [sys.executable, "-m", "demucs", "--two-stems", "vocals", "-n", model.name, "--repo", str(model.repo),
           "--float32", "--clip-mode", "clamp", "--overlap", f"{overlap:g}", "--shifts", str(shifts),
           "-o", str(out), str(song)]
    # no --segment: the CLI takes whole seconds only (argparse type=int refuses 7.8), so both sides
    # run at the model's own segment (7.8 s for htdemucs), which is also what the job uses
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"demucs CLI failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, out / model.name / song.stem


def forward_seconds(model: DemucsRepo, song: Path, overlap: float = 0.25) -> tuple[float, int]:
    """Seconds spent in ``model(x)`` over every segment ``demucs.apply.apply_model`` runs on ``song``
    (batch 1, inference mode, one untimed warm-up forward first), and the number of forwards."""
    import soundfile as sf
    import torch
    from demucs.pretrained import get_model

    bag = get_model(model.name, repo=model.repo)
    net = bag.models[0].eval()
    wav = torch.from_numpy(sf.read(song, dtype="float32", always_2d=True)[0].T.copy())
    ref = wav.mean(0)
    wav = (wav - ref.mean()) / (ref.std() + 1e-8)
    length = wav.shape[-1]
    segment_length = int(net.samplerate * model.segment)
    stride = int((1 - overlap) * segment_length)
    offsets = range(0, length, stride)

    def chunk(offset: int) -> torch.Tensor:
        x = wav[:, offset:offset + segment_length]
        return torch.nn.functional.pad(x, (0, segment_length - x.shape[-1]))[None]

    total = 0.0
    with torch.inference_mode():
        net(chunk(0))
        for offset in offsets:
            x = chunk(offset)
            started = time.perf_counter()
            net(x)
            total += time.perf_counter() - started
    return total, len(offsets)


def max_abs_diff(ours: Path, theirs: Path, clip: float = 0.99) -> dict[str, Any]:
    """Max |ours - theirs| over all samples, and over the samples where neither is at ``clip`` or
    beyond (the CLI's ``--clip-mode clamp`` clamps to ±0.99); lengths; samples at the clip."""
    import soundfile as sf

    a = sf.read(ours, dtype="float32", always_2d=True)[0]
    b = sf.read(theirs, dtype="float32", always_2d=True)[0]
    n = min(len(a), len(b))
    diff = np.abs(a[:n].astype(np.float64) - b[:n])
    inside = (np.abs(a[:n]) < clip) & (np.abs(b[:n]) < clip)
    return {"max": float(diff.max()) if n else float("nan"),
            "max_unclipped": float(diff[inside].max()) if inside.any() else float("nan"),
            "clipped": int((~inside).sum()), "frames": (len(a), len(b))}


# ---- the product's stack: embedded Redis + one real Celery worker + the Flask app ----------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds_to_finish(posted: float, docs: list[dict[str, Any]]) -> float:
    """Seconds from ``posted`` (``time.time()`` just before the first POST) to the latest
    ``finished_at`` the service recorded among the job documents ``docs``."""
    ends = [datetime.fromisoformat(d["finished_at"].rstrip("Z")).replace(tzinfo=UTC) for d in docs]
    return max(ends).timestamp() - posted


@dataclass
class Stack:
    """A private Redis (its own port, so no other benchmark's worker takes our jobs), one Celery
    worker (``-c 1``, like benchmarks/pipeline.py) and the Flask app with a test client and a token."""

    root: Path
    models_dir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    app: Any = None
    client: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    user_id: Any = None

    def __enter__(self) -> Stack:
        import shutil

        from app.services.broker import embedded_url, start_embedded_redis

        shutil.rmtree(self.root, ignore_errors=True)  # a fresh database and data folder for every run
        port = free_port()
        self.procs.append(start_embedded_redis(self.root / "redis", port))
        env = dict(os.environ, DATA_DIR=str(self.root / "data"), REDIS_URL=embedded_url(port),
                   DATABASE_URL=f"sqlite:///{self.root / 'bench.sqlite3'}", MODELS_DIR=str(self.models_dir),
                   WARM_MODELS="0")
        os.environ.update(env)
        try:
            self._start_app()
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "celery_worker.celery", "worker", "-Q",
                 "separation,transcription,default", "-c", "1", "-n", f"sepbench{port}@%h", "--loglevel", "WARNING"],
                cwd=REPO, env=env, stdout=open(self.root / "worker.log", "w"), stderr=subprocess.STDOUT))
            self._wait_worker()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start_app(self) -> None:
        from flask_jwt_extended import create_access_token
        from flask_migrate import upgrade

        from app import create_app
        from app.auth import create_user

        self.app = create_app({"SOCKETIO_MESSAGE_QUEUE": False})
        with self.app.app_context():
            upgrade()
            user = create_user("sepbench", "bench-password")
            self.user_id = user.id
            self.headers = {"Authorization": f"Bearer {create_access_token(identity=str(user.id))}"}
        self.client = self.app.test_client()

    def _wait_worker(self) -> None:
        from app.services.health import workers_seen

        deadline = time.monotonic() + 180
        with self.app.app_context():
            while not workers_seen(1.0):
                if time.monotonic() > deadline or self.procs[-1].poll() is not None:
                    raise SystemExit(f"the Celery worker did not start:\n{self.worker_log()}")
                time.sleep(0.5)

    def worker_log(self) -> str:
        path = self.root / "worker.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def ingest(self, path: Path) -> str:
        """Upload ``path`` through the service layer (as the upload view does); the song id."""
        from werkzeug.datastructures import FileStorage

        from app.extensions import db
        from app.models import User
        from app.services.ingest import ingest_upload, parse_upload_form

        with self.app.app_context(), open(path, "rb") as stream:
            user = db.session.get(User, self.user_id)
            song = ingest_upload(user, FileStorage(stream, filename=path.name), parse_upload_form({"title": path.stem}))
            return song.id

    def start_separation(self, song_id: str, options: dict[str, Any]) -> str:
        """POST /api/v1/songs/<id>/separate; the job id."""
        response = self.client.post(f"/api/v1/songs/{song_id}/separate", json=options, headers=self.headers)
        if response.status_code != 202:
            raise SystemExit(f"POST separate: {response.status_code} {response.get_data(as_text=True)}")
        return response.get_json()["id"]

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/jobs/{job_id}", headers=self.headers)
        return response.get_json()

    def wait(self, job_ids: list[str], poll_s: float = 1.0, timeout_s: float = 7200) -> dict[str, dict[str, Any]]:
        """Poll GET /api/v1/jobs/<id> every ``poll_s`` until every job finished; the job documents.
        Exits with the worker log when one did not complete.

        Time jobs with :func:`seconds_to_finish`, not by when this loop notices them: polling every
        0.2 s made the test client's requests take ~15% of the model's speed on 2 cores (measured:
        worker forward 2.9 s per segment against 2.5 s in a plain process; the same at 2 s polling)."""
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while len(done) < len(job_ids):
            for job_id in job_ids:
                if job_id not in done and (doc := self.job(job_id))["status"] in FINISHED:
                    done[job_id] = doc
            if len(done) < len(job_ids):
                if time.monotonic() > deadline:
                    raise SystemExit(f"jobs still running after {timeout_s} s")
                time.sleep(poll_s)
        failed = [d for d in done.values() if d["status"] != "completed"]
        if failed:
            raise SystemExit(f"job {failed[0]['status']}: {failed[0].get('error')}\n{self.worker_log()}")
        return done

    def artifact_paths(self, job: dict[str, Any]) -> dict[str, Path]:
        from app.extensions import db
        from app.models import Artifact

        with self.app.app_context():
            return {kind: Path(db.session.get(Artifact, artifact_id).path)
                    for kind, artifact_id in (job.get("result") or {}).get("artifacts", {}).items()}


# ---- peak RSS of one separation job in a fresh process ----------------------------------------

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
path, model, models_dir, root = Path(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5])
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
from flask_migrate import upgrade
from werkzeug.datastructures import FileStorage
from app import create_app
from app.auth import create_user
from app.extensions import db
from app.models import Job
from app.services.ingest import ingest_upload, parse_upload_form
from app.services.jobs import create_job, run_job
from app.services.pipeline import separate_work
app = create_app({"SOCKETIO_MESSAGE_QUEUE": False, "DATABASE_URL": f"sqlite:///{root / 'rss.sqlite3'}",
                  "DATA_DIR": str(root / "data"), "MODELS_DIR": models_dir, "REDIS_URL": "redis://127.0.0.1:9/0",
                  "MAX_UPLOAD_MB": 1 << 20, "MAX_DURATION_S": 1 << 30, "WARM_MODELS": 0})
report = {}
with app.app_context():
    upgrade()
    user = create_user("rss", "rss-password")
    report["after_imports_mb"] = peak_mb()
    with open(path, "rb") as stream:
        song = ingest_upload(user, FileStorage(stream, filename=path.name), parse_upload_form({"title": path.stem}))
    report["after_ingest_mb"] = peak_mb()
    job = create_job(song, "separate", {"model": model})
    db.session.commit()
    started = time.perf_counter()
    run_job(job.id, separate_work)
    report["job_wall_s"] = time.perf_counter() - started
    job = db.session.get(Job, job.id)
    report.update(status=job.status, error=job.error, duration_s=song.duration_s,
                  compute_s=(job.result or {}).get("compute_seconds"))
report["peak_mb"] = peak_mb()
print("RSS-REPORT " + json.dumps(report), flush=True)
"""


def _proc_status_mb(pid: int, key: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def rss_child(path: Path, model: str, models_dir: Path, root: Path, limit_mb: float) -> dict[str, Any]:
    """Run the product's separation job (ingest + ``run_job(id, separate_work)``, as the worker does)
    on ``path`` in a fresh Python process; its report with ``peak_mb`` (ru_maxrss of the child).
    The child is killed once its RSS passes ``limit_mb`` (this machine is shared); the report then
    says ``status: "killed"`` and ``peak_mb`` is the high-water mark seen from /proc."""
    import shutil

    shutil.rmtree(root, ignore_errors=True)  # a fresh database and data folder (a reused --workdir has old ones)
    root.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", CHILD, str(REPO), str(path), model, str(models_dir), str(root)]
    log = open(root / "child.log", "w+")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    started, hwm, killed = time.perf_counter(), 0.0, False
    while proc.poll() is None:
        hwm = max(hwm, _proc_status_mb(proc.pid, "VmHWM") or 0.0)
        if hwm > limit_mb:
            proc.kill()
            killed = True
        time.sleep(0.25)
    wall = time.perf_counter() - started
    log.seek(0)
    text = log.read()
    log.close()
    lines = [line for line in text.splitlines() if line.startswith("RSS-REPORT ")]
    if killed or not lines:
        return {"status": "killed" if killed else "crashed", "peak_mb": hwm, "process_wall_s": wall,
                "error": f"RSS over {limit_mb:.0f} MB" if killed else text[-2000:]}
    report = json.loads(lines[-1].removeprefix("RSS-REPORT "))
    report["process_wall_s"] = wall
    return report

