"""The OpenAPI 3.1 document, assembled from the description each route carries.

Each route says what it takes and answers in one place, a `@describe(...)` right under its
`@bp.get`/`@bp.post`. `openapi_document` walks the app's url_map and makes one operation per
rule and method: the path and its parameters from the rule (its converters give their
types), the rest from the description, plus what every route shares (the error shape, the
401 of a token). A route left undescribed is left out, and tests/api/test_openapi.py fails
for it. The descriptions are data only: no request passes through them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

from api.inputs import ID_CONVERTER, MAX_ID

Schema = dict[str, Any]
View = Callable[..., Any]

OPENAPI_VERSION = "3.1.0"
OPERATION_ATTRIBUTE = "openapi_operation"
UNDOCUMENTED_METHODS = frozenset({"HEAD", "OPTIONS"})  # answered by Flask for every GET rule
STATIC_ENDPOINT = "static"  # Flask's own route to api/static: the files of the docs page
RULE_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")

# Who may call an operation: any one of these requirements (OpenAPI's `security`).
USER_TOKEN: tuple[dict, ...] = ({"userToken": []},)
WORKER_TOKEN: tuple[dict, ...] = ({"workerToken": []},)
ANY_TOKEN = USER_TOKEN + WORKER_TOKEN
LOGIN: tuple[dict, ...] = ({"basicAuth": []}, {})  # HTTP Basic, or the credentials in the body
PUBLIC: tuple[dict, ...] = ()
SESSION_COOKIE: tuple[dict, ...] = ({"sessionCookie": []},)  # the dashboard's pages
TOKEN_SCHEMES = frozenset({"userToken", "workerToken"})

SECURITY_SCHEMES = {
    "userToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A user's token, from /login; revoked by /logout or a password change.",
    },
    "workerToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A worker's token, handed to a worker when it joins the controller;"
        " it dies with the worker's membership.",
    },
    "basicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "Username and password, for /login only.",
    },
    "scrapeToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The metrics scrape token (`DPIP_METRICS_TOKEN`, or the data dir's"
        " `metrics_token`), for GET /metrics only.",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "access_token_cookie",
        "description": "The dashboard's session: a user token in an HttpOnly cookie, set by"
        " POST /ui/login. Every route takes it; a POST, PUT, PATCH or DELETE only with its CSRF"
        " value (the `csrf_access_token` cookie) in the X-CSRF-TOKEN header.",
    },
}

TAGS = [
    {"name": "auth", "description": "Log in and out."},
    {"name": "workloads", "description": "A workload: one filter applied to many images."},
    {"name": "images", "description": "Upload originals, list them, download results."},
    {"name": "users", "description": "User administration."},
    {"name": "status", "description": "The system: active workloads and workers."},
    {
        "name": "workers",
        "description": "For DPIP's workers only (a worker token): the images of their jobs,"
        " in batches. A user token answers 403.",
    },
    {"name": "docs", "description": "This document and its interactive page."},
    {"name": "dashboard", "description": "The web dashboard's HTML pages (for browsers)."},
]

ERROR_REF = "#/components/schemas/Error"
ERROR_SCHEMA: Schema = {
    "type": "object",
    "description": "Every error: a code for programs and a message for people.",
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. `not_found`"},
        "message": {"type": "string", "description": "what went wrong and what to send"},
    },
    "required": ["error", "message"],
    "additionalProperties": False,
}
TOKEN_ERRORS = (
    "No usable token: `missing_token`, `invalid_token`, `token_expired`, `token_revoked`"
    " (logout or password change), `unknown_user` (deleted); for a worker token also"
    " `membership_ended`."
)
# The "when" of errors that many routes answer.
WORKER_FORBIDDEN = "`forbidden`: a worker token (workers may only move their jobs' images)."
TOO_LARGE = "`payload_too_large`: the body is over the upload limit (`DPIP_MAX_UPLOAD_BYTES`)."
RETRY_AFTER = {
    "description": "Whole seconds to wait before the next try.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}

COMPONENTS: dict[str, Schema] = {"Error": ERROR_SCHEMA}

# Small schemas that many bodies share.
COUNT: Schema = {"type": "integer", "minimum": 0}
ID: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
TIME: Schema = {"type": "string", "format": "date-time", "description": "ISO 8601, in UTC"}
TEXT: Schema = {"type": "string"}
TEXT_OR_NULL: Schema = {"type": ["string", "null"]}


def component(name: str, schema: Schema) -> Schema:
    """Name `schema` among the document's components; return a reference to it."""
    if COMPONENTS.setdefault(name, schema) is not schema:
        raise ValueError(f"two schemas are named {name!r}")
    return {"$ref": f"#/components/schemas/{name}"}


def choice(values: Iterable[str]) -> Schema:
    """One of these texts (an enum's values)."""
    return {"type": "string", "enum": list(values)}


def object_of(properties: Mapping[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    """A JSON object with exactly these properties, each required unless `optional`."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def fields_of(properties: Mapping[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """Request fields: an object with these properties (others are ignored by the API)."""
    schema: Schema = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    return schema


def fields_body(schema: Schema) -> dict[str, Schema]:
    """The media types of request fields: a JSON object, or form fields (`-d` or `-F`)."""
    return {
        "application/json": schema,
        "application/x-www-form-urlencoded": schema,
        "multipart/form-data": schema,
    }


def binary(media_type: str) -> Schema:
    """A body of bytes (an image, an archive) of `media_type`."""
    return {"type": "string", "contentMediaType": media_type}


def query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


@dataclass(frozen=True)
class Answer:
    """A successful answer: what it means, its body by media type, its headers."""

    description: str
    content: Mapping[str, Schema] = field(default_factory=dict)
    headers: Mapping[str, Schema] = field(default_factory=dict)

    def render(self) -> Schema:
        rendered: Schema = {"description": self.description}
        if self.content:
            rendered["content"] = {
                media_type: {"schema": schema} for media_type, schema in self.content.items()
            }
        if self.headers:
            rendered["headers"] = dict(self.headers)
        return rendered


def json_answer(description: str, schema: Schema) -> Answer:
    return Answer(description, {"application/json": schema})


@dataclass(frozen=True)
class Operation:
    """What one route takes and answers (for each of its methods).

    `errors` maps each error status the route answers to when (and with which codes); the
    body of each is the error shape. A token-secured route also answers 401, added here.
    """

    summary: str
    tag: str
    answers: Mapping[int, Answer]
    errors: Mapping[int, str] = field(default_factory=dict)
    description: str = ""
    security: tuple[dict, ...] = USER_TOKEN
    parameters: tuple[Schema, ...] = ()
    body: Mapping[str, Schema] | None = None  # media type → schema
    body_required: bool = False

    def render(self, operation_id: str, path_parameters: list[Schema]) -> Schema:
        rendered: Schema = {
            "operationId": operation_id,
            "summary": self.summary,
            "tags": [self.tag],
            "security": list(self.security),
            "parameters": path_parameters + list(self.parameters),
            "responses": {str(status): answer.render() for status, answer in self.answers.items()}
            | {str(status): _error_answer(status, when) for status, when in self._errors()},
        }
        if self.description:
            rendered["description"] = self.description
        if self.body is not None:
            rendered["requestBody"] = {
                "required": self.body_required,
                "content": {
                    media_type: {"schema": schema} for media_type, schema in self.body.items()
                },
            }
        return rendered

    def _errors(self) -> list[tuple[int, str]]:
        errors = dict(self.errors)
        if any(TOKEN_SCHEMES & set(requirement) for requirement in self.security):
            errors.setdefault(401, TOKEN_ERRORS)
        return sorted(errors.items())


def _error_answer(status: int, when: str) -> Schema:
    answer: Schema = {
        "description": when,
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }
    if status == 429:
        answer["headers"] = {"Retry-After": RETRY_AFTER}
    return answer


def describe(summary: str, tag: str, **details: Any) -> Callable[[View], View]:
    """Attach what a route takes and answers to its view (`details`: `Operation`'s fields)."""
    operation = Operation(summary, tag, **details)

    def attach(view: View) -> View:
        setattr(view, OPERATION_ATTRIBUTE, operation)
        return view

    return attach


def _path_parameter(converter: str | None, name: str) -> Schema:
    if converter == ID_CONVERTER:
        schema = ID
    elif converter in (None, "default", "string"):
        schema = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
    else:
        raise ValueError(f"no OpenAPI schema for the URL converter {converter!r}")
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _path_of(rule: Rule) -> tuple[str, list[Schema]]:
    """The rule as an OpenAPI path (`/workloads/{workload_id}`) and its parameters."""
    parameters = [
        _path_parameter(match["converter"], match["name"])
        for match in RULE_ARGUMENT.finditer(rule.rule)
    ]
    return RULE_ARGUMENT.sub(r"{\g<name>}", rule.rule), parameters


def documented_methods(rule: Rule) -> list[str]:
    """The methods of `rule` the document must describe (all but HEAD and OPTIONS)."""
    return sorted(set(rule.methods or ()) - UNDOCUMENTED_METHODS)


def openapi_document(app: Flask) -> Schema:
    """Build the document from the routes of `app` that carry a description."""
    paths: dict[str, dict[str, Schema]] = {}
    for rule in app.url_map.iter_rules():
        operation = getattr(app.view_functions[rule.endpoint], OPERATION_ATTRIBUTE, None)
        if rule.endpoint == STATIC_ENDPOINT or operation is None:
            continue
        path, parameters = _path_of(rule)
        methods = documented_methods(rule)
        view_name = rule.endpoint.rsplit(".", 1)[-1]
        for method in methods:
            operation_id = view_name if len(methods) == 1 else f"{view_name}_{method.lower()}"
            paths.setdefault(path, {})[method.lower()] = operation.render(operation_id, parameters)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "DPIP",
            "version": version("dpip"),
            "description": "Distributed image processing: create a workload, upload images,"
            " follow its progress, download the filtered results. Errors are JSON"
            ' `{"error", "message"}`. See user-guide.md, "The REST API".',
        },
        "tags": TAGS,
        "security": list(USER_TOKEN),
        "paths": paths,
        "components": {"schemas": dict(COMPONENTS), "securitySchemes": SECURITY_SCHEMES},
    }
