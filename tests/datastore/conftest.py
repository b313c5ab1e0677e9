"""Each datastore test runs on both engines: a SQLite file and a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import datastore
from tests.conftest import ENGINES


@pytest.fixture(params=ENGINES)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a fresh datastore lives: a SQLite file's path, or a new PostgreSQL database's
    URL (`postgres_url`)."""
    if request.param == "sqlite":
        return tmp_path / "dpip.sqlite3"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def conn(location: Path | str) -> Iterator[datastore.Connection]:
    connection = datastore.connect(location)
    try:
        yield connection
    finally:
        connection.close()
