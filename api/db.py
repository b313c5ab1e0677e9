"""The datastore connection of the current request, opened lazily and closed at teardown."""

from __future__ import annotations

import sqlite3

from flask import Flask, current_app, g

import datastore


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = datastore.connect(current_app.config["DPIP"].database_path)
    return g.db


def close_db(exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
