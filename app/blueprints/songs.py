from flask import Blueprint, jsonify, request, send_file
from flask_jwt_extended import jwt_required

from app.auth import current_user, song_for
from app.services import songs as song_service
from app.services.ingest import ingest_upload, parse_upload_form
from app.services.lyrics import edit_lyrics, lyrics_history

bp = Blueprint("songs", __name__, url_prefix="/api/v1/songs")


@bp.post("")
@jwt_required()
def create():
    user = current_user()
    upload_request = parse_upload_form(request.form, request.files)
    song = ingest_upload(user, request.files.get("file"), upload_request)
    jobs = song_service.start_auto(song, upload_request) if upload_request.auto_process else []
    return jsonify(song_service.song_detail(song, started=jobs)), 201


@bp.get("")
@jwt_required()
def index():
    return jsonify(song_service.list_songs(current_user(), request.args))


@bp.get("/<song_id>")
@jwt_required()
def show(song_id: str):
    return jsonify(song_service.song_detail(song_for(current_user(), song_id)))


@bp.delete("/<song_id>")
@jwt_required()
def delete(song_id: str):
    song_service.delete_song(song_for(current_user(), song_id))
    return "", 204


@bp.post("/<song_id>/<any(separate, transcribe, karaoke):kind>")
@jwt_required()
def start(song_id: str, kind: str):
    song = song_for(current_user(), song_id)
    jobs = song_service.start_kind(song, kind, request.get_json(silent=True) or {})
    return jsonify(jobs[-1].to_dict() | {"jobs": [j.to_dict() for j in jobs]}), 202


@bp.get("/<song_id>/files/<name>")
@jwt_required()
def download(song_id: str, name: str):
    path, mime, download_name = song_service.file_for(song_for(current_user(), song_id), name)
    return send_file(path, mimetype=mime, download_name=download_name, conditional=True, max_age=0)


@bp.get("/<song_id>/pitch")
@jwt_required()
def pitch(song_id: str):
    return jsonify(song_service.pitch_document(song_for(current_user(), song_id)))


@bp.get("/<song_id>/lyrics")
@jwt_required()
def lyrics(song_id: str):
    return jsonify(lyrics_history(song_for(current_user(), song_id)))


@bp.put("/<song_id>/lyrics")
@jwt_required()
def edit(song_id: str):
    user = current_user()
    revision, jobs = edit_lyrics(song_for(user, song_id), user, request.get_json(silent=True))
    body = {"revision": revision.to_dict(), "jobs": [j.to_dict() for j in jobs]}
    return jsonify(body), 202 if jobs else 200
