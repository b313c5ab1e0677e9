"""Failed logins, shared by every API process: a row per failure and key, and one per account."""

from __future__ import annotations

from collections.abc import Iterable

from datastore.connection import Connection


def add_failures(conn: Connection, keys: Iterable[bytes], failed_at: float) -> None:
    """Count one failure at `failed_at` against each key (call inside a transaction)."""
    conn.executemany(
        "INSERT INTO login_failures (key, failed_at) VALUES (?, ?)",
        [(key, failed_at) for key in keys],
    )


def delete_expired(conn: Connection, until: float) -> None:
    """Forget the failures at or before `until`."""
    conn.execute("DELETE FROM login_failures WHERE failed_at <= ?", (until,))


def count_failures(conn: Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM login_failures").fetchone()[0]


def count_keys(conn: Connection) -> int:
    # Faster than COUNT(DISTINCT key), which sorts instead of walking the index in key order.
    return conn.execute(
        "SELECT COUNT(*) FROM (SELECT DISTINCT key FROM login_failures) AS keys"
    ).fetchone()[0]


def forget_stalest_keys(conn: Connection, count: int) -> None:
    """Forget the `count` keys whose newest failure is oldest (call inside a transaction)."""
    conn.execute(
        "DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures"
        " GROUP BY key ORDER BY MAX(failed_at) LIMIT ?)",
        (count,),
    )


def forget_key(conn: Connection, key: bytes) -> None:
    conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))


def nth_newest_failure(conn: Connection, key: bytes, n: int, after: float) -> float | None:
    """When the `n`-th newest failure of `key` later than `after` happened; None with fewer."""
    row = conn.execute(
        "SELECT failed_at FROM login_failures WHERE key = ? AND failed_at > ?"
        " ORDER BY failed_at DESC LIMIT 1 OFFSET ?",
        (key, after, n - 1),
    ).fetchone()
    return None if row is None else row[0]


# The failures of each account (username digest) from any address: a count and the last one.


def account_failures(conn: Connection, account: bytes, after: float) -> tuple[int, float]:
    """The account's failure count and last failure time; (0, 0.0) if none after `after`."""
    row = conn.execute(
        "SELECT failures, last_failed_at FROM account_login_failures"
        " WHERE account = ? AND last_failed_at > ?",
        (account, after),
    ).fetchone()
    return (0, 0.0) if row is None else (row[0], row[1])


def add_account_failure(conn: Connection, account: bytes, failed_at: float) -> None:
    """Count one more failure of the account at `failed_at` (call inside a transaction)."""
    conn.execute(
        "INSERT INTO account_login_failures (account, failures, last_failed_at) VALUES (?, 1, ?)"
        " ON CONFLICT (account) DO UPDATE"
        " SET failures = account_login_failures.failures + 1,"
        " last_failed_at = excluded.last_failed_at",
        (account, failed_at),
    )


def delete_expired_accounts(conn: Connection, until: float) -> None:
    """Forget the accounts whose last failure is at or before `until`."""
    conn.execute("DELETE FROM account_login_failures WHERE last_failed_at <= ?", (until,))


def count_accounts(conn: Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM account_login_failures").fetchone()[0]


def forget_stalest_accounts(conn: Connection, count: int) -> None:
    """Forget the `count` accounts whose last failure is oldest (call inside a transaction)."""
    conn.execute(
        "DELETE FROM account_login_failures WHERE account IN (SELECT account"
        " FROM account_login_failures ORDER BY last_failed_at LIMIT ?)",
        (count,),
    )


def forget_account(conn: Connection, account: bytes) -> None:
    conn.execute("DELETE FROM account_login_failures WHERE account = ?", (account,))
