"""Waiting jobs: users take turns, then each user's workloads; first in, first out within one."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import TypeVar

from datastore.jobs import QueuedJob

T = TypeVar("T")


class FairQueue:
    """Round-robin across users, then across a user's workloads, FIFO within a workload.

    So one user cannot starve others by splitting a backlog into many workloads, and one
    big workload cannot starve its owner's other workloads. A user or workload leaves the
    turn order when its last job is taken, so memory follows the queued jobs.
    """

    def __init__(self) -> None:
        self._by_user: OrderedDict[int, OrderedDict[int, deque[QueuedJob]]] = OrderedDict()
        self._ids: set[int] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._ids

    def push(self, job: QueuedJob, front: bool = False) -> None:
        """Add a job (a retry goes to the front of its workload's line); ignore duplicates."""
        if job.job_id in self._ids:
            return
        workloads = self._by_user.setdefault(job.user_id, OrderedDict())
        line = workloads.setdefault(job.workload_id, deque())
        if front:
            line.appendleft(job)
        else:
            line.append(job)
        self._ids.add(job.job_id)

    def drain(self, place: Callable[[QueuedJob], T | None]) -> Iterator[tuple[QueuedJob, T]]:
        """Yield (job, placement) pairs, one user at a time in turn, until none can be placed.

        `place` answers where a job can go, or None. In a user's turn, that user's
        workloads are tried in their turn order and the first whose head job can be placed
        is served; a workload or user with nothing placeable is skipped for this pass and
        keeps its place, so it does not block the others.
        """
        while self._by_user:
            placed_any = False
            for user_id in list(self._by_user):
                workloads = self._by_user[user_id]
                served = self._take_placeable(workloads, place)
                if served is None:
                    continue
                job, target = served
                if workloads:
                    self._by_user.move_to_end(user_id)
                else:
                    del self._by_user[user_id]
                placed_any = True
                yield job, target
            if not placed_any:
                return

    def _take_placeable(
        self, workloads: OrderedDict[int, deque[QueuedJob]], place: Callable[[QueuedJob], T | None]
    ) -> tuple[QueuedJob, T] | None:
        """Remove and return the first head job of `workloads` that `place` accepts."""
        for workload_id, line in workloads.items():
            target = place(line[0])
            if target is None:
                continue
            job = line.popleft()
            self._ids.discard(job.job_id)
            if line:
                workloads.move_to_end(workload_id)
            else:
                del workloads[workload_id]
            return job, target  # at once: the loop must not go on over the changed order
        return None
