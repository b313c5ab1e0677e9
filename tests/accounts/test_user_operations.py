"""Creating and deleting users on a real datastore and image store: the one path for both."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import datastore
from accounts import UnknownUser, WeakPassword, create_user, delete_user, ensure_user
from datastore import transaction, users, workloads
from imagestore import ImageName, LocalImageStore
from protocol import UserRole

PASSWORD = "long-enough-1"


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = datastore.connect(tmp_path / "db.sqlite3")
    yield connection
    connection.close()


@pytest.fixture
def store(tmp_path: Path) -> LocalImageStore:
    return LocalImageStore(tmp_path / "images")


def _workload_with_an_image(
    conn: sqlite3.Connection, store: LocalImageStore, user_id: int, name: str
) -> str:
    """Make a workload with one original, as an upload does; return its directory name."""
    with transaction(conn) as db:
        workload = workloads.create_workload(db, user_id, name, "grayscale", {}, [])
    staged = store.put(workload["dir_name"], io.BytesIO(b"pixels"))
    with staged, transaction(conn) as db:
        number = workloads.add_original(db, workload["id"], "PNG", 1, 1)
        staged.commit(ImageName(number, "original", "png"))
    return workload["dir_name"]


def test_delete_user_takes_their_rows_and_files_and_leaves_others(conn, store):
    alice = create_user(conn, "alice", PASSWORD)["id"]
    bob = create_user(conn, "bob", PASSWORD)["id"]
    alice_dirs = [_workload_with_an_image(conn, store, alice, n) for n in ("cats", "dogs")]
    bob_dir = _workload_with_an_image(conn, store, bob, "birds")

    assert delete_user(conn, store, "alice") == 2

    assert users.find_user_by_name(conn, "alice") is None
    assert workloads.list_workloads(conn, alice) == []
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1  # bob's
    for directory in alice_dirs:
        assert not (store.root / directory).exists()
    assert store.list_workload(bob_dir) == [ImageName(0, "original", "png")]
    assert conn.in_transaction is False


def test_deleting_an_unknown_user_changes_nothing(conn, store):
    create_user(conn, "alice", PASSWORD)
    with pytest.raises(UnknownUser, match="'carol' does not exist"):
        delete_user(conn, store, "carol")
    assert [row["username"] for row in users.list_users(conn)] == ["alice"]
    assert conn.in_transaction is False


def test_create_user_refuses_a_weak_password_and_writes_nothing(conn):
    with pytest.raises(WeakPassword):
        create_user(conn, "alice", "short")
    assert users.find_user_by_name(conn, "alice") is None


def test_ensure_user_checks_the_rule_only_for_a_user_it_creates(conn):
    with pytest.raises(WeakPassword):
        ensure_user(conn, "admin", "short", UserRole.ADMIN)
    assert users.find_user_by_name(conn, "admin") is None
    assert ensure_user(conn, "admin", PASSWORD, UserRole.ADMIN) is True
    assert ensure_user(conn, "admin", "short", UserRole.ADMIN) is False  # an existing one starts
    assert users.authenticate(conn, "admin", PASSWORD)["role"] == "admin"
