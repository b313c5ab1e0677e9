"""Drive the timed part: upload, poll until every result shows, then download and verify."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_any
from dataclasses import dataclass, field
from multiprocessing.pool import Pool

import urllib3
from tqdm import tqdm

from client import Client, ClientError, Workload
from stress.batches import archive_body, deal_batches
from stress.client import HTTP_TIMEOUT_S, failure
from stress.images import FORMATS, Check, verdicts

# The client follows each workload with long polls (GET /workloads/{id}?wait=&seen=): the
# API answers as soon as more images finished, so an image's latency ends when its result is
# stored, not at the next poll. Between two reads of a workload the client waits at least
# FOLLOW_SPACING_S, so a busy workload costs the measured system at most 10 reads a second
# (polling every 20 ms had cost the API 5-10 ms of CPU per 1080p blur image).
LONG_POLL_S = 5.0
FOLLOW_SPACING_S = 0.1
BAR_REFRESH_S = 0.1
WORKLOAD_GET_SAMPLES = 20

Key = tuple[int, int]  # (workload id, image number inside the workload)


@dataclass
class Observations:
    """What the run saw, recorded from the threads that saw it; `lock` guards every field."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    started: dict[int, float] = field(default_factory=dict)  # image index → upload sent
    accepted: dict[int, float] = field(default_factory=dict)  # image index → 201 received
    index_of: dict[Key, int] = field(default_factory=dict)
    available: dict[Key, float] = field(default_factory=dict)  # first seen as filtered
    failed: set[Key] = field(default_factory=set)
    numbers_given_twice: int = 0
    repeated_entries: dict[int, int] = field(default_factory=dict)  # workload → most repeats
    errors: Counter[str] = field(default_factory=Counter)

    def record_error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    def record_upload(self, index: int, started: float, accepted: float, key: Key) -> None:
        with self.lock:
            self.started[index], self.accepted[index] = started, accepted
            if key in self.index_of:
                self.numbers_given_twice += 1
            else:
                self.index_of[key] = index

    def record_poll(self, workload: Workload, seen_at: float) -> None:
        filtered = workload.filtered_images or ()
        with self.lock:
            repeats = len(filtered) - len(set(filtered))
            previous = self.repeated_entries.get(workload.id, 0)
            self.repeated_entries[workload.id] = max(previous, repeats)
            for number in filtered:
                self.available.setdefault((workload.id, number), seen_at)
            failed = workload.failed_images or ()
            self.failed.update((workload.id, item.image_id) for item in failed)

    def uploaded(self) -> int:
        with self.lock:
            return len(self.accepted)

    def finished(self) -> int:
        with self.lock:
            return len(self.available) + len(self.failed)

    def is_finished(self, key: Key) -> bool:
        with self.lock:
            return key in self.available or key in self.failed


@dataclass
class StressRun:
    """One run: the client, the images, the workloads they are dealt to, and the deadline."""

    client: Client
    images: list[bytes]
    workloads: list[Workload]
    format_name: str  # a key of FORMATS
    upload_as: str  # "body" one image a request; "form", "zip" or "tar" a batch
    deadline: float
    quiet: bool
    batch: int = 0  # images a request through the batch endpoint; 0: one request per image
    observed: Observations = field(default_factory=Observations)
    finished_seen: dict[int, int] = field(default_factory=dict)  # workload → last done+failed

    def workload_of(self, index: int) -> Workload:
        return self.workloads[index % len(self.workloads)]

    def filename(self, index: int) -> str | None:
        """The filename image `index` is sent under; None when sent alone (a bare body)."""
        return f"photo-{index}.{self.format_name}" if self.batch else None

    def upload(self, index: int) -> Key | None:
        """Upload image `index` and record when it was accepted; None when it failed."""
        workload = self.workload_of(index)
        started = time.perf_counter()
        try:
            uploaded = self.client.upload_image(workload.id, self.images[index])
        except ClientError as e:
            self.observed.record_error(f"upload {failure(e)}")
            return None
        key = (workload.id, uploaded.image_id)
        self.observed.record_upload(index, started, time.perf_counter(), key)
        return key

    def upload_batch(self, indices: list[int]) -> None:
        """Upload images `indices` (all of one workload) in one request, and record when
        they were accepted; an answer that does not list them in order counts as an error."""
        workload = self.workload_of(indices[0])
        sent = [(self.filename(index), self.images[index]) for index in indices]
        started = time.perf_counter()
        try:
            if self.upload_as == "form":
                answered = self.client.upload(workload.id, sent, len(sent), in_flight=1)
            else:
                body = archive_body(sent, self.upload_as)
                answered = self.client.upload_archive(workload.id, body, self.upload_as)
        except ClientError as e:
            self.observed.record_error(f"batch upload {failure(e)}")
            return
        accepted = time.perf_counter()
        if [item.filename for item in answered] != [filename for filename, _ in sent]:
            self.observed.record_error("batch upload answered other images")
            return
        for index, item in zip(indices, answered, strict=True):
            self.observed.record_upload(index, started, accepted, (workload.id, item.image_id))

    def poll(
        self, workload: Workload, wait: float | None = None, seen: int | None = None
    ) -> Workload | None:
        """Read a workload and record the results that appeared; None when the read failed.
        With `wait`, the API answers once more than `seen` of its images are finished."""
        try:
            now = self.client.workload(workload.id, wait=wait, seen=seen)
        except ClientError as e:
            self.observed.record_error(f"poll {failure(e)}")
            return None
        self.observed.record_poll(now, time.perf_counter())
        return now

    def download(self, key: Key) -> bytes | None:
        workload_id, number = key
        try:
            return self.client.download(workload_id, number)
        except ClientError as e:
            self.observed.record_error(f"download {failure(e)}")
            return None

    def run_concurrent(self, uploaders: int) -> bool:
        """Upload from a thread pool while polling every workload; False when time ran out."""
        total = len(self.images)
        bars = [
            tqdm(total=total, desc=desc, disable=self.quiet) for desc in ("uploaded", "filtered")
        ]
        with ThreadPoolExecutor(uploaders) as pool:
            if self.batch:
                batches = deal_batches(total, len(self.workloads), self.batch)
                futures = [pool.submit(self._upload_batch_in_time, batch) for batch in batches]
            else:
                futures = [pool.submit(self._upload_in_time, index) for index in range(total)]
            try:
                return self._wait_for_results(futures, *bars)
            finally:
                pool.shutdown(cancel_futures=True)
                for bar in bars:
                    bar.close()

    def _upload_in_time(self, index: int) -> None:
        if time.perf_counter() < self.deadline:
            self.upload(index)

    def _upload_batch_in_time(self, indices: list[int]) -> None:
        if time.perf_counter() < self.deadline:
            self.upload_batch(indices)

    def _wait_for_results(self, futures: list[Future], upload_bar: tqdm, done_bar: tqdm) -> bool:
        """Follow every workload on its own thread until all settle; False when time ran out."""
        with ThreadPoolExecutor(len(self.workloads)) as pool:
            follows = [pool.submit(self._follow, workload, futures) for workload in self.workloads]
            while wait_for_any(follows, timeout=BAR_REFRESH_S).not_done:
                upload_bar.update(self.observed.uploaded() - upload_bar.n)
                done_bar.update(min(done_bar.total, self.observed.finished()) - done_bar.n)
            upload_bar.update(upload_bar.total - upload_bar.n)
            done_bar.update(min(done_bar.total, self.observed.finished()) - done_bar.n)
            return all(follow.result() for follow in follows)

    def _follow(self, workload: Workload, uploads: list[Future]) -> bool:
        """Long-poll one workload until every upload is in and its jobs settled."""
        seen = 0  # images of the workload known to be finished (done or failed)
        while (remaining_s := self.deadline - time.perf_counter()) > 0:
            # Checked before the read, so a settled answer covers every upload.
            uploads_done = all(upload.done() for upload in uploads)
            now = self.poll(workload, wait=min(LONG_POLL_S, remaining_s), seen=seen)
            if now is not None:
                if uploads_done and (now.is_completed or now.images.total == 0):
                    return True  # every job done or failed (or the workload got no image)
                seen = now.images.finished
            time.sleep(FOLLOW_SPACING_S)
        return False

    def run_sequential(self) -> bool:
        """Upload one image, wait for its result, then the next; False when time ran out."""
        with tqdm(total=len(self.images), desc="filtered", disable=self.quiet) as bar:
            for index in range(len(self.images)):
                if time.perf_counter() > self.deadline:
                    return False
                key = self.upload(index)
                if key is not None and not self._wait_for_image(self.workload_of(index), key):
                    return False
                bar.update()
        return True

    def _wait_for_image(self, workload: Workload, key: Key) -> bool:
        seen = self.finished_seen.get(workload.id, 0)
        while (remaining_s := self.deadline - time.perf_counter()) > 0:
            now = self.poll(workload, wait=min(LONG_POLL_S, remaining_s), seen=seen)
            finished = now.images.finished if now else seen
            self.finished_seen[workload.id] = finished
            if self.observed.is_finished(key):
                return True
            if finished <= seen:  # the wait ran out, the API would not wait, or it failed
                time.sleep(FOLLOW_SPACING_S)
            seen = finished
        return False


def count_wrong(run: StressRun, pool: Pool, radius: float, downloaders: int) -> int:
    """Download every result and count those that are not Pillow's result of their original."""
    observed = run.observed
    keys = sorted(key for key in observed.available if key in observed.index_of)
    filters = {workload.id: workload.filter for workload in run.workloads}
    with ThreadPoolExecutor(downloaders) as threads:
        downloads = list(threads.map(run.download, keys))
    image_format = FORMATS[run.format_name][0]
    checks = [
        Check(run.images[observed.index_of[key]], data, filters[key[0]], radius, image_format)
        for key, data in zip(keys, downloads, strict=True)
        if data is not None
    ]
    correct = sum(
        tqdm(verdicts(pool, checks), total=len(checks), desc="verified", disable=run.quiet)
    )
    return len(keys) - correct


def median_get_ms(run: StressRun) -> float | None:
    """Median time of GET /workloads/{id} on the first (largest) workload, in ms: the API's
    answer, read whole but not decoded (the client's decoding of 10 000 numbers into a
    typed Workload is its own cost, about 1 ms here, not the API's)."""
    url = f"{run.client.url}/workloads/{run.workloads[0].id}"
    headers = {"Authorization": f"Bearer {run.client.token}"}
    samples = []
    with urllib3.PoolManager(retries=False, timeout=HTTP_TIMEOUT_S) as pool:
        for _ in range(WORKLOAD_GET_SAMPLES):
            started = time.perf_counter()
            try:
                status = pool.request("GET", url, headers=headers).status
            except urllib3.exceptions.HTTPError as e:
                status = type(e).__name__
            if status != 200:
                run.observed.record_error(f"workload GET {status}")
                return None
            samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 2)
