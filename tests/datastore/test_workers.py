"""Worker rows: a join keeps the worker's id; its membership goes on only when renewed."""

from __future__ import annotations

import pytest

from datastore import bearers, transaction, workers


def register(conn, renewing_token_id: str = "") -> workers.Membership:
    with transaction(conn) as db:
        return workers.register_worker(db, "w", [], 1, "127.0.0.1", 9, 100, renewing_token_id)


def test_a_live_worker_presenting_its_token_id_keeps_its_membership(conn) -> None:
    first = register(conn)
    assert not first.renewed
    renewed = register(conn, first.token_id)
    assert renewed == workers.Membership(first.worker_id, first.token_id, renewed=True)
    assert workers.holds_token(conn, first.worker_id, first.token_id)


@pytest.mark.parametrize("presented", ["", "someone-elses", None])
def test_any_other_join_starts_a_new_membership(conn, presented) -> None:
    first = register(conn)
    second = register(conn, presented or "")
    assert second.worker_id == first.worker_id
    assert not second.renewed
    assert second.token_id != first.token_id
    assert not workers.holds_token(conn, first.worker_id, first.token_id)
    assert workers.holds_token(conn, first.worker_id, second.token_id)


def test_a_dead_workers_membership_ends_and_is_not_renewed(conn) -> None:
    first = register(conn)
    with transaction(conn) as db:
        workers.mark_dead(db, first.worker_id)
    assert not workers.holds_token(conn, first.worker_id, first.token_id)
    rejoined = register(conn, first.token_id)
    assert not rejoined.renewed
    assert rejoined.token_id != first.token_id


def test_no_token_id_holds_nothing(conn) -> None:
    first = register(conn)
    assert not workers.holds_token(conn, first.worker_id, None)
    assert not workers.holds_token(conn, first.worker_id + 1, first.token_id)


def test_a_workers_token_counts_only_for_its_live_membership(conn) -> None:
    first = register(conn)
    assert not bearers.worker_bearer(conn, first.worker_id, "jti", first.token_id).revoked
    assert bearers.worker_bearer(conn, first.worker_id, "jti", None).revoked
    second = register(conn)
    assert bearers.worker_bearer(conn, first.worker_id, "jti", first.token_id).revoked
    with transaction(conn) as db:
        workers.mark_dead(db, first.worker_id)
    assert bearers.worker_bearer(conn, first.worker_id, "jti", second.token_id).revoked
    assert bearers.worker_bearer(conn, first.worker_id + 1, "jti", second.token_id) is None
