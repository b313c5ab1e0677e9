"""A worker token dies with the worker's membership: when the worker is declared dead or
joins anew (another process under its name), not only when the token expires.

The probe asks for an image no job of the worker holds: a live token gets that 404, a dead
one 401 `membership_ended` (which the worker takes as its jobs having been taken back).
"""

from __future__ import annotations

import os
from itertools import count

import pytest

from tests.conftest import Client, live_fake_worker, wait_until

pytestmark = pytest.mark.both_engines  # its attacks reach the datastore


LIVE = (404, "not_found")
ENDED = (401, "membership_ended")

_names = count(1)


def answer(cluster, token: str) -> tuple[int, str]:
    response = Client(cluster.url, token).get("/images/0", params={"workload_id": 1})
    return response.status_code, response.json()["error"]


def fresh_name() -> str:
    return f"mortal-{os.getpid()}-{next(_names)}"


def test_a_dead_workers_token_answers_401_even_after_the_worker_joins_again(cluster):
    name = fresh_name()
    with live_fake_worker(cluster, name) as worker:
        first = worker.accepted
        assert answer(cluster, first.worker_token) == LIVE
    # Its telemetry stopped: declared dead after 3 intervals.
    wait_until(lambda: answer(cluster, first.worker_token) == ENDED, 10, "the token to die")
    with live_fake_worker(cluster, name) as worker:
        assert worker.accepted.worker_id == first.worker_id  # the same worker, joined anew
        assert answer(cluster, worker.accepted.worker_token) == LIVE
        assert answer(cluster, first.worker_token) == ENDED


def test_a_join_under_a_live_workers_name_ends_its_token(cluster):
    """A second process joining under the name (it does not hold the membership) takes over
    the identity; the first one's token dies at once."""
    with live_fake_worker(cluster, fresh_name()) as worker:
        first = worker.accepted
        second = worker.join()
        assert answer(cluster, first.worker_token) == ENDED
        assert answer(cluster, second.worker_token) == LIVE
        assert second.token_id != first.token_id


def test_a_renewal_keeps_the_membership_and_the_tokens_of_running_jobs(cluster):
    """A live worker that re-joins with its token id (to renew its token, or after a
    controller restart) keeps its membership: the token its running jobs hold stays valid."""
    with live_fake_worker(cluster, fresh_name()) as worker:
        first = worker.accepted
        renewed = worker.join(token_id=first.token_id)
        assert renewed.token_id == first.token_id
        assert renewed.worker_token != first.worker_token
        assert answer(cluster, first.worker_token) == LIVE
        assert answer(cluster, renewed.worker_token) == LIVE
