"""A workload's archive into a directory: the zip streamed to a file on disk (never whole in
memory), then each entry written beside its final name and renamed into place, so a reader
of the directory never sees half a file.

The spool lies in the output directory itself, not in the system's temp dir, which may be
memory (tmpfs). Entries are named as the API names them (`000042.png`, `manifest.json`);
any other name, `../x` included, is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from client import defaults
from client.errors import UnexpectedAnswer
from client.files import written_whole
from client.models import Manifest, decode
from client.transport import Transport

MANIFEST_NAME = "manifest.json"
IMAGE_ENTRY = re.compile(r"\d{6,}\.[a-z0-9]{1,8}")
# A zip that cannot be read; not OSError, which is out_dir's own failure and raised as such.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)


def download_archive(transport: Transport, workload_id: int, out_dir: Path, kind: str) -> Manifest:
    """Download workload `workload_id`'s archive of `kind` images into `out_dir` (made if
    missing); answer its manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, spool_path = tempfile.mkstemp(prefix=".dpip-archive-", suffix=".zip.part", dir=out_dir)
    try:
        with os.fdopen(fd, "w+b") as spool:
            transport.download(f"/workloads/{workload_id}/archive", spool, params={"type": kind})
            spool.seek(0)
            return extract_archive(spool, out_dir)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spool_path)


def _checked_names(archive: zipfile.ZipFile) -> list[str]:
    names = archive.namelist()
    strange = [name for name in names if name != MANIFEST_NAME and not IMAGE_ENTRY.fullmatch(name)]
    if strange:
        raise UnexpectedAnswer(f"the archive holds entries the API does not write: {strange[:3]}")
    if len(set(names)) != len(names) or MANIFEST_NAME not in names:
        raise UnexpectedAnswer("the archive repeats an entry or has no manifest.json")
    return names


def _extract(archive: zipfile.ZipFile, name: str, out_dir: Path) -> None:
    with archive.open(name) as source, written_whole(out_dir / name) as sink:
        shutil.copyfileobj(source, sink, defaults.DOWNLOAD_CHUNK_BYTES)


def extract_archive(file: BinaryIO, out_dir: Path) -> Manifest:
    """Write the entries of the zip in `file` into `out_dir`; answer its manifest."""
    try:
        with zipfile.ZipFile(file) as archive:
            names = _checked_names(archive)
            manifest = decode(
                lambda raw: Manifest.from_json(json.loads(raw)), archive.read(MANIFEST_NAME)
            )
            for name in names:
                _extract(archive, name, out_dir)
    except ZIP_ERRORS as e:
        raise UnexpectedAnswer(f"the archive cannot be read: {e}") from e
    return manifest
