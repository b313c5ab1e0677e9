"""Waiting jobs: first in, first out within a workload, round-robin across workloads."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import TypeVar

from datastore.jobs import QueuedJob

T = TypeVar("T")


class FairQueue:
    """Per-workload FIFO queues served in turn, so one big workload cannot starve others."""

    def __init__(self) -> None:
        self._by_workload: OrderedDict[int, deque[QueuedJob]] = OrderedDict()
        self._ids: set[int] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._ids

    def push(self, job: QueuedJob, front: bool = False) -> None:
        """Add a job (a retry goes to the front of its workload's line); ignore duplicates."""
        if job.job_id in self._ids:
            return
        line = self._by_workload.setdefault(job.workload_id, deque())
        if front:
            line.appendleft(job)
        else:
            line.append(job)
        self._ids.add(job.job_id)

    def drain(self, place: Callable[[QueuedJob], T | None]) -> Iterator[tuple[QueuedJob, T]]:
        """Yield (job, placement) pairs, one workload at a time in turn, until none can be placed.

        `place` answers where a job can go, or None; a workload whose head job cannot be
        placed is skipped for this pass so that it does not block the others.
        """
        while self._by_workload:
            placed_any = False
            for workload_id in list(self._by_workload):
                line = self._by_workload[workload_id]
                target = place(line[0])
                if target is None:
                    continue
                job = line.popleft()
                self._ids.discard(job.job_id)
                if line:
                    self._by_workload.move_to_end(workload_id)
                else:
                    del self._by_workload[workload_id]
                placed_any = True
                yield job, target
            if not placed_any:
                return
