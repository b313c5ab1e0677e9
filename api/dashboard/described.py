"""How the dashboard's routes appear in the OpenAPI document: HTML pages for browsers."""

from __future__ import annotations

from collections.abc import Callable

from api.openapi import SESSION_COOKIE, Answer, binary, describe

__all__ = ["SESSION_COOKIE", "html_page"]


def html_page(
    summary: str,
    security: tuple[dict, ...] = SESSION_COOKIE,
    description: str = "",
    redirects: bool = False,
    media_type: str = "text/html",
) -> Callable:
    """Describe a dashboard route: an HTML answer (or `media_type`), or a 303 to the login
    form when the session cookie is missing, expired or revoked."""
    answers = {200: Answer("The page", {media_type: binary(media_type)})}
    if redirects or security:
        answers[303] = Answer("To the login form (no session), or on to the next page")
    return describe(
        summary, "dashboard", description=description, security=security, answers=answers
    )
