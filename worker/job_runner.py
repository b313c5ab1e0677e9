"""Run jobs in pool processes, one per slot, so filtering really uses every core.

The worker takes up to `concurrency x (1 + prefetch)` jobs: one per slot and `prefetch` more
per slot waiting in one line that every slot draws from, so a slot that finishes a batch
finds its next one ready instead of waiting for the scheduler. A free slot takes up to half
of a slot's share of what waits (never waiting for more to arrive), and runs them as one
batch in its own pool process under the time limit of each job. A slot whose process
overran (killed) or died gets a new one before its next batch; the job at fault is reported
failed, so the scheduler retries it (elsewhere if it can), and its batch-mates go back
unfinished at no cost.

A job that waited for a slot longer than the worker may hold it without starting it (the
dead-worker timeout), or that waits when the worker stops, is given back the same way.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from foundation import defaults
from protocol import JobAssignment, JobOutcome, JobResult, SubmitAnswer
from worker.pool_process import BatchStopped, Outcome, PoolProcess, PoolProcessLost

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _WaitingJob:
    assignment: JobAssignment
    taken_at: float  # time.monotonic() when the worker accepted it


class JobRunner:
    """Accepts jobs up to its capacity and reports each one's result."""

    def __init__(
        self,
        concurrency: int,
        report: Callable[[list[JobResult]], None],
        time_limit_s: float = defaults.JOB_TIME_LIMIT_S,
        prefetch: int = defaults.WORKER_PREFETCH,
    ) -> None:
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.capacity = concurrency * (1 + prefetch)
        self.batch_max = (2 + prefetch) // 2  # half a slot's share, rounded up
        self.time_limit_s = time_limit_s
        self._report = report
        self._context = multiprocessing.get_context("spawn")
        self._changed = threading.Condition()
        self._waiting: deque[_WaitingJob] = deque()
        self._started: set[int] = set()
        self._closing = threading.Event()
        self._api: tuple[str, str] | None = None  # the API's URL, the worker token
        # Start every process now, side by side (each imports Pillow), not at the first job.
        processes = [PoolProcess(self._context) for _ in range(concurrency)]
        self._slots = [
            threading.Thread(
                target=self._serve_slot, args=(process.wait_ready(),), name=f"slot-{i}", daemon=True
            )
            for i, process in enumerate(processes)
        ]
        for slot in self._slots:
            slot.start()

    def set_session(self, api_url: str, token: str) -> None:
        self._api = (api_url, token)

    def held_jobs(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The jobs running (their pool processes have them) and those prefetched (waiting
        for a free slot), read together, so a job that starts meanwhile is not missed."""
        with self._changed:
            waiting = tuple(sorted(job.assignment.job_id for job in self._waiting))
            return tuple(sorted(self._started)), waiting

    @property
    def held_job_ids(self) -> tuple[int, ...]:
        """Every job the worker holds: running or prefetched."""
        running, prefetched = self.held_jobs()
        return tuple(sorted(running + prefetched))

    def submit(self, assignments: Sequence[JobAssignment]) -> tuple[SubmitAnswer, ...]:
        """Take each job unless not joined yet or stopping, full, or it is held here already;
        answer for each.

        A job holds its place until its pool process answered, which is before its result
        goes out: the scheduler counts it the same way.
        """
        if self._api is None:
            return (SubmitAnswer.NOT_READY,)
        with self._changed:
            if self._closing.is_set():
                return (SubmitAnswer.NOT_READY,)
            held = self._started.union(job.assignment.job_id for job in self._waiting)
            now = time.monotonic()
            answers = []
            for assignment in assignments:
                if assignment.job_id in held:
                    answers.append(SubmitAnswer.REFUSED)
                elif len(held) >= self.capacity:
                    answers.append(SubmitAnswer.BUSY)
                else:
                    held.add(assignment.job_id)
                    self._waiting.append(_WaitingJob(assignment, now))
                    answers.append(SubmitAnswer.ACCEPTED)
            self._changed.notify_all()
        return tuple(answers)

    def give_back_stale(self, waited_s: float) -> None:
        """Give back the jobs that waited for a slot longer than `waited_s`, unstarted."""
        stale_before = time.monotonic() - waited_s
        with self._changed:
            stale = []
            while self._waiting and self._waiting[0].taken_at < stale_before:
                stale.append(self._waiting.popleft().assignment)
        reason = f"given back unstarted: no slot was free for {waited_s:g} s"
        self._give_back(stale, JobOutcome.RETURNED, reason)

    def drop_waiting(self, reason: str) -> None:
        """Drop every job waiting for a slot: they are no longer this worker's."""
        with self._changed:
            dropped = [job.assignment for job in self._waiting]
            self._waiting.clear()
        self._give_back(dropped, JobOutcome.DISCARDED, reason)

    def _give_back(self, jobs: list[JobAssignment], outcome: JobOutcome, reason: str) -> None:
        if jobs:
            log.info("%d job(s) %s: %s", len(jobs), outcome.value, reason)
            self._report([JobResult(job.job_id, outcome.value, reason) for job in jobs])

    def _serve_slot(self, process: PoolProcess) -> None:
        while batch := self._next_batch():
            process = self._alive_or_new(process)  # it may have died while idle
            self._run(process, batch)
            process = self._alive_or_new(process)  # killed over time, or died under a job
        process.stop()

    def _next_batch(self) -> list[JobAssignment]:
        """Wait for jobs and take up to `batch_max` of them; none once stopping."""
        with self._changed:
            self._changed.wait_for(lambda: self._waiting or self._closing.is_set())
            batch = [
                self._waiting.popleft().assignment
                for _ in range(min(self.batch_max, len(self._waiting)))
            ]
            self._started.update(job.job_id for job in batch)
        return batch

    def _run(self, process: PoolProcess, batch: list[JobAssignment]) -> None:
        api_url, token = self._api
        started = time.monotonic()
        try:
            outcomes = process.run(batch, api_url, token, self.time_limit_s)
        except BatchStopped as e:
            outcomes = _blame(batch, e)
        with self._changed:
            self._started.difference_update(job.job_id for job in batch)
        # Each job's share of its batch's time: what the scheduler sizes the prefetch by.
        duration_ms = round((time.monotonic() - started) * 1000 / len(batch))
        for job, (outcome, error) in zip(batch, outcomes, strict=True):
            if outcome != JobOutcome.DONE.value:
                log.warning("job %s %s: %s", job.job_id, outcome, error)
        self._report(
            [
                JobResult(job.job_id, outcome, error, duration_ms)
                for job, (outcome, error) in zip(batch, outcomes, strict=True)
            ]
        )

    def _alive_or_new(self, process: PoolProcess) -> PoolProcess:
        """Return `process` if it still runs, else a started replacement, tried until one
        starts; once stopping, tried once (a stop signal to the process group ends a starting
        one), and on failure the dead one: a batch left for it then fails."""
        while not process.alive:
            try:
                return PoolProcess(self._context).wait_ready()
            except (OSError, PoolProcessLost) as e:
                if self._closing.is_set():
                    log.warning("no new pool process while stopping: %s", e)
                    return process
                retry_s = defaults.POOL_PROCESS_START_RETRY_S
                log.error("could not start a pool process (%s); retrying in %g s", e, retry_s)
                self._closing.wait(retry_s)
        return process

    def shutdown(self, wait: bool) -> None:
        """Take no more jobs and give back those waiting; each slot finishes its batch,
        then ends its process."""
        with self._changed:
            self._closing.set()
            waiting = [job.assignment for job in self._waiting]
            self._waiting.clear()
            self._changed.notify_all()
        self._give_back(waiting, JobOutcome.RETURNED, "given back unstarted: the worker stops")
        if wait:
            for slot in self._slots:
                slot.join()


def _blame(batch: list[JobAssignment], stopped: BatchStopped) -> list[Outcome]:
    """The job whose step it was failed; its batch-mates go back unfinished, at no cost."""
    culprit = batch[stopped.index].job_id
    returned = f"given back unfinished: job {culprit} of its batch ended its pool process"
    return [
        (JobOutcome.FAILED.value, str(stopped))
        if index == stopped.index
        else (JobOutcome.RETURNED.value, returned)
        for index in range(len(batch))
    ]
