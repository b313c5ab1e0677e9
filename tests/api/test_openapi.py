"""GET /openapi.json describes every route of the app, as valid OpenAPI 3.1; GET /docs shows it
with assets the API serves itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from flask import Flask
from openapi_spec_validator import OpenAPIV31SpecValidator

from api import ApiConfig, create_app
from tests.conftest import Cluster, cluster_fixture

API_DIR = Path(__file__).resolve().parents[2] / "api"
UNDOCUMENTED_METHODS = {"HEAD", "OPTIONS"}
RULE_ARGUMENT = re.compile(r"<(?:[^:>]+:)?([^>]+)>")  # <id:workload_id> → {workload_id}

# The docs page and the document through the real server (gunicorn), without workers.
cluster = cluster_fixture(workers=0)


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Flask:
    root = tmp_path_factory.mktemp("api")
    return create_app(ApiConfig(root, root / "images", "a-test-secret-" * 4))


@pytest.fixture(scope="module")
def document(app: Flask) -> dict:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def routes(app: Flask) -> set[tuple[str, str]]:
    """Every (OpenAPI path, method) the app answers, but Flask's static files."""
    return {
        (RULE_ARGUMENT.sub(r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in set(rule.methods or ()) - UNDOCUMENTED_METHODS
    }


def operations(document: dict) -> dict[tuple[str, str], dict]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_the_document_is_valid_openapi_3_1(document: dict) -> None:
    assert document["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(document).validate()


def test_every_route_is_in_the_document_and_nothing_else(app: Flask, document: dict) -> None:
    answered = routes(app)
    documented = set(operations(document))
    assert len(answered) >= 20  # the walk found the API's routes
    assert answered - documented == set(), "routes missing from the document"
    assert documented - answered == set(), "operations without a route"
    operation_ids = [operation["operationId"] for operation in operations(document).values()]
    assert len(set(operation_ids)) == len(operation_ids)


def test_every_path_parameter_is_described(document: dict) -> None:
    for (path, method), operation in operations(document).items():
        in_path = set(re.findall(r"{(\w+)}", path))
        described = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert described == in_path, (method, path)


def test_errors_have_the_error_shape_and_token_routes_answer_401(document: dict) -> None:
    error = {"$ref": "#/components/schemas/Error"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "message"]
    for (path, method), operation in operations(document).items():
        answers = operation["responses"]
        for status, answer in answers.items():
            if int(status) >= 400:
                assert answer["content"] == {"application/json": {"schema": error}}, (path, status)
        if "429" in answers:
            assert answers["429"]["headers"]["Retry-After"]["required"], path
        needs_token = any(
            {"userToken", "workerToken"} & set(requirement) for requirement in operation["security"]
        )
        assert needs_token == ("401" in answers) or path == "/login", (method, path)


def test_the_security_schemes_and_who_may_call(document: dict) -> None:
    schemes = document["components"]["securitySchemes"]
    for token in ("userToken", "workerToken"):
        assert (schemes[token]["scheme"], schemes[token]["bearerFormat"]) == ("bearer", "JWT")
    assert schemes["basicAuth"]["scheme"] == "basic"
    found = operations(document)
    assert found[("/login", "post")]["security"] == [{"basicAuth": []}, {}]
    assert found[("/openapi.json", "get")]["security"] == []
    assert found[("/docs", "get")]["security"] == []
    for path in ("/jobs/originals", "/jobs/results"):
        assert found[(path, "post")]["security"] == [{"workerToken": []}]
        assert found[(path, "post")]["tags"] == ["workers"]


class _Links(HTMLParser):
    """The URLs a page loads: scripts, stylesheets, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append(value)


def test_both_answer_without_a_token(cluster: Cluster) -> None:
    served = requests.get(cluster.url + "/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json()["paths"]
    page = requests.get(cluster.url + "/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")


def test_the_docs_page_loads_only_assets_the_api_serves(cluster: Cluster) -> None:
    page = requests.get(cluster.url + "/docs", timeout=10)
    assert "http://" not in page.text and "https://" not in page.text
    links = _Links()
    links.feed(page.text)
    assert len(links.urls) >= 3, links.urls
    page_url = cluster.url + "/docs"
    for url in links.urls:
        absolute = urljoin(page_url, url)
        assert urlsplit(absolute).netloc == urlsplit(cluster.url).netloc, url
        asset = requests.get(absolute, timeout=10)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
        expected = "text/css" if url.endswith(".css") else "javascript"
        assert expected in asset.headers["Content-Type"], (url, asset.headers)
    starter = requests.get(urljoin(page_url, "static/docs.js"), timeout=10).text
    assert 'url: "openapi.json"' in starter
    assert "validatorUrl: null" in starter  # Swagger UI's default posts to an online validator


def test_the_vendored_assets_keep_their_licence_and_say_their_version() -> None:
    vendored = API_DIR / "static" / "swagger-ui"
    assert "Apache License" in (vendored / "LICENSE").read_text()
    readme = (vendored / "README.md").read_text()
    assert re.search(r"swagger-ui-dist@\d+\.\d+\.\d+", readme)
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "NOTICE"):
        assert (vendored / name).stat().st_size > 0, name
