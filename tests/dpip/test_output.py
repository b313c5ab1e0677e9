"""Tables people read and the JSON scripts parse."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from client import ImageCounts, Workload
from dpip.output import jsonable, table


def test_columns_align_and_numbers_go_right():
    text = table(("ID", "NAME", "DONE"), [(7, "holiday", 12), (12, "x", 3)])
    assert text.splitlines() == [
        "ID  NAME     DONE",
        " 7  holiday    12",
        "12  x           3",
    ]


def test_client_answers_become_plain_json():
    workload = Workload(
        id=3,
        name="w",
        filter="blur",
        params=MappingProxyType({"radius": 3.0}),
        tags=("a",),
        status="running",
        progress=0.5,
        running_jobs=1,
        images=ImageCounts(2, 0, 1, 1, 0),
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    )
    document = jsonable({"workload": workload, "out": Path("/tmp/out")})
    assert json.loads(json.dumps(document)) == document
    assert document["workload"]["params"] == {"radius": 3.0}
    assert document["workload"]["images"]["done"] == 1
    assert document["workload"]["created_at"] == "2026-01-02T03:04:05.678+00:00"
    assert document["out"] == "/tmp/out"
