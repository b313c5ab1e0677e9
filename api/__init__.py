"""The REST API: a Flask app factory with one blueprint per resource."""

from api.app import create_app
from api.config import ApiConfig

__all__ = ["ApiConfig", "create_app"]
