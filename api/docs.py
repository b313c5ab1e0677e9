"""The API described for tools and people: GET /openapi.json and GET /docs.

Both answer without a token, like /login, and read no body and nothing from the datastore:
the document is built once, when the app is made, from the routes' own descriptions
(`api.openapi`), and kept as bytes; the page is a constant that loads Swagger UI from
api/static (vendored at a pinned version, see api/static/swagger-ui/README.md), so it
fetches nothing but this API. So an anonymous request costs what a small static file does.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app

from api.openapi import PUBLIC, Answer, binary, describe, json_answer, openapi_document

bp = Blueprint("docs", __name__)

DOCUMENT_EXTENSION = "dpip_openapi_document"

# Relative links, so the page works behind a proxy that serves the API under a prefix.
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DPIP API</title>
<link rel="stylesheet" href="static/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="static/docs.js"></script>
</body>
</html>
"""


def install_document(app: Flask) -> None:
    """Build the OpenAPI document of `app`'s routes; call it once every blueprint is in."""
    app.extensions[DOCUMENT_EXTENSION] = app.json.dumps(openapi_document(app)).encode()


@bp.get("/openapi.json")
@describe(
    "This document",
    "docs",
    security=PUBLIC,
    answers={
        200: json_answer(
            "The OpenAPI 3.1 document of this API, built from the code of its routes.",
            {"type": "object"},
        )
    },
)
def openapi_json() -> Response:
    return Response(current_app.extensions[DOCUMENT_EXTENSION], mimetype="application/json")


@bp.get("/docs")
@describe(
    "An interactive page of this document",
    "docs",
    description="Swagger UI, served from the API itself (no CDN); log in at /login"
    " and paste the token under Authorize to try the routes.",
    security=PUBLIC,
    answers={200: Answer("The page", {"text/html": binary("text/html")})},
)
def docs_page() -> Response:
    return Response(DOCS_PAGE, mimetype="text/html")
