from flask import Blueprint, jsonify, request
from flask_jwt_extended import create_access_token, create_refresh_token, get_jwt_identity, jwt_required

from app.auth import authenticate, current_user
from app.errors import ApiError
from app.services import throttle

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


@bp.post("/token")
def token():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not body.get("username") or not body.get("password"):
        raise ApiError(400, "bad_request", "Send JSON {\"username\": ..., \"password\": ...}")
    username = str(body["username"])
    throttle.check_login(username, request.remote_addr)
    try:
        user = authenticate(username, str(body["password"]))
    except ApiError:
        throttle.login_failed(username, request.remote_addr)
        raise
    throttle.login_succeeded(username, request.remote_addr)
    identity = str(user.id)
    return jsonify(access_token=create_access_token(identity), refresh_token=create_refresh_token(identity),
                   token_type="Bearer", user=user.to_dict())


@bp.post("/refresh")
@jwt_required(refresh=True)
def refresh():
    return jsonify(access_token=create_access_token(get_jwt_identity()), token_type="Bearer")


@bp.get("/me")
@jwt_required()
def me():
    return jsonify(current_user().to_dict())
