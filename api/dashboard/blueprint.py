"""The dashboard's blueprint: its templates, and the security headers of its pages."""

from __future__ import annotations

from flask import Blueprint, Response

bp = Blueprint("dashboard", __name__, template_folder="templates")

# Scripts, styles and images only from the API itself: no inline script can run, so text a
# user typed can never become code even if a template forgot to escape it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)


@bp.after_request
def _secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
