"""POST /songs/<id>/separate with output and quality options: validation, job params, cache keys,
and the separation work writing every stem in the chosen format, sample-aligned with the upload.
The work runs in-process here (no worker), as in test_pitch."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from app.audio.io import decode
from app.extensions import db
from app.models import Job, Song
from app.services.jobs import Progress, create_job
from app.services.pipeline import separate_work
from app.services.separation_options import DEFAULTS, parse_options
from tests.audio.signal_checks import correlation, xcorr_lag

SONG = "separation/musicdelta-80s-rock/mixture.flac"


def _upload(client, auth, shared_data, song: str = SONG) -> str:
    data = {"file": (io.BytesIO((shared_data / song).read_bytes()), Path(song).name)}
    resp = client.post("/api/v1/songs", data=data, headers=auth, content_type="multipart/form-data")
    assert resp.status_code == 201
    return resp.get_json()["id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"format": "aiff"}, "format must be one of wav, flac, mp3, m4a, ogg"),
        ({"format": "flac", "bitrate": 320}, "bitrate applies to mp3, m4a, ogg only; flac is lossless"),
        ({"format": "mp3", "bitrate": 640}, "bitrate for mp3 must be 32..320 kbps"),
        ({"format": "mp3", "bitrate": "high"}, "bitrate must be an integer"),
        ({"format": "m4a", "sample_format": "s24"}, "sample_format applies to wav and flac only"),
        ({"format": "flac", "sample_format": "f32"}, "sample_format for flac must be one of s16, s24"),
        ({"stems": "four"}, "stems must be one of two, all"),
        ({"shifts": 2}, "shifts tune Demucs models only; spleeter takes none"),
        ({"model": "spleeter", "segment": 5, "overlap": 0.5}, "segment, overlap tune Demucs models only"),
    ],
)
def test_invalid_options_are_400(client, auth, shared_data, body, message):
    sid = _upload(client, auth, shared_data)
    resp = client.post(f"/api/v1/songs/{sid}/separate", headers=auth, json={"model": "spleeter", **body})
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_parameter" and message in error["message"]
    assert client.get(f"/api/v1/songs/{sid}", headers=auth).get_json()["jobs"] == []  # nothing started


@pytest.mark.parametrize(
    ("body", "message"),
    [({"shifts": 11}, "shifts must be 0..10"), ({"shifts": -1}, "shifts must be 0..10"),
     ({"overlap": 0.99}, "overlap must be at least 0 and below 0.99"), ({"overlap": -0.1}, "overlap"),
     ({"segment": 0}, "segment must be above 0 and at most 7.8 s for htdemucs"), ({"segment": 8}, "at most 7.8"),
     ({"shifts": True}, "shifts must be an integer")],
)
def test_demucs_tuning_ranges(app, body, message):
    from app.errors import ApiError

    with app.app_context(), pytest.raises(ApiError) as caught:
        parse_options(body, "htdemucs")
    assert caught.value.status == 400 and message in caught.value.message


def test_options_normalise_and_defaults_are_the_default_request(app):
    with app.app_context():
        assert parse_options({}, "spleeter") is None
        assert parse_options({"format": "FLAC", "sample_format": "s16", "stems": "two"}, "spleeter") is None
        assert parse_options({"format": "mp3"}, "spleeter") == dict(DEFAULTS, format="mp3", bitrate=192,
                                                                      sample_format=None)
        tuned = parse_options({"shifts": 2, "overlap": 0.5, "segment": 6, "stems": "all"}, "htdemucs")
        assert tuned == dict(DEFAULTS, shifts=2, overlap=0.5, segment=6.0, stems="all")


def test_job_params_carry_the_options_and_the_default_stays_as_it_was(app, client, auth, shared_data):
    sid = _upload(client, auth, shared_data)
    resp = client.post(f"/api/v1/songs/{sid}/separate", headers=auth, json={"model": "spleeter"})
    assert resp.status_code == 202 and resp.get_json()["params"] == {"model": "spleeter"}
    with app.app_context():  # let the next request start (no worker runs here)
        for job in db.session.get(Song, sid).jobs:
            job.status = "canceled"
        db.session.commit()
    resp = client.post(f"/api/v1/songs/{sid}/separate", headers=auth,
                       json={"model": "spleeter", "format": "ogg", "bitrate": 128, "stems": "all"})
    assert resp.status_code == 202
    assert resp.get_json()["params"]["output"] == dict(DEFAULTS, format="ogg", bitrate=128, sample_format=None,
                                                       stems="all")


def _separate(app, song_id: str, output: dict | None) -> dict:
    with app.app_context():
        params = {"model": "spleeter", **({"output": output} if output else {})}
        job = create_job(db.session.get(Song, song_id), "separate", params)
        db.session.commit()
        return separate_work(db.session.get(Job, job.id), Progress(job))


@pytest.mark.parametrize(
    ("fmt", "extra", "mime", "exact"),
    [("wav", {"sample_format": "f32"}, "audio/wav", True), ("flac", {"sample_format": "s24"}, "audio/flac", True),
     ("m4a", {"bitrate": 256}, "audio/mp4", False), ("ogg", {"bitrate": 160}, "audio/ogg", False),
     ("mp3", {"bitrate": 320}, "audio/mpeg", False)],
)
def test_stems_in_each_format_sum_back_to_the_upload(app, client, auth, shared_data, fmt, extra, mime, exact):
    """Spleeter's stems sum to the mix, so decoded vocals + instrumental must give the upload back:
    same length and lag 0 for every format (exactly, within 24-bit/float precision, for PCM)."""
    sid = _upload(client, auth, shared_data)
    default = _separate(app, sid, None)
    options = {**DEFAULTS, "format": fmt, "sample_format": None, "stems": "all", **extra}
    result = _separate(app, sid, options)
    assert result["cache_hit"] is False and set(result["artifacts"]) == {
        "vocals", "instrumental", "vocals_mp3", "instrumental_mp3"}
    assert set(result["artifacts"].values()).isdisjoint(default["artifacts"].values())
    assert _separate(app, sid, options)["cache_hit"] is True
    assert _separate(app, sid, None)["cache_hit"] is True  # the default files are still there, untouched

    mix = decode(shared_data / SONG)
    stems = []
    for name in ("vocals", "instrumental"):
        resp = client.get(f"/api/v1/songs/{sid}/files/{name}", headers=auth)
        assert resp.status_code == 200 and resp.mimetype == mime
        assert resp.headers["Content-Disposition"].endswith(f"{name}.{fmt}")
        path = Path(app.config["OUTPUT_DIR"]) / "stem.bin"
        path.write_bytes(resp.data)
        stems.append(decode(path))
    total = stems[0].samples + stems[1].samples
    assert total.shape == mix.samples.shape
    assert xcorr_lag(mix.samples, total) == 0
    if exact:
        np.testing.assert_allclose(total, mix.samples, atol=1e-4)
    else:
        assert correlation(mix.samples, total) > 0.98
    with app.app_context():
        mp3 = decode(db.session.get(Song, sid).artifacts[-1].path)  # the karaoke MP3 copies
        assert mp3.samples.shape == mix.samples.shape


def test_separation_result_carries_quality(app, client, auth, shared_data):
    sid = _upload(client, auth, shared_data)
    result = _separate(app, sid, None)
    measures = result["quality"]
    assert measures["reconstruction_error_db"] < -40  # Spleeter's stems sum back to the mix
    residue = measures["vocal_residue"]
    assert residue["singing_seconds"] > 3 and residue["residue_db"] is not None
    assert measures["seconds"] >= 0


def test_cache_hit_returns_the_stored_quality(app, client, auth, shared_data):
    sid = _upload(client, auth, shared_data)
    first = _separate(app, sid, None)
    again = _separate(app, sid, None)
    assert again["cache_hit"] is True and again["artifacts"] == first["artifacts"]
    assert again["quality"] == first["quality"] and again["quality"]["reconstruction_error_db"] < -40
    files = client.get(f"/api/v1/songs/{sid}", headers=auth).get_json()
    stems = {a["kind"]: a for a in files["artifacts"]}
    assert stems["vocals"]["metrics"] == first["quality"]  # stored with every stem artifact


def test_cancel_while_separating_stops_within_a_chunk_and_leaves_nothing(app, client, auth, shared_data,
                                                                          monkeypatch):
    from app.services import jobs, storage

    monkeypatch.setattr(jobs, "CANCEL_CHECK_INTERVAL_S", 0.0)
    sid = _upload(client, auth, shared_data, "songs-en/jonathan-coulton-better/audio.mp3")  # 17 Spleeter chunks
    with app.app_context():
        job = create_job(db.session.get(Song, sid), "separate", {"model": "spleeter"})
        db.session.commit()
        job_id = job.id
    chunks_after_cancel = []
    original = jobs.Progress.__call__

    def spy(self, fraction, stage):  # the job's own progress: cancel through the API at the first chunk
        if stage == "separating" and 0 < fraction < 1:
            if not chunks_after_cancel:
                assert client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth).status_code == 202
            chunks_after_cancel.append(fraction)
        original(self, fraction, stage)

    monkeypatch.setattr(jobs.Progress, "__call__", spy)

    with app.app_context():
        jobs.run_job(job_id, separate_work)
        job = db.session.get(Job, job_id)
        assert job.status == "canceled" and not job.song.artifacts
        out = storage.output_dir(sid)
        assert not [p for p in out.rglob("*") if p.is_file()]  # no stem, no staging folder left
    assert len(chunks_after_cancel) == 1  # no chunk ran after the cancel request


def test_six_stem_demucs_job_writes_every_source(app, client, auth, shared_data, tmp_path, monkeypatch):
    from tests.audio.demucs_fixtures import make_demucs_repo

    make_demucs_repo(tmp_path / "models", "htdemucs_6s")
    monkeypatch.setitem(app.config, "MODELS_DIR", str(tmp_path / "models"))
    sid = _upload(client, auth, shared_data)
    with app.app_context():
        params = {"model": "htdemucs_6s", "output": {**DEFAULTS, "format": "flac", "sample_format": "s16",
                                                     "stems": "all", "bitrate": None}}
        job = create_job(db.session.get(Song, sid), "separate", params)
        db.session.commit()
        result = separate_work(db.session.get(Job, job.id), Progress(job))
        assert set(result["artifacts"]) == {"vocals", "instrumental", "drums", "bass", "other", "guitar", "piano",
                                            "vocals_mp3", "instrumental_mp3"}
        assert result["forward_seconds"] > 0 and result["oom_retries"] == 0
        mix = decode(db.session.get(Song, sid).upload_path)
        for artifact in db.session.get(Song, sid).artifacts:
            if artifact.kind in result["artifacts"]:
                assert decode(artifact.path).samples.shape == mix.samples.shape


def test_a_5_1_upload_separates_with_stereo_mp3_copies(app, client, auth, shared_data, tmp_path):
    """MP3 holds two channels: the karaoke copies of a 5.1 upload are its stereo downmix, while the
    stems keep all six channels and sum back to the upload."""
    import soundfile as sf

    stereo = decode(shared_data / SONG)
    left, right = stereo.samples
    surround = np.stack([left, right, 0.5 * (left + right), 0.1 * left, 0.5 * left, 0.5 * right])  # FL FR FC LFE BL BR
    path = tmp_path / "surround.wav"
    sf.write(path, surround.T, stereo.sample_rate, subtype="FLOAT")
    data = {"file": (io.BytesIO(path.read_bytes()), "surround.wav")}
    resp = client.post("/api/v1/songs", data=data, headers=auth, content_type="multipart/form-data")
    assert resp.status_code == 201
    sid = resp.get_json()["id"]
    result = _separate(app, sid, None)
    with app.app_context():
        files = {a.kind: a.path for a in db.session.get(Song, sid).artifacts}
    vocals, instrumental = decode(files["vocals"]), decode(files["instrumental"])
    assert vocals.samples.shape == surround.shape
    np.testing.assert_allclose(vocals.samples + instrumental.samples, surround, atol=1e-3)
    copies = [decode(files[k]) for k in ("vocals_mp3", "instrumental_mp3")]
    assert all(c.samples.shape == (2, surround.shape[1]) for c in copies)
    mixed = copies[0].samples + copies[1].samples  # the downmix of the upload: left = FL + .707 FC + .707 BL
    expected_left = (left + 0.7071 * 0.5 * (left + right) + 0.7071 * 0.5 * left) / 2.4142
    assert xcorr_lag(expected_left[None, :], mixed[:1]) == 0 and correlation(expected_left[None, :], mixed[:1]) > 0.98
    assert result["cache_hit"] is False


def test_a_song_deleted_while_its_job_writes_leaves_nothing_behind(app, client, auth, shared_data, monkeypatch):
    """DELETE /songs/<id> while a separation job is moving its files into place: the job's files
    and rows go too (before, the stems it published after the delete stayed on disk)."""
    from app.models import Artifact
    from app.services import jobs, pipeline, storage

    sid = _upload(client, auth, shared_data)
    with app.app_context():
        job = create_job(db.session.get(Song, sid), "separate", {"model": "spleeter"})
        db.session.commit()
        job_id = job.id
    publish = pipeline._publish

    def delete_then_publish(staging: Path, final_dir: Path) -> dict[str, Path]:
        assert client.delete(f"/api/v1/songs/{sid}", headers=auth).status_code == 204
        return publish(staging, final_dir)

    monkeypatch.setattr(pipeline, "_publish", delete_then_publish)
    with app.app_context():
        jobs.run_job(job_id, separate_work)
        assert db.session.get(Song, sid) is None and db.session.get(Job, job_id) is None
        assert db.session.query(Artifact).filter_by(song_id=sid).count() == 0
        leftovers = [p for d in (storage.upload_dir(sid), storage.output_dir(sid), *storage.karaoke_dirs(sid))
                     if d.exists() for p in d.rglob("*")]
        assert leftovers == []
