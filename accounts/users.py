"""Creating and deleting users: the one path for the API, the CLI and the first start.

A user's rows live in the datastore and their workloads' images in the image store, so
deleting a user is a datastore transaction followed by the image store's deletions.
"""

from __future__ import annotations

import sqlite3

from accounts.errors import UnknownUser
from accounts.passwords import check_password
from datastore import transaction, users, workloads
from imagestore import ImageStore
from protocol import UserRole


def create_user(
    conn: sqlite3.Connection, username: str, password: str, role: UserRole = UserRole.USER
) -> sqlite3.Row:
    """Add a user whose password follows the rule; raise UserExists if the name is taken."""
    return users.create_user(conn, username, check_password(password), role)


def ensure_user(conn: sqlite3.Connection, username: str, password: str, role: UserRole) -> bool:
    """Create the user unless it exists; return whether it was created.

    The password rule applies only to a user created now, so an existing account never
    stops a start.
    """
    if users.find_user_by_name(conn, username) is not None:
        return False
    return users.ensure_user(conn, username, check_password(password), role)


def delete_user(conn: sqlite3.Connection, store: ImageStore, username: str) -> int:
    """Delete the user with their workloads, images and jobs; return how many workloads went.

    The rows go first, in one transaction (a workload made meanwhile cannot be missed); the
    image files after, so a failure there leaves stray files, never rows without files.
    """
    with transaction(conn) as db:
        row = users.find_user_by_name(db, username)
        if row is None:
            raise UnknownUser(f"user {username!r} does not exist")
        owned = workloads.list_workloads(db, row["id"])
        users.delete_user(db, username)
    for workload in owned:
        store.delete_workload(workload["dir_name"])
    return len(owned)
