"""Fetch each workload's results as one streamed zip, and check every entry and the manifest.

`GET /workloads/{id}/archive?type=filtered` streams a zip: one entry per filtered image,
named by its number zero-padded to six digits and its format's extension (`000042.jpg`),
then `manifest.json`, which lists every image of the workload with its number, original
filename, status and error. The download is timed from the request to the last byte while
the API's memory is sampled; each entry is then checked against the reference filter.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from typing import Any, BinaryIO

from client import ClientError
from stress.client import failure
from stress.images import FORMATS, Check, verdicts
from stress.run import StressRun
from stress.system import System, watch_api_rss

MANIFEST_NAME = "manifest.json"
EXTENSIONS = {"JPEG": "jpg", "PNG": "png"}  # the API's extension of each generated format
RSS_SAMPLE_S = 0.02  # the API's memory while an archive streams (a 40 MB one takes ~1 s)
ENTRY_NAME = re.compile(r"(\d{6})\.([a-z]+)")


@dataclass(frozen=True)
class Expected:
    """What one workload's archive should hold, from what the run sent and observed."""

    extension: str
    filenames: dict[int, str | None]  # number → filename sent (None: sent without one)
    failed: frozenset[int]  # numbers the workload reported failed

    @property
    def done(self) -> set[int]:
        return set(self.filenames) - self.failed


@dataclass
class ArchiveContents:
    """The image entries of one archive, and every way it differs from what was expected."""

    results: dict[int, bytes] = field(default_factory=dict)  # number → entry
    problems: Counter[str] = field(default_factory=Counter)


def _manifest_problems(manifest: Any, expected: Expected) -> Counter[str]:
    """How the manifest differs from what was uploaded and how each image ended."""
    problems: Counter[str] = Counter()
    images = manifest.get("images") if isinstance(manifest, dict) else None
    if not isinstance(images, list):
        problems["manifest without an images list"] += 1
        return problems
    listed: set[int] = set()
    for item in images:
        number = item.get("image_id") if isinstance(item, dict) else None
        if number not in expected.filenames or number in listed:
            problems["manifest lists an image not uploaded, or twice"] += 1
            continue
        listed.add(number)
        sent = expected.filenames[number]
        if sent is not None and item.get("filename") != sent:
            problems["manifest filename differs from the upload's"] += 1
        status = "failed" if number in expected.failed else "done"
        if item.get("status") != status or (status == "failed") != bool(item.get("error")):
            problems["manifest status or error differs from the workload's"] += 1
    problems["manifest misses an uploaded image"] += len(set(expected.filenames) - listed)
    return +problems  # drops the zero counts


def read_archive(file: BinaryIO, expected: Expected) -> ArchiveContents:
    """Read a downloaded archive: its image entries, and its problems (bad or missing
    entries, a manifest that is not last or differs from the uploads)."""
    contents = ArchiveContents()
    done = expected.done
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
            if not names or names[-1] != MANIFEST_NAME:
                contents.problems["manifest.json is not the last entry"] += 1
            for name in names:
                if name == MANIFEST_NAME:
                    manifest = json.loads(archive.read(name))
                    contents.problems.update(_manifest_problems(manifest, expected))
                    continue
                match = ENTRY_NAME.fullmatch(name)
                if not match or match[2] != expected.extension:
                    contents.problems["entry name is not NNNNNN.<extension>"] += 1
                elif int(match[1]) not in done or int(match[1]) in contents.results:
                    contents.problems["entry of an image not done, or twice"] += 1
                else:
                    contents.results[int(match[1])] = archive.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError):  # ValueError: bad JSON
        contents.problems["unreadable archive or manifest"] += 1
        return contents
    contents.problems["done image without an entry"] += len(done - set(contents.results))
    contents.problems = +contents.problems
    return contents


@dataclass
class ArchiveTotals:
    """What the archives of a run measured, summed over its workloads."""

    size_bytes: int = 0
    seconds: float = 0.0
    entries: int = 0
    wrong: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    rss_start_mb: float | None = None
    rss_peak_mb: float | None = None

    def report(self) -> dict[str, Any]:
        mb = self.size_bytes / 2**20
        growth = None
        if self.rss_start_mb is not None and self.rss_peak_mb is not None:
            growth = round(self.rss_peak_mb - self.rss_start_mb, 1)
        return {
            "archive_mb": round(mb, 2),
            "archive_s": round(self.seconds, 3),
            "archive_mb_per_s": round(mb / self.seconds, 1) if self.seconds else None,
            "archive_entries": self.entries,
            "archive_wrong": self.wrong,
            "archive_problems": dict(self.problems),
            "api_rss_archive_start_mb": self.rss_start_mb,
            "api_rss_archive_peak_mb": self.rss_peak_mb,
            "archive_rss_growth_mb": growth,
        }


def _expected(run: StressRun, workload_id: int) -> Expected:
    observed = run.observed
    return Expected(
        EXTENSIONS[FORMATS[run.format_name][0]],
        {
            number: run.filename(index)
            for (owner, number), index in observed.index_of.items()
            if owner == workload_id
        },
        frozenset(number for owner, number in observed.failed if owner == workload_id),
    )


def check_archives(run: StressRun, system: System, pool: Pool, radius: float) -> dict[str, Any]:
    """Download every workload's archive of results, timing it and sampling the API's memory
    meanwhile, then check each entry and manifest; return the report's archive figures."""
    totals = ArchiveTotals()
    image_format = FORMATS[run.format_name][0]
    for workload in run.workloads:
        expected = _expected(run, workload.id)
        with tempfile.TemporaryFile(prefix="dpip-stress-archive-") as file:
            with watch_api_rss(system, RSS_SAMPLE_S) as rss:
                downloaded = _timed_download(run, workload.id, file)
            if downloaded is None:
                continue
            totals.size_bytes += downloaded[0]
            totals.seconds += downloaded[1]
            file.seek(0)
            contents = read_archive(file, expected)
        _note_rss(totals, rss.first_mb, rss.peak_mb)
        totals.problems.update(contents.problems)
        totals.entries += len(contents.results)
        index_of = run.observed.index_of
        checks = [
            Check(
                run.images[index_of[(workload.id, number)]],
                data,
                workload.filter,
                radius,
                image_format,
            )
            for number, data in contents.results.items()
        ]
        totals.wrong += len(checks) - sum(verdicts(pool, checks))
    return totals.report()


def _timed_download(run: StressRun, workload_id: int, file: BinaryIO) -> tuple[int, float] | None:
    """Stream one workload's archive into `file`: its size, and the seconds from the request
    to its last byte; None (and an error recorded) when the download failed."""
    started = time.perf_counter()
    try:
        size = run.client.download_archive(workload_id, file)
    except ClientError as e:
        run.observed.record_error(f"archive {failure(e)}")
        return None
    return size, time.perf_counter() - started


def _note_rss(totals: ArchiveTotals, first_mb: float | None, peak_mb: float | None) -> None:
    """Keep the first workload's starting RSS and the highest peak of all."""
    if totals.rss_start_mb is None:
        totals.rss_start_mb = first_mb
    if peak_mb is not None:
        totals.rss_peak_mb = max(peak_mb, totals.rss_peak_mb or 0.0)
