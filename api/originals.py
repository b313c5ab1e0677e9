"""Record accepted originals, one or a batch: one transaction, then one hint to the controller.

Each original's file is staged first (written whole under a hidden name); the transaction
numbers the originals in order, queues their jobs and renames their files into place, so the
rows and the files appear together, or neither does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app

from api.db import get_db
from datastore import Row, transaction, workloads
from imagestore import ImageName, StagedImage
from imaging import ImageInfo


@dataclass(frozen=True)
class StagedOriginal:
    """An original that passed the upload check, its file staged in the workload's store."""

    staged: StagedImage
    info: ImageInfo
    size: int  # bytes
    filename: str | None  # what the client called it


def store_originals(workload: Row, originals: Sequence[StagedOriginal]) -> list[int]:
    """Number `originals` in order, queue their jobs and commit their files, all in one
    transaction; then poke the controller once. Returns their numbers."""
    new = [
        workloads.NewOriginal(o.info.format, o.info.width, o.info.height, o.size, o.filename)
        for o in originals
    ]
    with transaction(get_db()) as db:
        numbers = workloads.add_originals(db, workload["id"], new)
        for number, original in zip(numbers, originals, strict=True):
            original.staged.commit(ImageName(number, "original", original.info.extension))
    current_app.extensions["dpip_notifier"].poke()
    return numbers
