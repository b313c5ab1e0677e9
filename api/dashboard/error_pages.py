"""An error on a dashboard page answers with a page a person can read and leave, in the
status the JSON API would use; the page's own requests (htmx, fetch) keep the JSON shape,
which its script shows."""

from __future__ import annotations

from flask import render_template, request
from werkzeug.exceptions import HTTPException

from api.dashboard.blueprint import bp
from api.dashboard.session import session_principal
from api.errors import ANSWERS, APIError, error_answer, error_response


def _error_page(e: Exception):
    status, code, message = error_answer(e)
    if request.method != "GET" or request.headers.get("HX-Request"):
        return error_response(status, code, message)
    principal = session_principal()
    page = render_template("error.html", principal=principal, status=status, message=message)
    return page, status


# The errors a page's own code raises; a session's (flask-jwt-extended's) keep their
# handlers, and anything unexpected stays the API's logged 500.
for _error in (APIError, HTTPException, *ANSWERS):
    bp.register_error_handler(_error, _error_page)
