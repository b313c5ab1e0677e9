"""The datastore on a real SQLite file: users, workloads, images and the job state machine."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import datastore
from datastore import bearers, jobs, transaction, users, workers, workloads
from datastore.filtered_cache import FilteredImagesCache
from datastore.jobs import QueuedJob
from datastore.users import UserExists
from datastore.workloads import WorkloadExists, safe_dir_name, workload_status
from protocol import JobStatus, UserRole, WorkloadStatus
from tests.conftest import ENGINES

ALICE_PASSWORD = "correct horse battery staple"
BOB_PASSWORD = "hunter2-but-longer"
MAX_ATTEMPTS = 3


@pytest.fixture(scope="module", params=ENGINES)
def template(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Path | str]:
    """A datastore holding two users, made once per engine: hashing passwords is slow on
    purpose. A SQLite file, or the name of a PostgreSQL database."""
    if request.param == "sqlite":
        location: Path | str = tmp_path_factory.mktemp("template") / "db.sqlite3"
    else:
        postgres = request.getfixturevalue("postgres")
        name = f"template_{uuid.uuid4().hex}"
        location = postgres.create_database(name)
    conn = datastore.connect(location)
    users.create_user(conn, "alice", ALICE_PASSWORD)
    users.create_user(conn, "bob", BOB_PASSWORD, UserRole.ADMIN)
    conn.close()  # SQLite: the last connection checkpoints the WAL into the main file
    if isinstance(location, Path):
        yield location
        return
    yield name
    postgres.drop_database(name)


@pytest.fixture
def conn(
    template: Path | str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[datastore.Connection]:
    with contextlib.ExitStack() as stack:
        if isinstance(template, Path):
            location: Path | str = tmp_path / "db.sqlite3"
            shutil.copyfile(template, location)
        else:
            postgres = request.getfixturevalue("postgres")
            location = stack.enter_context(postgres.new_database(template))
        connection = datastore.connect(location)
        yield connection
        connection.close()


@pytest.fixture
def alice(conn: sqlite3.Connection) -> int:
    return users.find_user_by_name(conn, "alice")["id"]


@pytest.fixture
def bob(conn: sqlite3.Connection) -> int:
    return users.find_user_by_name(conn, "bob")["id"]


def make_workload(
    conn: sqlite3.Connection,
    user_id: int,
    name: str = "holiday",
    images: int = 3,
    filter_name: str = "blur",
    params: dict | None = None,
    tags: list[str] | None = None,
) -> int:
    with transaction(conn) as db:
        row = workloads.create_workload(
            db,
            user_id,
            name,
            filter_name,
            {"radius": 2.0} if params is None else params,
            ["gpu"] if tags is None else tags,
        )
        for _ in range(images):
            workloads.add_original(db, row["id"], "PNG", 4, 3)
    return row["id"]


def job_ids(conn: sqlite3.Connection, workload_id: int) -> list[int]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT id FROM jobs WHERE workload_id = ? ORDER BY image_number", (workload_id,)
        )
    ]


def job_row(conn: sqlite3.Connection, job_id: int) -> sqlite3.Row:
    return conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()


def image_number(conn: sqlite3.Connection, job_id: int) -> int:
    return job_row(conn, job_id)["image_number"]


# Jobs ------------------------------------------------------------------------------


def test_add_original_numbers_images_and_queues_jobs(conn, alice) -> None:
    workload_id = make_workload(conn, alice, images=3)
    rows = conn.execute(
        "SELECT image_number, status, attempts, worker_id FROM jobs WHERE workload_id = ?"
        " ORDER BY id",
        (workload_id,),
    ).fetchall()
    assert [tuple(row) for row in rows] == [(n, "queued", 0, None) for n in range(3)]
    image = workloads.get_image(conn, workload_id, 1)
    assert (image["format"], image["width"], image["height"]) == ("PNG", 4, 3)
    assert (image["status"], image["worker_id"], image["error"]) == ("queued", None, "")
    assert workloads.get_image(conn, workload_id, 3) is None


def test_load_queued_jobs(conn, alice) -> None:
    first = make_workload(conn, alice, "one", images=2, tags=["ssd", "gpu"])
    second = make_workload(
        conn, alice, "two", images=1, filter_name="grayscale", params={}, tags=[]
    )
    ids = job_ids(conn, first) + job_ids(conn, second)
    queued = jobs.load_queued_jobs(conn)
    assert [job.job_id for job in queued] == ids
    assert queued[0] == QueuedJob(
        job_id=ids[0],
        workload_id=first,
        user_id=alice,
        image_number=0,
        filter_name="blur",
        params={"radius": 2.0},
        tags=frozenset({"gpu", "ssd"}),
        attempts=0,
        last_worker_id=None,
    )
    assert queued[2].filter_name == "grayscale"
    assert queued[2].params == {}
    assert queued[2].tags == frozenset()


def test_load_queued_jobs_after_id(conn, alice) -> None:
    ids = job_ids(conn, make_workload(conn, alice, images=4))
    assert [job.job_id for job in jobs.load_queued_jobs(conn, after_id=ids[1])] == ids[2:]
    assert jobs.load_queued_jobs(conn, after_id=ids[-1]) == []


def test_load_queued_jobs_by_ids(conn, alice) -> None:
    ids = job_ids(conn, make_workload(conn, alice, images=4))
    loaded = jobs.load_queued_jobs(conn, job_ids=[ids[3], ids[0], 10_000])
    assert [job.job_id for job in loaded] == [ids[0], ids[3]]
    assert jobs.load_queued_jobs(conn, job_ids=[]) == []
    assert (
        jobs.load_queued_jobs(conn, after_id=ids[0], job_ids=[ids[0], ids[2]])[0].job_id == (ids[2])
    )


def test_load_queued_jobs_skips_jobs_not_queued(conn, alice) -> None:
    ids = job_ids(conn, make_workload(conn, alice, images=3))
    jobs.assign_job(conn, ids[0], worker_id=1)
    jobs.assign_job(conn, ids[2], worker_id=1)
    jobs.complete_job(conn, *_key(conn, ids[2]), worker_id=1)
    assert [job.job_id for job in jobs.load_queued_jobs(conn)] == [ids[1]]
    assert jobs.load_queued_jobs(conn, job_ids=[ids[0], ids[2]]) == []


def _key(conn: sqlite3.Connection, job_id: int) -> tuple[int, int]:
    row = job_row(conn, job_id)
    return row["workload_id"], row["image_number"]


def test_assign_job(conn, alice) -> None:
    (job_id,) = job_ids(conn, make_workload(conn, alice, images=1))
    assert jobs.assign_job(conn, job_id, worker_id=7) == 1
    row = job_row(conn, job_id)
    assert (row["status"], row["worker_id"], row["attempts"]) == ("running", 7, 1)
    assert row["started_at"] is not None
    assert jobs.is_assigned(conn, *_key(conn, job_id), worker_id=7)
    assert not jobs.is_assigned(conn, *_key(conn, job_id), worker_id=8)


def test_assign_job_is_none_when_not_queued(conn, alice) -> None:
    (job_id,) = job_ids(conn, make_workload(conn, alice, images=1))
    assert jobs.assign_job(conn, job_id, worker_id=7) == 1
    assert jobs.assign_job(conn, job_id, worker_id=8) is None
    assert job_row(conn, job_id)["worker_id"] == 7
    assert jobs.assign_job(conn, 10_000, worker_id=7) is None
    jobs.complete_job(conn, *_key(conn, job_id), worker_id=7)
    assert jobs.assign_job(conn, job_id, worker_id=7) is None


def test_images_held_by_a_worker_are_those_of_its_running_jobs(conn, alice) -> None:
    workload_id = make_workload(conn, alice, images=4)
    ids = job_ids(conn, workload_id)
    for job_id in ids[:3]:
        jobs.assign_job(conn, job_id, worker_id=7)
    jobs.assign_job(conn, ids[3], worker_id=8)
    jobs.complete_job(conn, *_key(conn, ids[2]), worker_id=7)  # done: no longer held
    held = jobs.images_held_by(conn, 7)
    dir_name = workloads.get_workload(conn, workload_id)["dir_name"]
    assert held == {
        (workload_id, n): jobs.HeldImage(workload_id, n, dir_name, "PNG") for n in (0, 1)
    }
    assert set(jobs.images_held_by(conn, 8)) == {(workload_id, 3)}
    assert jobs.images_held_by(conn, 9) == {}


def test_complete_job_only_by_the_assigned_worker(conn, alice) -> None:
    (job_id,) = job_ids(conn, make_workload(conn, alice, images=1))
    workload_id, number = _key(conn, job_id)
    assert not jobs.complete_job(conn, workload_id, number, worker_id=7)  # still queued
    jobs.assign_job(conn, job_id, worker_id=7)
    assert not jobs.complete_job(conn, workload_id, number, worker_id=8)  # stale worker
    assert job_row(conn, job_id)["status"] == "running"
    assert jobs.complete_job(conn, workload_id, number, worker_id=7)
    row = job_row(conn, job_id)
    assert row["status"] == "done"
    assert row["finished_at"] is not None
    assert not jobs.complete_job(conn, workload_id, number, worker_id=7)  # duplicate result
    assert not jobs.is_assigned(conn, workload_id, number, worker_id=7)


def test_each_worker_counts_the_jobs_it_finished_once_and_for_good(conn, alice) -> None:
    with transaction(conn) as db:
        worker = workers.register_worker(db, "w", [], 1, "127.0.0.1", 9, 100, "").worker_id
    workload_id = make_workload(conn, alice, images=3)
    ids = job_ids(conn, workload_id)
    for job_id in ids:
        jobs.assign_job(conn, job_id, worker_id=worker)
    jobs.complete_job(conn, *_key(conn, ids[0]), worker_id=worker)
    jobs.complete_job(conn, *_key(conn, ids[0]), worker_id=worker)  # a duplicate result
    jobs.complete_job(conn, *_key(conn, ids[1]), worker_id=worker)
    jobs.fail_attempt(conn, ids[2], worker, "broken", MAX_ATTEMPTS)

    def jobs_done() -> int:
        return conn.execute("SELECT jobs_done FROM workers WHERE id = ?", (worker,)).fetchone()[0]

    assert jobs_done() == 2
    assert users.delete_user(conn, "alice")  # and with her, the workload and its jobs
    assert jobs_done() == 2  # what the worker did stays done


def test_stale_worker_cannot_complete_a_reassigned_job(conn, alice) -> None:
    (job_id,) = job_ids(conn, make_workload(conn, alice, images=1))
    jobs.assign_job(conn, job_id, worker_id=1)
    assert jobs.fail_attempt(conn, job_id, 1, "worker died", MAX_ATTEMPTS) is JobStatus.QUEUED
    assert jobs.assign_job(conn, job_id, worker_id=2) == 2
    assert not jobs.complete_job(conn, *_key(conn, job_id), worker_id=1)
    assert jobs.complete_job(conn, *_key(conn, job_id), worker_id=2)


def test_fail_attempt_requeues_until_max_attempts(conn, alice) -> None:
    (job_id,) = job_ids(conn, make_workload(conn, alice, images=1))
    for attempt in range(1, MAX_ATTEMPTS):
        worker_id = 10 + attempt
        assert jobs.assign_job(conn, job_id, worker_id) == attempt
        status = jobs.fail_attempt(conn, job_id, worker_id, f"boom {attempt}", MAX_ATTEMPTS)
        assert status is JobStatus.QUEUED
        row = job_row(conn, job_id)
        assert (row["status"], row["error"], row["finished_at"]) == (
            "queued",
            f"boom {attempt}",
            None,
        )
        (queued,) = jobs.load_queued_jobs(conn, job_ids=[job_id])
        assert (queued.attempts, queued.last_worker_id) == (attempt, worker_id)
    assert jobs.assign_job(conn, job_id, 99) == MAX_ATTEMPTS
    assert jobs.fail_attempt(conn, job_id, 99, "final", MAX_ATTEMPTS) is JobStatus.FAILED
    row = job_row(conn, job_id)
    assert (row["status"], row["error"], row["attempts"]) == ("failed", "final", MAX_ATTEMPTS)
    assert row["finished_at"] is not None
    assert jobs.load_queued_jobs(conn) == []
    assert jobs.assign_job(conn, job_id, 99) is None


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_fail_attempt_honours_the_limit(conn, alice, max_attempts: int) -> None:
    (job_id,) = job_ids(conn, make_workload(conn, alice, images=1))
    statuses = []
    for _ in range(max_attempts):
        jobs.assign_job(conn, job_id, 1)
        statuses.append(jobs.fail_attempt(conn, job_id, 1, "x", max_attempts))
    assert statuses == [JobStatus.QUEUED] * (max_attempts - 1) + [JobStatus.FAILED]


def test_fail_attempt_ignores_stale_or_unassigned(conn, alice) -> None:
    (job_id,) = job_ids(conn, make_workload(conn, alice, images=1))
    assert jobs.fail_attempt(conn, job_id, 1, "not running", MAX_ATTEMPTS) is None
    jobs.assign_job(conn, job_id, 1)
    assert jobs.fail_attempt(conn, job_id, 2, "wrong worker", MAX_ATTEMPTS) is None
    row = job_row(conn, job_id)
    assert (row["status"], row["error"]) == ("running", "")


def test_complete_job_clears_the_error_of_an_earlier_attempt(conn, alice) -> None:
    (job_id,) = job_ids(conn, make_workload(conn, alice, images=1))
    jobs.assign_job(conn, job_id, 1)
    jobs.fail_attempt(conn, job_id, 1, "flaky", MAX_ATTEMPTS)
    jobs.assign_job(conn, job_id, 2)
    assert jobs.complete_job(conn, *_key(conn, job_id), worker_id=2)
    assert job_row(conn, job_id)["error"] == ""


def test_unassign_job_restores_attempts(conn, alice) -> None:
    (job_id,) = job_ids(conn, make_workload(conn, alice, images=1))
    jobs.assign_job(conn, job_id, 1)
    jobs.fail_attempt(conn, job_id, 1, "x", MAX_ATTEMPTS)
    assert jobs.assign_job(conn, job_id, 2) == 2
    jobs.unassign_job(conn, job_id, 3)  # another worker: nothing happens
    assert job_row(conn, job_id)["status"] == "running"
    jobs.unassign_job(conn, job_id, 2)
    row = job_row(conn, job_id)
    assert (row["status"], row["attempts"], row["started_at"]) == ("queued", 1, None)
    assert jobs.assign_job(conn, job_id, 4) == 2
    jobs.unassign_job(conn, job_id, 4)
    jobs.unassign_job(conn, job_id, 4)  # a second call changes nothing
    assert job_row(conn, job_id)["attempts"] == 1


def test_release_worker_jobs_keeps_listed_ids(conn, alice) -> None:
    ids = job_ids(conn, make_workload(conn, alice, images=4))
    for job_id in ids[:3]:
        jobs.assign_job(conn, job_id, 1)
    jobs.assign_job(conn, ids[3], 2)
    requeued, failed = jobs.release_worker_jobs(
        conn, 1, frozenset({ids[1]}), "worker lost", MAX_ATTEMPTS
    )
    assert (sorted(requeued), failed) == ([ids[0], ids[2]], [])
    assert [job_row(conn, job_id)["status"] for job_id in ids] == [
        "queued",
        "running",
        "queued",
        "running",
    ]
    assert job_row(conn, ids[0])["error"] == "worker lost"
    assert job_row(conn, ids[3])["worker_id"] == 2
    assert jobs.release_worker_jobs(conn, 1, frozenset({ids[1]}), "again", MAX_ATTEMPTS) == (
        [],
        [],
    )


def test_release_worker_jobs_fails_jobs_at_the_limit(conn, alice) -> None:
    ids = job_ids(conn, make_workload(conn, alice, images=2))
    jobs.assign_job(conn, ids[0], 1)
    jobs.assign_job(conn, ids[1], 1)
    requeued, failed = jobs.release_worker_jobs(conn, 1, frozenset(), "lost", max_attempts=1)
    assert (requeued, sorted(failed)) == ([], ids)
    assert [job_row(conn, job_id)["status"] for job_id in ids] == ["failed", "failed"]


def test_workloads_of_jobs(conn, alice) -> None:
    first = job_ids(conn, make_workload(conn, alice, images=2, name="first"))
    second = job_ids(conn, make_workload(conn, alice, images=1, name="second"))
    workload_of = {job_id: job_row(conn, job_id)["workload_id"] for job_id in first + second}
    assert jobs.workloads_of(conn, []) == set()
    assert jobs.workloads_of(conn, first) == {workload_of[first[0]]}
    assert jobs.workloads_of(conn, [*first, *second, 10**9]) == set(workload_of.values())
    assert len(set(workload_of.values())) == 2


def test_running_jobs_by_worker(conn, alice) -> None:
    assert jobs.running_jobs_by_worker(conn) == {}
    ids = job_ids(conn, make_workload(conn, alice, images=5))
    jobs.assign_job(conn, ids[0], 1)
    jobs.assign_job(conn, ids[1], 1)
    jobs.assign_job(conn, ids[2], 2)
    jobs.assign_job(conn, ids[3], 2)
    jobs.complete_job(conn, *_key(conn, ids[3]), worker_id=2)
    assert jobs.running_jobs_by_worker(conn) == {1: {ids[0], ids[1]}, 2: {ids[2]}}


# Workloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "started", "expected"),
    [
        ({}, False, WorkloadStatus.SCHEDULING),
        ({"queued": 0}, False, WorkloadStatus.SCHEDULING),
        ({"queued": 3}, False, WorkloadStatus.SCHEDULING),
        # A started job queued again for a retry (or after a refusal) keeps it running.
        ({"queued": 3}, True, WorkloadStatus.RUNNING),
        # New images uploaded to a completed workload.
        ({"queued": 1, "done": 2}, True, WorkloadStatus.RUNNING),
        ({"queued": 1, "failed": 1}, False, WorkloadStatus.RUNNING),
        ({"running": 1}, True, WorkloadStatus.RUNNING),
        ({"running": 1, "queued": 5, "done": 1}, True, WorkloadStatus.RUNNING),
        ({"done": 2}, True, WorkloadStatus.COMPLETED),
        ({"failed": 1}, True, WorkloadStatus.COMPLETED),
        ({"done": 1, "failed": 1}, True, WorkloadStatus.COMPLETED),
    ],
    ids=repr,
)
def test_workload_status(counts: dict[str, int], started: bool, expected: WorkloadStatus) -> None:
    assert workload_status(counts, started) is expected


def test_workload_progress_through_a_workload_life(conn, alice) -> None:
    empty = make_workload(conn, alice, "empty", images=0)
    progress = workloads.workload_progress(conn, empty)
    assert (progress.counts, progress.total, progress.running) == ({}, 0, 0)
    assert progress.status is WorkloadStatus.SCHEDULING

    workload_id = make_workload(conn, alice, images=4)
    ids = job_ids(conn, workload_id)
    progress = workloads.workload_progress(conn, workload_id)
    assert (progress.counts, progress.total, progress.status) == (
        {"queued": 4},
        4,
        WorkloadStatus.SCHEDULING,
    )

    for job_id in ids:
        jobs.assign_job(conn, job_id, 1)
    progress = workloads.workload_progress(conn, workload_id)
    assert (progress.running, progress.status) == (4, WorkloadStatus.RUNNING)

    # Finish out of order: the lists still come back in ascending image order.
    for job_id in (ids[3], ids[0]):
        assert jobs.complete_job(conn, *_key(conn, job_id), worker_id=1)
    jobs.fail_attempt(conn, ids[2], 1, "decoder exploded", max_attempts=1)
    jobs.fail_attempt(conn, ids[1], 1, "out of memory", max_attempts=1)
    progress = workloads.workload_progress(conn, workload_id)
    assert progress.counts == {"done": 2, "failed": 2}
    assert progress.status is WorkloadStatus.COMPLETED
    assert progress.filtered_images == [0, 3]
    assert progress.failed_images == [
        {"image_id": 1, "error": "out of memory"},
        {"image_id": 2, "error": "decoder exploded"},
    ]
    assert workloads.workload_progress(conn, empty).total == 0  # other workloads unaffected


def test_workload_status_never_goes_back_to_scheduling(conn, alice) -> None:
    """A job handed back (a refused submission, a retry) leaves the workload running."""
    workload_id = make_workload(conn, alice, images=2)
    first, second = job_ids(conn, workload_id)
    jobs.assign_job(conn, first, 1)
    jobs.unassign_job(conn, first, 1)
    progress = workloads.workload_progress(conn, workload_id)
    assert progress.counts == {"queued": 2}
    assert progress.status is WorkloadStatus.RUNNING
    assert progress.fraction_finished == 0.0

    for job_id in (first, second):
        jobs.assign_job(conn, job_id, 1)
    assert jobs.complete_job(conn, *_key(conn, first), worker_id=1)
    jobs.fail_attempt(conn, second, 1, "broken", max_attempts=1)
    progress = workloads.workload_progress(conn, workload_id)
    assert (progress.status, progress.fraction_finished) == (WorkloadStatus.COMPLETED, 1.0)

    with transaction(conn):
        workloads.add_original(conn, workload_id, "PNG", 1, 1)
    progress = workloads.workload_progress(conn, workload_id)
    assert (progress.status, progress.fraction_finished) == (WorkloadStatus.RUNNING, 2 / 3)


def test_workload_progress_lists_are_empty_when_nothing_finished(conn, alice) -> None:
    progress = workloads.workload_progress(conn, make_workload(conn, alice, images=2))
    assert progress.filtered_images == []
    assert progress.failed_images == []


def test_active_workloads_of_one_user_or_everyone(conn, alice, bob) -> None:
    busy = make_workload(conn, alice, "busy", images=2)
    finished = make_workload(conn, alice, "finished", images=1)
    make_workload(conn, alice, "empty", images=0)
    bobs = make_workload(conn, bob, "bobs", images=1)
    (job_id,) = job_ids(conn, finished)
    jobs.assign_job(conn, job_id, 1)

    def summary(user_id):
        return [
            (workload_id, name, progress.counts, progress.status.value)
            for workload_id, name, progress in workloads.active_workloads(conn, user_id)
        ]

    assert summary(alice) == [
        (busy, "busy", {"queued": 2}, "scheduling"),
        (finished, "finished", {"running": 1}, "running"),
    ]
    assert [workload_id for workload_id, *_ in summary(None)] == [busy, finished, bobs]
    jobs.complete_job(conn, *_key(conn, job_id), worker_id=1)
    assert summary(alice) == [(busy, "busy", {"queued": 2}, "scheduling")]
    assert summary(bob) == [(bobs, "bobs", {"queued": 1}, "scheduling")]


def test_create_workload_row(conn, alice) -> None:
    workload_id = make_workload(conn, alice, "My Photos!", images=0, tags=["b", "a"])
    row = workloads.get_workload(conn, workload_id)
    assert row["name"] == "My Photos!"
    assert row["dir_name"] == safe_dir_name(workload_id, "My Photos!") == f"{workload_id}-My_Photos"
    assert row["filter"] == "blur"
    assert row["params"] == '{"radius": 2.0}'
    assert row["tags"] == '["b", "a"]'
    assert row["next_image_number"] == 0


def test_duplicate_workload_name(conn, alice, bob) -> None:
    make_workload(conn, alice, "photos", images=0)
    with pytest.raises(WorkloadExists, match="photos"):
        make_workload(conn, alice, "photos", images=0)
    bobs = make_workload(conn, bob, "photos", images=0)
    assert workloads.get_workload(conn, bobs)["user_id"] == bob
    assert [row["name"] for row in workloads.list_workloads(conn, alice)] == ["photos"]
    assert len(workloads.list_workloads(conn, None)) == 2
    assert conn.execute("SELECT COUNT(*) FROM workloads").fetchone()[0] == 2
    assert not conn.in_transaction  # the failed transaction was rolled back


def test_missing_user_is_not_reported_as_a_duplicate_name(conn) -> None:
    with pytest.raises(conn.dialect.integrity_error) as raised:
        make_workload(conn, 10_000, "orphan", images=0)
    assert not conn.dialect.is_unique_violation(raised.value)


NASTY_NAMES = [
    "../../etc/passwd",
    "..",
    ".",
    "...",
    "/",
    "\\",
    "a/../b",
    "..\\..\\windows\\system32",
    "/absolute/path",
    "C:\\Windows",
    "~root",
    "",
    "   ",
    "\x00",
    "nul\x00byte",
    "new\nline",
    "-rf",
    ".hidden",
    "name with spaces",
    "日本語",
    "🎉",
    "a" * 500,
    "./" * 100,
    "x" * 63 + "/..",
]


@pytest.mark.parametrize("name", NASTY_NAMES, ids=repr)
def test_safe_dir_name_is_one_harmless_path_component(name: str, tmp_path: Path) -> None:
    dir_name = safe_dir_name(42, name)
    assert dir_name.startswith("42-")
    assert "/" not in dir_name
    assert "\\" not in dir_name
    assert "\x00" not in dir_name
    assert dir_name not in (".", "..")
    assert Path(dir_name).parts == (dir_name,)
    assert (tmp_path / dir_name).resolve().parent == tmp_path.resolve()
    assert len(dir_name) <= len("42-") + 64
    assert set(dir_name[3:]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
    )


@pytest.mark.parametrize("name", [n for n in NASTY_NAMES if ".." not in n], ids=repr)
def test_safe_dir_name_has_no_dot_dot_for_names_without_one(name: str) -> None:
    # The API refuses names containing '..'; for every other name the slug has none either.
    assert ".." not in safe_dir_name(42, name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("holiday", "7-holiday"),
        ("My Photos!", "7-My_Photos"),
        ("..", "7-workload"),
        ("", "7-workload"),
        ("日本語", "7-workload"),
        ("a/../b", "7-a_.._b"),  # '..' inside one component is not a traversal
        (".hidden.", "7-hidden"),
    ],
)
def test_safe_dir_name_examples(name: str, expected: str) -> None:
    assert safe_dir_name(7, name) == expected


def test_dir_names_are_unique_per_workload(conn, alice, bob) -> None:
    first = make_workload(conn, alice, "日本語", images=0)
    second = make_workload(conn, bob, "日本語", images=0)
    dirs = {workloads.get_workload(conn, wid)["dir_name"] for wid in (first, second)}
    assert dirs == {f"{first}-workload", f"{second}-workload"}


def test_deleting_a_user_cascades(conn, alice, bob) -> None:
    make_workload(conn, alice, images=2)
    kept = make_workload(conn, bob, images=1)
    assert users.delete_user(conn, "alice")
    assert not users.delete_user(conn, "alice")
    assert [row["id"] for row in workloads.list_workloads(conn, None)] == [kept]
    assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1


# Users -----------------------------------------------------------------------------


def test_password_is_stored_hashed(conn) -> None:
    row = users.find_user_by_name(conn, "alice")
    assert row["password_hash"] != ALICE_PASSWORD
    assert ALICE_PASSWORD not in row["password_hash"]
    assert row["password_hash"].startswith(("scrypt:", "pbkdf2:"))
    assert row["role"] == UserRole.USER.value
    assert users.find_user_by_name(conn, "bob")["role"] == UserRole.ADMIN.value


def test_same_password_hashes_differently(conn) -> None:
    users.create_user(conn, "carol", ALICE_PASSWORD)
    hashes = {users.find_user_by_name(conn, name)["password_hash"] for name in ("alice", "carol")}
    assert len(hashes) == 2  # salted


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        ("alice", ALICE_PASSWORD, "alice"),
        ("bob", BOB_PASSWORD, "bob"),
        ("alice", BOB_PASSWORD, None),
        ("alice", ALICE_PASSWORD.upper(), None),
        ("alice", "", None),
        ("nobody", ALICE_PASSWORD, None),
        ("ALICE", ALICE_PASSWORD, None),
    ],
)
def test_authenticate(conn, username: str, password: str, expected: str | None) -> None:
    user = users.authenticate(conn, username, password)
    assert (None if user is None else user["username"]) == expected


def test_duplicate_user(conn) -> None:
    with pytest.raises(UserExists, match="alice"):
        users.create_user(conn, "alice", "other")
    assert not users.ensure_user(conn, "alice", "other", UserRole.ADMIN)
    assert users.authenticate(conn, "alice", ALICE_PASSWORD) is not None
    assert users.find_user_by_name(conn, "alice")["role"] == "user"


def test_update_user(conn) -> None:
    users.update_user(conn, "alice", password="new password", role=UserRole.ADMIN)
    assert users.authenticate(conn, "alice", ALICE_PASSWORD) is None
    assert users.authenticate(conn, "alice", "new password")["role"] == "admin"


def test_revoke_token(conn, alice) -> None:
    future = 4_102_444_800.0  # 2100-01-01
    assert not bearers.user_bearer(conn, alice, "jti-1", 0).revoked
    users.revoke_token(conn, "jti-1", future)
    assert bearers.user_bearer(conn, alice, "jti-1", 0).revoked
    assert not bearers.user_bearer(conn, alice, "jti-2", 0).revoked
    users.revoke_token(conn, "jti-1", future)  # revoking twice is harmless
    assert bearers.user_bearer(conn, alice, "jti-1", 0).revoked


def test_a_password_change_revokes_the_tokens_of_earlier_generations(conn, alice) -> None:
    users.update_user(conn, "alice", password="new password")
    assert bearers.user_bearer(conn, alice, "jti-1", 0).revoked
    assert not bearers.user_bearer(conn, alice, "jti-1", 1).revoked
    assert bearers.user_bearer(conn, 999_999, "jti-1", 0) is None  # no such user


def test_revoking_purges_expired_entries(conn) -> None:
    def revoked(jti: str) -> bool:
        return conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)).fetchone()

    users.revoke_token(conn, "long-gone", 1.0)
    # An already expired token is purged at once: it is refused as expired anyway.
    assert not revoked("long-gone")
    conn.execute("INSERT INTO revoked_tokens (jti, expires_at) VALUES ('stale', 1.0)")
    users.revoke_token(conn, "fresh", 4_102_444_800.0)
    assert not revoked("stale")
    assert revoked("fresh")


def test_cached_filtered_list_follows_each_newly_done_job(conn, alice) -> None:
    cache = FilteredImagesCache(max_numbers=100)
    workload_id = make_workload(conn, alice, images=3)
    ids = job_ids(conn, workload_id)
    for job_id in ids:
        jobs.assign_job(conn, job_id, 1)
    seen = []
    for job_id in (ids[2], ids[0], ids[1]):
        assert jobs.complete_job(conn, *_key(conn, job_id), worker_id=1)
        seen.append(workloads.workload_progress(conn, workload_id, cache=cache).filtered_images)
        # A second read with nothing new is served from the cache, and is the same list.
        again = workloads.workload_progress(conn, workload_id, cache=cache).filtered_images
        assert again is seen[-1]
    assert seen == [[2], [0, 2], [0, 1, 2]]
