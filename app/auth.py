"""JWT wiring: JSON errors for token problems, the current user, ownership checks."""

from __future__ import annotations

from typing import TypeVar

from flask_jwt_extended import get_jwt_identity

from app.errors import ApiError, error_response
from app.extensions import db, jwt
from app.models import Song, User

T = TypeVar("T")


@jwt.unauthorized_loader
def _missing_token(reason: str):
    return error_response(401, "missing_token", f"Authentication required: {reason}")


@jwt.expired_token_loader
def _expired_token(_header: dict, _payload: dict):
    return error_response(401, "token_expired", "The token has expired; refresh it or log in again")


@jwt.invalid_token_loader
def _invalid_token(reason: str):
    return error_response(401, "invalid_token", f"The token is invalid: {reason}")


@jwt.needs_fresh_token_loader
def _needs_fresh(_header: dict, _payload: dict):
    return error_response(401, "fresh_token_required", "A fresh token is required")


@jwt.revoked_token_loader
def _revoked(_header: dict, _payload: dict):
    return error_response(401, "token_revoked", "The token has been revoked")


@jwt.user_lookup_error_loader
def _unknown_user(_header: dict, _payload: dict):
    return error_response(401, "invalid_token", "The token's user no longer exists")


@jwt.user_lookup_loader
def _load_user(_header: dict, payload: dict) -> User | None:
    return db.session.get(User, int(payload["sub"]))


def current_user() -> User:
    """The authenticated user (call inside a ``@jwt_required()`` view)."""
    user = db.session.get(User, int(get_jwt_identity()))
    if user is None:
        raise ApiError(401, "invalid_token", "The token's user no longer exists")
    return user


def owned(model: type[T], obj_id: str, user: User) -> T:
    """The row if ``user`` owns it (or is an admin); 404 otherwise, so ids of others do not leak."""
    obj = db.session.get(model, str(obj_id))
    if obj is None or (obj.owner_id != user.id and not user.is_admin):
        label = model.__name__.lower()
        raise ApiError(404, f"{label}_not_found", f"No {label} with id {obj_id!r}")
    return obj


def song_for(user: User, song_id: str) -> Song:
    return owned(Song, song_id, user)


def authenticate(username: str, password: str) -> User:
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
    if user is None or not user.check_password(password):
        raise ApiError(401, "invalid_credentials", "Unknown username or wrong password")
    return user


def create_user(username: str, password: str, is_admin: bool = False) -> User:
    if not username or not password:
        raise ValueError("username and password are required")
    if db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none():
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user
