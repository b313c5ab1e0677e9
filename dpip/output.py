"""What the remote commands print: aligned tables for people, one JSON document for scripts.

`--json` (`json_option`) makes a command print exactly one JSON document on stdout; the
client's dataclasses become objects of their fields, times ISO 8601 text.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import PurePath
from typing import Any

import click

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout, for scripts."
)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types: dataclasses, mappings, sequences, times and paths."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, PurePath):
        return str(value)
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns aligned on their widest cell, two spaces apart; numbers to the right."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [
        max(len(line[column]) for line in [list(headers), *cells]) for column in range(len(headers))
    ]
    numeric = [
        bool(rows) and all(isinstance(row[column], int | float) for row in rows)
        for column in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        padded = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> None:
    """The table, or the line `empty` when there are no rows."""
    click.echo(table(headers, rows) if rows else empty)


def percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def when(moment: datetime) -> str:
    """A time as people read it, in the local zone, to the second."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
