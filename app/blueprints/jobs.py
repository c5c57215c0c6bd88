from flask import Blueprint, jsonify
from flask_jwt_extended import jwt_required

from app.auth import current_user
from app.services.jobs import job_for, request_cancel

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")


@bp.get("/<job_id>")
@jwt_required()
def show(job_id: str):
    return jsonify(job_for(current_user(), job_id).to_dict())


@bp.post("/<job_id>/cancel")
@jwt_required()
def cancel(job_id: str):
    job = request_cancel(job_for(current_user(), job_id))
    return jsonify(job.to_dict()), 202
