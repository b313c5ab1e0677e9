"""FairQueue: FIFO within a workload, round-robin across workloads, never blocked by one."""

from __future__ import annotations

from collections.abc import Callable

from datastore.jobs import QueuedJob
from scheduler.fair_queue import FairQueue


def job(job_id: int, workload_id: int, tags: frozenset[str] = frozenset()) -> QueuedJob:
    return QueuedJob(
        job_id=job_id,
        workload_id=workload_id,
        image_number=job_id,
        filter_name="grayscale",
        params={},
        tags=tags,
        attempts=0,
        last_worker_id=None,
    )


def place_anywhere(queued: QueuedJob) -> str:
    return "w1"


def drained_ids(queue: FairQueue, place: Callable[[QueuedJob], object] = place_anywhere):
    return [queued.job_id for queued, _ in queue.drain(place)]


def test_empty_queue() -> None:
    queue = FairQueue()
    assert len(queue) == 0
    assert 1 not in queue
    assert drained_ids(queue) == []


def test_fifo_within_one_workload() -> None:
    queue = FairQueue()
    for job_id in (5, 2, 9, 1):
        queue.push(job(job_id, workload_id=1))
    assert drained_ids(queue) == [5, 2, 9, 1]
    assert len(queue) == 0


def test_round_robin_across_workloads() -> None:
    queue = FairQueue()
    for job_id in (1, 2, 3, 4):
        queue.push(job(job_id, workload_id=10))
    for job_id in (5, 6):
        queue.push(job(job_id, workload_id=20))
    queue.push(job(7, workload_id=30))
    assert drained_ids(queue) == [1, 5, 7, 2, 6, 3, 4]


def test_a_big_workload_does_not_starve_a_later_one() -> None:
    queue = FairQueue()
    for job_id in range(1, 101):
        queue.push(job(job_id, workload_id=1))
    queue.push(job(1000, workload_id=2))
    assert drained_ids(queue)[:2] == [1, 1000]


def test_drain_yields_the_placement() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    queue.push(job(2, workload_id=1))
    pairs = list(queue.drain(lambda queued: f"worker-for-{queued.job_id}"))
    assert [(queued.job_id, target) for queued, target in pairs] == [
        (1, "worker-for-1"),
        (2, "worker-for-2"),
    ]


def test_falsy_placement_is_still_a_placement() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    assert list(queue.drain(lambda queued: 0)) == [(job(1, workload_id=1), 0)]
    assert len(queue) == 0


def test_duplicate_push_is_ignored() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    queue.push(job(2, workload_id=1))
    queue.push(job(1, workload_id=1))
    queue.push(job(1, workload_id=1), front=True)
    assert len(queue) == 2
    assert drained_ids(queue) == [1, 2]


def test_a_drained_job_can_be_pushed_again() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    assert drained_ids(queue) == [1]
    assert 1 not in queue
    queue.push(job(1, workload_id=1))
    assert 1 in queue
    assert drained_ids(queue) == [1]


def test_push_front_puts_a_retry_at_the_head_of_its_workload() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    queue.push(job(2, workload_id=1))
    queue.push(job(3, workload_id=2))
    queue.push(job(9, workload_id=1), front=True)
    assert drained_ids(queue) == [9, 3, 1, 2]


def test_push_front_on_a_new_workload() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    queue.push(job(2, workload_id=2), front=True)
    assert drained_ids(queue) == [1, 2]


def test_unplaceable_head_does_not_block_other_workloads() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1, tags=frozenset({"gpu"})))
    queue.push(job(2, workload_id=1))
    queue.push(job(3, workload_id=2))
    queue.push(job(4, workload_id=2))

    def place(queued: QueuedJob) -> str | None:
        return None if "gpu" in queued.tags else "cpu-worker"

    assert drained_ids(queue, place) == [3, 4]
    # The blocked workload keeps its order: its head waits, the job behind it too.
    assert len(queue) == 2
    assert 1 in queue
    assert 2 in queue
    assert drained_ids(queue) == [1, 2]


def test_drain_stops_when_nothing_is_placeable() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    queue.push(job(2, workload_id=2))
    calls: list[int] = []

    def never(queued: QueuedJob) -> None:
        calls.append(queued.job_id)
        return None

    assert drained_ids(queue, never) == []
    assert calls == [1, 2]  # one pass over the heads, then it gives up
    assert len(queue) == 2


def test_drain_stops_when_slots_run_out() -> None:
    queue = FairQueue()
    for job_id in range(1, 6):
        queue.push(job(job_id, workload_id=job_id % 2))
    free_slots = [3]

    def place(queued: QueuedJob) -> str | None:
        if free_slots[0] == 0:
            return None
        free_slots[0] -= 1
        return "w"

    placed = drained_ids(queue, place)
    assert placed == [1, 2, 3]
    assert len(queue) == 2
    assert all(job_id not in queue for job_id in placed)
    assert 4 in queue
    assert 5 in queue


def test_contains_and_len_follow_pushes_and_drains() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    queue.push(job(2, workload_id=2))
    assert len(queue) == 2
    assert 1 in queue
    assert 2 in queue
    assert 3 not in queue
    drain = queue.drain(place_anywhere)
    first, _ = next(drain)
    assert first.job_id == 1
    assert 1 not in queue
    assert len(queue) == 1
    drain.close()
    assert 2 in queue
    assert drained_ids(queue) == [2]


def test_jobs_pushed_while_draining_are_served() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    served = []
    for queued, _ in queue.drain(place_anywhere):
        served.append(queued.job_id)
        if queued.job_id == 1:
            queue.push(job(2, workload_id=1))
            queue.push(job(3, workload_id=2))
    assert sorted(served) == [1, 2, 3]
    assert len(queue) == 0
