"""FairQueue: users take turns, then their workloads; FIFO within one; never blocked by one."""

from __future__ import annotations

from collections.abc import Callable

from datastore.jobs import QueuedJob
from scheduler.fair_queue import FairQueue


def job(
    job_id: int, workload_id: int, tags: frozenset[str] = frozenset(), user_id: int = 1
) -> QueuedJob:
    return QueuedJob(
        job_id=job_id,
        workload_id=workload_id,
        user_id=user_id,
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


def served_one_slot_at_a_time(queue: FairQueue, picks: int) -> list[int]:
    """Drain for a worker with one slot, as the scheduler does each time that slot frees."""
    served: list[int] = []
    busy = False

    def place(queued: QueuedJob) -> str | None:
        return None if busy else "w"

    for _ in range(picks):
        busy = False
        for queued, _ in queue.drain(place):
            served.append(queued.job_id)
            busy = True
    return served


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


def test_a_retry_goes_first_in_its_workload_but_waits_for_its_users_turn() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1, user_id=1))
    queue.push(job(2, workload_id=2, user_id=1))
    queue.push(job(3, workload_id=3, user_id=2))
    assert served_one_slot_at_a_time(queue, 1) == [1]
    queue.push(job(1, workload_id=1, user_id=1), front=True)  # job 1 failed: retried
    queue.push(job(4, workload_id=3, user_id=2), front=True)
    # User 2's turn first, then user 1's workload 2 (its turn), then the retry.
    assert drained_ids(queue) == [4, 2, 3, 1]


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


def test_users_take_turns_however_many_workloads_each_has() -> None:
    """Issue 10 item 7: 30 workloads of one user against one later workload of another."""
    queue = FairQueue()
    many = [job(w * 3 + n + 1, workload_id=w + 1, user_id=1) for w in range(30) for n in range(3)]
    for queued in many:
        queue.push(queued)
    for job_id in (1001, 1002, 1003):
        queue.push(job(job_id, workload_id=99, user_id=2))
    served = served_one_slot_at_a_time(queue, len(many) + 3)
    assert served[:6] == [1, 1001, 4, 1002, 7, 1003]
    # The first user's workloads still take turns among themselves, FIFO within each.
    round_robin = [w * 3 + n + 1 for n in range(3) for w in range(30)]
    assert served[6:] == round_robin[3:]
    assert len(queue) == 0


def test_a_users_workloads_take_turns_within_that_users_turns() -> None:
    queue = FairQueue()
    for job_id in (1, 2, 3):
        queue.push(job(job_id, workload_id=10, user_id=1))
    for job_id in (4, 5):
        queue.push(job(job_id, workload_id=20, user_id=1))
    for job_id in (6, 7):
        queue.push(job(job_id, workload_id=30, user_id=2))
    assert drained_ids(queue) == [1, 6, 4, 7, 2, 5, 3]


def test_a_user_who_comes_back_waits_behind_the_users_waiting() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1, user_id=1))
    queue.push(job(2, workload_id=2, user_id=2))
    queue.push(job(3, workload_id=2, user_id=2))
    assert served_one_slot_at_a_time(queue, 1) == [1]
    queue.push(job(4, workload_id=3, user_id=3))
    queue.push(job(5, workload_id=1, user_id=1))
    assert drained_ids(queue) == [2, 4, 5, 3]


def test_a_user_whose_jobs_cannot_be_placed_does_not_block_other_users() -> None:
    gpu = frozenset({"gpu"})
    queue = FairQueue()
    queue.push(job(1, workload_id=1, tags=gpu, user_id=1))
    queue.push(job(2, workload_id=1, tags=gpu, user_id=1))
    queue.push(job(3, workload_id=2, user_id=1))
    queue.push(job(4, workload_id=2, user_id=1))
    queue.push(job(5, workload_id=3, user_id=2))
    queue.push(job(6, workload_id=3, user_id=2))
    queue.push(job(7, workload_id=4, tags=gpu, user_id=3))

    def place(queued: QueuedJob) -> str | None:
        return None if "gpu" in queued.tags else "cpu-worker"

    # User 1's blocked workload lets its other one take user 1's turns.
    assert drained_ids(queue, place) == [3, 5, 4, 6]
    assert len(queue) == 3
    # User 3 was skipped without using a turn, so it goes before user 1, who had two;
    # user 1's blocked workload kept its order.
    assert drained_ids(queue) == [7, 1, 2]


def test_drain_stops_when_nothing_is_placeable() -> None:
    queue = FairQueue()
    queue.push(job(1, workload_id=1))
    queue.push(job(2, workload_id=2))
    queue.push(job(3, workload_id=3, user_id=2))
    queue.push(job(4, workload_id=3, user_id=2))
    calls: list[int] = []

    def never(queued: QueuedJob) -> None:
        calls.append(queued.job_id)
        return None

    assert drained_ids(queue, never) == []
    assert calls == [1, 2, 3]  # one pass over the heads, then it gives up
    assert len(queue) == 4


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
