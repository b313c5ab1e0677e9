"""Upload several images in one request: which images go together, and how they are sent.

`POST /workloads/{id}/images` takes a multipart form with one `data` part per image, or a
zip or tar body whose members are the images; it answers the images' numbers in the order
sent, at most MAX_BATCH of them a request.
"""

from __future__ import annotations

import io
import tarfile
import zipfile

MAX_BATCH = 1000
BATCH_ENCODINGS = ("form", "zip", "tar")

NamedImage = tuple[str, bytes]  # (filename, bytes)


def deal_batches(count: int, workloads: int, size: int) -> list[list[int]]:
    """Images 0..count-1 in batches of at most `size`, each batch for one workload.

    Image i goes to workload i mod `workloads`, as with one request per image, so both
    ways filter the same images in the same workloads.
    """
    batches = []
    for position in range(workloads):
        indices = list(range(position, count, workloads))
        batches += [indices[start : start + size] for start in range(0, len(indices), size)]
    # Batches of all workloads take turns, so every workload's jobs start early.
    return sorted(batches, key=lambda batch: batch[0] // (workloads * size))


def _zip_body(images: list[NamedImage]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # images are compressed
        for filename, data in images:
            archive.writestr(filename, data)
    return out.getvalue()


def _tar_body(images: list[NamedImage]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for filename, data in images:
            member = tarfile.TarInfo(filename)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return out.getvalue()


def archive_body(images: list[NamedImage], encoding: str) -> bytes:
    """`images` as one zip or tar body (a form is the client's own)."""
    if encoding == "zip":
        return _zip_body(images)
    if encoding == "tar":
        return _tar_body(images)
    raise ValueError(f"unknown archive encoding {encoding!r}; zip or tar")
