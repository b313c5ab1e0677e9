"""The scheduler's shell on a real datastore, with stub links in place of rpyc.

As dramatiq's StubBroker stands in for a broker: each stub link records what the shell
sends and lets the test answer for the worker, so the shell's thread, its datastore
writes and the core run for real in a few milliseconds.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import datastore
from datastore import jobs, transaction, workloads
from protocol import JobAssignment, JobOutcome, JobResult, JobResults, SubmitAnswer
from scheduler import Scheduler, SchedulerSettings, WorkerRegistration
from tests.conftest import wait_until

WAIT_S = 5.0
JOBS = 4  # queued for workers tagged `x`


class StubLink:
    """Records the batches sent to one worker, and what the datastore said of each job as
    it was sent; `refuse` answers for the worker as its link would."""

    def __init__(self, registration: WorkerRegistration, on_refused, db_path: Path) -> None:
        self.registration = registration
        self._on_refused = on_refused
        self._db_path = db_path
        self.sent: queue.SimpleQueue[tuple[JobAssignment, ...]] = queue.SimpleQueue()
        self.status_when_sent: dict[int, str] = {}

    def send(self, assignments) -> None:
        conn = sqlite3.connect(self._db_path)  # another connection sees only what is committed
        try:
            for assignment in assignments:
                (status,) = conn.execute(
                    "SELECT status FROM jobs WHERE id = ?", (assignment.job_id,)
                ).fetchone()
                self.status_when_sent[assignment.job_id] = status
        finally:
            conn.close()
        self.sent.put(tuple(assignments))

    def close(self) -> None:
        pass

    def next_batch(self) -> list[int]:
        return [assignment.job_id for assignment in self.sent.get(timeout=WAIT_S)]

    def next_job_id(self) -> int:
        [job_id] = self.next_batch()
        return job_id

    def refuse(self, job_id: int, answer: SubmitAnswer | None) -> None:
        assignment = JobAssignment(job_id, 0, 0, "grayscale")
        self._on_refused((assignment,), answer, f"answered {answer}")


class StubLinks:
    """The `open_link` of a shell under test: the latest link of each worker."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.by_worker: dict[int, StubLink] = {}

    def __call__(self, registration: WorkerRegistration, on_refused) -> StubLink:
        link = StubLink(registration, on_refused, self.db_path)
        self.by_worker[registration.worker_id] = link
        return link


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite3"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    connection = datastore.connect(db_path)
    yield connection
    connection.close()


def queue_jobs(conn: sqlite3.Connection, images: int, tags: list[str]) -> list[int]:
    """A workload of `images` queued jobs for workers with `tags`; return the job ids."""
    with transaction(conn) as db:
        db.execute(
            "INSERT INTO users (username, password_hash, role, created_at)"
            " VALUES ('alice', 'not a hash', 'user', 0)"
        )
        workload = workloads.create_workload(db, 1, "w", "grayscale", {}, tags)
        for _ in range(images):
            workloads.add_original(db, workload["id"], "PNG", 4, 3)
    return [row[0] for row in conn.execute("SELECT id FROM jobs ORDER BY id")]


def job_state(conn: sqlite3.Connection, job_id: int) -> tuple[str, int]:
    row = conn.execute("SELECT status, attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row["status"], row["attempts"]


def registration(
    worker_id: int, tags: tuple[str, ...] = (), prefetch: int = 0
) -> WorkerRegistration:
    return WorkerRegistration(
        worker_id,
        f"w{worker_id}",
        frozenset(tags),
        1,
        "127.0.0.1",
        1,
        f"key-{worker_id}",
        prefetch=prefetch,
    )


def ended(worker_id: int, *jobs: tuple[int, JobOutcome]) -> JobResults:
    """A worker's results: (job id, outcome) each."""
    return JobResults(
        worker_id,
        tuple(
            JobResult(job_id, outcome.value, f"{outcome.value} here") for job_id, outcome in jobs
        ),
        worker_key=f"key-{worker_id}",
    )


@pytest.fixture
def links(db_path: Path) -> StubLinks:
    return StubLinks(db_path)


@pytest.fixture
def shell(db_path: Path, conn: sqlite3.Connection, links: StubLinks) -> Iterator[Scheduler]:
    """A running shell that sweeps at every tick; stopped at the end."""
    settings = SchedulerSettings(dead_after_s=60.0, recovery_sweep_s=0.0, max_attempts=3)
    scheduler = Scheduler(db_path, settings, open_link=links)
    queue_jobs(conn, JOBS, ["x"])
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    try:
        yield scheduler
    finally:
        scheduler.stop()
        thread.join(timeout=WAIT_S)


def after_round(shell: Scheduler, worker_id: int) -> None:
    """Wait until a round that saw this worker join ended (its placements included)."""
    shell.worker_joined(registration(worker_id))  # no tags: it takes no job of the test's
    wait_until(lambda: worker_id in shell.known_worker_ids, WAIT_S, f"worker {worker_id}")


def test_no_job_goes_into_a_slot_the_worker_still_holds(shell, conn, links):
    """The API marks a job done before the worker's pool process answers; the recovery
    sweep used to count the slot free on the datastore's word, and the worker refused
    the next job sent into it (worker 1 did not take job 88)."""
    first, second, *_ = jobs.queued_job_ids(conn)
    shell.worker_joined(registration(1, tags=("x",)))
    link = wait_until(lambda: links.by_worker.get(1), WAIT_S, "worker 1's link")
    assert link.next_job_id() == first
    assert jobs.complete_job(conn, workload_id=1, number=0, worker_id=1)  # the API's part
    shell.tick()  # a recovery sweep
    after_round(shell, 2)
    assert link.sent.empty()
    shell.jobs_finished(ended(1, (first, JobOutcome.DONE)))
    assert link.next_job_id() == second


def test_a_busy_refusal_hands_the_job_back_and_costs_no_attempt(shell, conn, links):
    first, second, *_ = jobs.queued_job_ids(conn)
    shell.worker_joined(registration(1, tags=("x",)))
    link = wait_until(lambda: links.by_worker.get(1), WAIT_S, "worker 1's link")
    assert link.next_job_id() == first
    link.refuse(first, SubmitAnswer.BUSY)
    wait_until(lambda: job_state(conn, first) == ("queued", 0), WAIT_S, "the job handed back")
    after_round(shell, 2)
    assert link.sent.empty()  # it waits for the worker's slot, and no other can take it
    shell.jobs_finished(ended(1, (999, JobOutcome.DISCARDED)))
    assert link.next_job_id() == first
    assert job_state(conn, first) == ("running", 1)
    assert job_state(conn, second) == ("queued", 0)


def test_a_rounds_jobs_go_to_each_worker_as_one_batch_once_committed(shell, conn, links):
    """A worker that asks the API for an original as soon as its job arrives must find the
    job running: the batch goes out only after the round's transaction."""
    queued = jobs.queued_job_ids(conn)
    shell.worker_joined(registration(1, tags=("x",), prefetch=3))
    link = wait_until(lambda: links.by_worker.get(1), WAIT_S, "worker 1's link")
    assert link.next_batch() == queued  # 1 slot and 3 prefetched: all four at once
    assert link.status_when_sent == dict.fromkeys(queued, "running")


def test_a_batch_of_results_moves_each_job_its_own_way(shell, conn, links):
    done, failed, returned, discarded = jobs.queued_job_ids(conn)
    shell.worker_joined(registration(1, tags=("x",), prefetch=3))
    link = wait_until(lambda: links.by_worker.get(1), WAIT_S, "worker 1's link")
    link.next_batch()
    assert jobs.complete_job(conn, workload_id=1, number=0, worker_id=1)  # the API's part
    shell.jobs_finished(
        ended(
            1,
            (done, JobOutcome.DONE),
            (failed, JobOutcome.FAILED),
            (returned, JobOutcome.RETURNED),
            (discarded, JobOutcome.DISCARDED),
        )
    )
    # The failed and the returned job go back to the worker (no other could take them).
    assert sorted(link.next_batch()) == [failed, returned]
    assert job_state(conn, done) == ("done", 1)
    assert job_state(conn, failed) == ("running", 2)  # its failed attempt counted
    assert job_state(conn, returned) == ("running", 1)  # given back at no cost
    assert job_state(conn, discarded) == ("running", 1)  # not this worker's to settle
