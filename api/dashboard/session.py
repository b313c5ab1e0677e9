"""The dashboard's session: a login form that sets the token as an HttpOnly cookie, a
log-out that revokes it, and the guard of every page.

The form's password check is POST /login's (`api.auth.verify_password`), throttle included.
The cookie holds a token minted with a CSRF value; flask-jwt-extended refuses a cookie on a
state-changing request without that value in the X-CSRF-TOKEN header (api/tokens.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, make_response, redirect, render_template, request, url_for
from flask_jwt_extended import (
    jwt_required,
    set_access_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from werkzeug.exceptions import HTTPException

from api.auth import revoke_current_token, verify_password
from api.dashboard.blueprint import bp
from api.dashboard.described import SESSION_COOKIE, html_page
from api.tokens import Principal, current_principal, mint_user_token

COOKIE_ONLY = ["cookies"]  # a page is never authorised by a header: a browser has none


def _to_login() -> Response:
    """Send the browser to the login form (an htmx request: by its HX-Redirect header)."""
    target = url_for("dashboard.login_form")
    if request.headers.get("HX-Request"):
        response = make_response("", 200)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)


def session_principal() -> Principal | None:
    """The person the request's cookie belongs to, or None (no, bad, expired or revoked)."""
    try:
        verify_jwt_in_request(locations=COOKIE_ONLY)
    except (JWTExtendedException, PyJWTError):
        return None
    principal = current_principal()
    return None if principal is None or principal.is_worker else principal


def page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Run `view(principal, ...)` for a logged-in person; send anyone else to the login."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        principal = session_principal()
        if principal is None:
            return _to_login()
        return view(principal, *args, **kwargs)

    return guarded


def _form(message: str = "", status: int = 200, username: str = "") -> tuple[str, int]:
    return render_template("login.html", message=message, username=username), status


@bp.get("/ui/login")
@html_page("The dashboard's login form", security=())
def login_form():
    return _form()


@bp.post("/ui/login")
@html_page(
    "Log in to the dashboard",
    security=(),
    description="The form's fields `username` and `password`, checked and throttled as POST"
    " /login. On success, a 303 to the overview with the token in an HttpOnly, SameSite=Strict"
    " cookie and its CSRF value in a cookie the page's script reads; otherwise the form again"
    " (401, or 429 while throttled).",
    redirects=True,
)
def login_submit():
    username = request.form.get("username", "")
    try:
        user = verify_password(username, request.form.get("password", ""))
    except HTTPException as e:  # the throttle's 429, with Retry-After
        if e.response is None or e.response.status_code != 429:
            raise
        retry_after = e.response.headers["Retry-After"]
        return _form(f"Too many failed logins; try again in {retry_after} s.", 429, username)
    if user is None:
        return _form("Wrong username or password.", 401, username)
    response = redirect(url_for("dashboard.overview"), 303)
    set_access_cookies(response, mint_user_token(user, with_csrf=True))
    return response


@bp.post("/ui/logout")
@html_page(
    "Log out of the dashboard: revoke the cookie's token",
    security=SESSION_COOKIE,
    description="Needs the X-CSRF-TOKEN header. Answers an empty page with HX-Redirect to the"
    " login form, and clears the cookies.",
)
@jwt_required(locations=COOKIE_ONLY)
def end_session():
    revoke_current_token()
    response = make_response("", 200)
    response.headers["HX-Redirect"] = url_for("dashboard.login_form")
    unset_jwt_cookies(response)
    return response
