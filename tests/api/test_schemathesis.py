"""Schemathesis against a live system: requests generated from GET /openapi.json (valid and
invalid ones, on a fixed seed) never answer 5xx, and every answer is one the document
describes: its status code, content type, headers and body schema.

The requests go as the admin, so every route is reached; besides the generated ids (almost
all missing: 404), each operation also gets requests naming a workload, an image and a user
that exist. Left out, as they cannot run blindly: the workers' routes (`/jobs/...`, tag
`workers`), which need a worker token that only a joining worker gets (tests/security/
test_job_images.py covers them). `DELETE /logout` gets a token of its own for each request
(it revokes the token it is sent); deleting or demoting the admin is refused by the API.

schemathesis's own pytest loader (`from_fixture`) fails on pytest 9 (it sets a node's
`_nodeid`), so each operation runs as a subtest with schemathesis's Hypothesis strategies.
"""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import hypothesis.strategies as st
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN_PASSWORD, Cluster, cluster_fixture, image_bytes

EXAMPLES_PER_OPERATION = 12
LONGEST_WAIT_S = 0.2  # `wait` of the long poll: enough to wait, not to slow the run
LOGOUT_TOKENS = 3 * EXAMPLES_PER_OPERATION  # hypothesis may run a few more than max_examples
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)

cluster = cluster_fixture(workers=1)


@pytest.fixture(scope="module")
def admin_headers(cluster: Cluster) -> dict[str, str]:
    admin = cluster.login("admin", ADMIN_PASSWORD)
    return {"Authorization": f"Bearer {admin.token}"}


@pytest.fixture(scope="module")
def known(cluster: Cluster) -> dict[str, object]:
    """Ids that exist: a completed workload of 3 images, and a user."""
    admin = cluster.login("admin", ADMIN_PASSWORD)
    workload = admin.create_workload(workload_name="seen-by-schemathesis")
    for seed in range(3):
        assert admin.upload(workload["workload_id"], image_bytes(seed=seed)).status_code == 201
    admin.wait_completed(workload["workload_id"])
    user = {"username": "schemathesis-user", "password": "a-password-for-tests"}
    assert admin.post("/users", json=user).status_code == 201
    return {"workload_id": workload["workload_id"], "image_id": 0, "username": user["username"]}


@pytest.fixture(scope="module")
def logout_tokens(cluster: Cluster) -> Iterator[str]:
    """Tokens for `DELETE /logout` to revoke, one a request, taken before any failed login
    of the run can throttle this address."""
    return iter([cluster.login("admin", ADMIN_PASSWORD).token for _ in range(LOGOUT_TOKENS)])


@pytest.fixture(scope="module")
def api_schema(cluster: Cluster) -> schemathesis.BaseSchema:
    document = schemathesis.openapi.from_url(cluster.url + "/openapi.json")
    return document.exclude(tag="workers").exclude(tag="dashboard")  # pages: tests/dashboard


def cases(operation: schemathesis.APIOperation, known: dict) -> st.SearchStrategy:
    """Valid and invalid requests, and valid ones naming things that exist."""
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    path = {p.name: known[p.name] for p in operation.path_parameters if p.name in known}
    query = {p.name: known[p.name] for p in operation.query if p.name == "workload_id"}
    if path or query:
        strategies.append(operation.as_strategy(path_parameters=path, query=query))
    return st.one_of(strategies)


def shorten_wait(case: schemathesis.Case) -> None:
    """Keep the long poll's `wait` short: a run of waits of up to 8 s would take minutes."""
    wait = (case.query or {}).get("wait")
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > LONGEST_WAIT_S:
        case.query["wait"] = LONGEST_WAIT_S


def check_operation(
    operation: schemathesis.APIOperation,
    known: dict,
    admin_headers: dict,
    logout_tokens: Iterator[str],
) -> None:
    @SETTINGS
    @hypothesis.given(cases(operation, known))
    def send(case: schemathesis.Case) -> None:
        shorten_wait(case)
        headers = admin_headers
        if case.path == "/logout":
            headers = {"Authorization": f"Bearer {next(logout_tokens)}"}
        case.call_and_validate(headers=headers, checks=CHECKS)

    send()


def test_answers_conform_to_the_document(
    api_schema: schemathesis.BaseSchema,
    known: dict,
    admin_headers: dict,
    logout_tokens: Iterator[str],
    subtests: pytest.Subtests,
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 19, [operation.label for operation in operations]
    for operation in operations:
        with subtests.test(msg=operation.label):
            check_operation(operation, known, admin_headers, logout_tokens)
