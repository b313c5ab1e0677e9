"""Placement: the can_run filter, the load score and pick_worker's choice."""

from __future__ import annotations

import pytest

from scheduler.placement import WorkerSnapshot, can_run, load_score, pick_worker


def worker(
    worker_id: int,
    *,
    tags: tuple[str, ...] = (),
    capacity: int = 2,
    held: int = 0,
    cpu: float = 0.0,
    memory: float = 0.0,
    gpu: float | None = None,
    available: bool = True,
) -> WorkerSnapshot:
    return WorkerSnapshot(
        worker_id=worker_id,
        name=f"w{worker_id}",
        tags=frozenset(tags),
        capacity=capacity,
        held=held,
        cpu_percent=cpu,
        memory_percent=memory,
        gpu_percent=gpu,
        available=available,
    )


NO_TAGS: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("snapshot", "required", "expected"),
    [
        (worker(1), NO_TAGS, True),
        (worker(1, available=False), NO_TAGS, False),
        (worker(1, tags=("gpu",)), frozenset({"gpu"}), True),
        (worker(1, tags=("gpu", "ssd")), frozenset({"gpu"}), True),
        (worker(1, tags=("gpu",)), frozenset({"gpu", "ssd"}), False),
        (worker(1), frozenset({"gpu"}), False),
        (worker(1, capacity=2, held=1), NO_TAGS, True),
        (worker(1, capacity=2, held=2), NO_TAGS, False),
        (worker(1, capacity=2, held=3), NO_TAGS, False),
        (worker(1, capacity=0, held=0), NO_TAGS, False),
        (worker(1, tags=("gpu",), available=False), frozenset({"gpu"}), False),
    ],
    ids=[
        "idle",
        "unavailable",
        "has-tag",
        "superset-of-tags",
        "missing-one-tag",
        "no-tags-at-all",
        "one-free-slot",
        "full",
        "over-full",
        "zero-capacity",
        "tagged-but-unavailable",
    ],
)
def test_can_run(snapshot: WorkerSnapshot, required: frozenset[str], expected: bool) -> None:
    assert can_run(snapshot, required) is expected


def test_free_places() -> None:
    assert worker(1, capacity=4, held=1).free_places == 3


def test_load_score_of_idle_worker_is_zero() -> None:
    assert load_score(worker(1)) == 0.0


def test_load_score_of_fully_loaded_worker() -> None:
    busy = worker(1, capacity=2, held=2, cpu=100, memory=100, gpu=100)
    assert load_score(busy) == pytest.approx(1.0 + 0.5 + 0.25 + 0.25)


@pytest.mark.parametrize(
    ("lighter", "heavier"),
    [
        (worker(1, held=0), worker(2, held=1)),
        (worker(1, capacity=4, held=1), worker(2, capacity=2, held=1)),
        (worker(1, cpu=10), worker(2, cpu=90)),
        (worker(1, memory=10), worker(2, memory=90)),
        (worker(1, gpu=None), worker(2, gpu=50)),
        (worker(1, gpu=10), worker(2, gpu=50)),
        # A busy slot outweighs a full CPU figure (slot weight 1 > CPU weight 0.5).
        (worker(1, capacity=1, held=0, cpu=100), worker(2, capacity=1, held=1)),
    ],
    ids=["slots", "slot-fraction", "cpu", "memory", "gpu-none-counts-zero", "gpu", "slot-vs-cpu"],
)
def test_load_score_ordering(lighter: WorkerSnapshot, heavier: WorkerSnapshot) -> None:
    assert load_score(lighter) < load_score(heavier)


def test_load_score_zero_capacity_does_not_divide_by_zero() -> None:
    assert load_score(worker(1, capacity=0, held=0)) == 0.0


def test_pick_worker_picks_least_loaded() -> None:
    workers = [worker(1, held=1), worker(2, cpu=30), worker(3, held=1, cpu=5)]
    assert pick_worker(NO_TAGS, workers).worker_id == 2


def test_pick_worker_ties_break_by_lowest_worker_id() -> None:
    workers = [worker(7), worker(3), worker(5)]
    assert pick_worker(NO_TAGS, workers).worker_id == 3


def test_pick_worker_skips_workers_that_cannot_run() -> None:
    workers = [
        worker(1, available=False),
        worker(2, held=2),
        worker(3, tags=("cpu",)),
        worker(4, held=1, cpu=80, tags=("gpu", "big")),
    ]
    assert pick_worker(frozenset({"gpu"}), workers).worker_id == 4


def test_pick_worker_requires_every_tag() -> None:
    workers = [worker(1, tags=("gpu",)), worker(2, tags=("gpu", "ssd"), held=1)]
    assert pick_worker(frozenset({"gpu", "ssd"}), workers).worker_id == 2


def test_pick_worker_prefers_workers_not_in_avoid() -> None:
    workers = [worker(1), worker(2, held=1, cpu=90)]
    assert pick_worker(NO_TAGS, workers, avoid=frozenset({1})).worker_id == 2


def test_pick_worker_waits_for_a_busy_worker_rather_than_reuse_an_avoided_one() -> None:
    workers = [worker(1), worker(2, available=False), worker(3, held=2)]
    assert pick_worker(NO_TAGS, workers, avoid=frozenset({1})) is None


@pytest.mark.parametrize(
    "other",
    [worker(2, available=False), worker(2, tags=("ssd",))],
    ids=["other-unavailable", "other-lacks-tag"],
)
def test_pick_worker_uses_avoided_worker_when_no_other_is_suitable(other) -> None:
    workers = [worker(1, tags=("gpu",)), other]
    assert pick_worker(frozenset({"gpu"}), workers, frozenset({1})).worker_id == 1


def test_pick_worker_among_avoided_still_picks_least_loaded() -> None:
    workers = [worker(1, held=1), worker(2)]
    assert pick_worker(NO_TAGS, workers, avoid=frozenset({1, 2})).worker_id == 2


@pytest.mark.parametrize(
    ("required", "workers"),
    [
        (NO_TAGS, []),
        (NO_TAGS, [worker(1, available=False), worker(2, held=2)]),
        (frozenset({"gpu"}), [worker(1), worker(2, tags=("ssd",))]),
    ],
    ids=["no-workers", "none-available-or-free", "none-tagged"],
)
def test_pick_worker_returns_none_when_nothing_fits(
    required: frozenset[str], workers: list[WorkerSnapshot]
) -> None:
    assert pick_worker(required, workers) is None
    assert pick_worker(required, workers, avoid=frozenset({1, 2})) is None


def test_pick_worker_accepts_a_one_shot_iterable() -> None:
    assert pick_worker(NO_TAGS, iter([worker(2, held=1), worker(9)])).worker_id == 9
