"""A link's calls: a worker's jobs go in as few calls as fit a quarter of a frame."""

from __future__ import annotations

from protocol import JobAssignment, JobBatch
from scheduler.worker_link import CALL_MAX_BYTES, split_calls


def jobs(count: int, radius_digits: int = 1) -> list[JobAssignment]:
    params = {"radius": float("1." + "1" * radius_digits)}
    return [JobAssignment(n, 1, n, "blur", params) for n in range(count)]


def test_a_few_jobs_go_in_one_call():
    assert list(split_calls(jobs(5))) == [tuple(jobs(5))]


def test_many_jobs_are_cut_into_calls_within_the_bound_in_order():
    many = jobs(1000, radius_digits=15)
    calls = list(split_calls(many))
    assert len(calls) > 1
    assert all(len(JobBatch(call).encode()) <= CALL_MAX_BYTES for call in calls)
    assert [job for call in calls for job in call] == many


def test_no_call_is_empty():
    assert list(split_calls([])) == []
    assert list(split_calls(jobs(3), max_bytes=1)) == [(job,) for job in jobs(3)]
