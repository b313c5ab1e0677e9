"""The SQL that differs between the datastore's engines, one `Dialect` per engine.

Everything else the datastore says is written once, in the SQL both SQLite and PostgreSQL
accept: `?` parameters (the PostgreSQL connection turns them into its own), `RETURNING`,
`ON CONFLICT`, `CAST(... AS BIGINT)` around sums, table-qualified columns in an upsert's
`SET`. PostgreSQL's `Dialect` is `datastore.postgres.POSTGRES`, beside the driver it needs
(imported only when a PostgreSQL URL is opened: psycopg takes a quarter of a second to
import, which every `dpip` command would pay).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """What an engine writes its own way."""

    # Starts a write transaction that cannot deadlock with another: SQLite takes its one
    # write lock up front; on PostgreSQL `write_lock` follows (None: nothing follows).
    begin: str
    write_lock: str | None
    # A subquery of the integers in one JSON array parameter: any count, one bound value.
    ids_in_json: str
    # One statement: the numbers of a workload's jobs in one status, as a JSON array (text),
    # ascending; parameters: the workload's id and the status.
    job_numbers_json: str
    no_limit: int | None  # a LIMIT that keeps every row
    integrity_error: type[Exception]  # what a broken constraint raises
    unique_marker: str  # ... and what its text says when the constraint was a unique one

    def is_unique_violation(self, error: Exception) -> bool:
        return isinstance(error, self.integrity_error) and self.unique_marker in str(error)


SQLITE = Dialect(
    begin="BEGIN IMMEDIATE",
    write_lock=None,
    ids_in_json="(SELECT value FROM json_each(?))",
    job_numbers_json=(
        "SELECT json_group_array(image_number) FROM (SELECT image_number FROM jobs"
        " WHERE workload_id = ? AND status = ? ORDER BY image_number)"
    ),
    no_limit=-1,
    integrity_error=sqlite3.IntegrityError,
    unique_marker="UNIQUE",
)
