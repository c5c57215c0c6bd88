from flask import Blueprint, jsonify

from app.services.health import check_health

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    report = check_health()
    return jsonify(report), 200 if report["status"] != "down" else 503
