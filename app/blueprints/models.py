from flask import Blueprint, jsonify
from flask_jwt_extended import jwt_required

from app.services.models_catalog import list_models

bp = Blueprint("models", __name__, url_prefix="/api/v1/models")


@bp.get("")
@jwt_required()
def index():
    return jsonify(list_models())
