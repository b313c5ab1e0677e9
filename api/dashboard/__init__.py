"""The web dashboard, served by the API: server-rendered pages for people in a browser."""

from api.dashboard import error_pages, overview, session, users_page, workload_page
from api.dashboard.blueprint import bp

__all__ = ["bp", "error_pages", "overview", "session", "users_page", "workload_page"]
