"""HTTP only: parse, authorise, call a service, return JSON. One module per resource."""

from app.blueprints.auth import bp as auth_bp
from app.blueprints.health import bp as health_bp
from app.blueprints.jobs import bp as jobs_bp
from app.blueprints.models import bp as models_bp
from app.blueprints.songs import bp as songs_bp

ALL_BLUEPRINTS = [auth_bp, songs_bp, jobs_bp, models_bp, health_bp]
