"""The scheduler's live view of its workers: who joined, what each holds, who fell silent.

Pure state: no datastore, no rpyc, no clock of its own; times come in as arguments.
A worker holds up to `capacity` jobs: one per slot, and its prefetch per slot waiting to
start. They are counted as the worker counts them: a job holds its place from the moment it
is placed until the worker itself says it is free (its result, a report that no longer
lists the job, a re-join without it) or the worker is declared dead.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from foundation import defaults
from scheduler.placement import WorkerSnapshot


@dataclass(frozen=True)
class WorkerRegistration:
    """A worker that just joined: its identity, capacity, RPC endpoint and running jobs."""

    worker_id: int
    name: str
    tags: frozenset[str]
    concurrency: int
    rpc_host: str
    rpc_port: int
    rpc_key: str
    running_job_ids: frozenset[int] = frozenset()  # what it still holds, as it says
    membership_renewed: bool = False  # its membership goes on, so those jobs stay its own
    prefetch: int = 0  # jobs it takes beyond each slot, waiting to start

    @property
    def kept_job_ids(self) -> frozenset[int]:
        """The running jobs that stay assigned to it; the rest are taken back."""
        return self.running_job_ids if self.membership_renewed else frozenset()


@dataclass
class WorkerState:
    """What the scheduler knows of one worker now."""

    registration: WorkerRegistration | None  # None: known from the datastore, not re-joined
    last_seen: float
    placed: dict[int, float] = field(default_factory=dict)  # job id → when placed here
    reported: frozenset[int] = frozenset()  # what it holds (runs or prefetched), per its word
    # Results that came in while a report may still list the job (sampled before it ended).
    finished_lately: set[int] = field(default_factory=set)
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    gpu_percent: float | None = None
    unresponsive: bool = False  # a submit_job failed: skipped until its next report
    full: bool = False  # it answered busy or not ready: no job until it reports or a job ends
    job_ms: float | None = None  # its jobs' recent time each (smoothed); None: none ended yet

    def proven_by(self, worker_key: str) -> bool:
        """Whether `worker_key` is the rpc key of this worker's join (constant time)."""
        return self.registration is not None and hmac.compare_digest(
            worker_key.encode("utf-8", "surrogatepass"), self.registration.rpc_key.encode()
        )

    def job_ended(self, job_id: int) -> bool:
        """Free the job's slot, as the worker did before it reported the end; return whether
        the job was placed here (False: a late result of a job already taken back)."""
        self.reported = self.reported - {job_id}
        self.finished_lately.add(job_id)
        self.full = False
        return self.placed.pop(job_id, None) is not None

    def job_took(self, duration_ms: int) -> None:
        """A job ended after `duration_ms` of the worker's time: fold it into the average."""
        weight = defaults.JOB_TIME_SMOOTHING
        previous = duration_ms if self.job_ms is None else self.job_ms
        self.job_ms = (1 - weight) * previous + weight * duration_ms

    @property
    def capacity(self) -> int:
        """How many jobs it should hold now: a slot each, and per slot as many waiting as
        fill the prefetch window by its recent jobs (at least one), within its prefetch."""
        reg = self.registration
        if reg is None:
            return 0
        if self.job_ms is None:
            prefetch = defaults.PREFETCH_UNMEASURED
        else:
            prefetch = max(1, int(defaults.PREFETCH_WINDOW_MS / max(self.job_ms, 0.1)))
        return reg.concurrency * (1 + min(reg.prefetch, prefetch))

    def snapshot(self, worker_id: int) -> WorkerSnapshot:
        reg = self.registration
        capacity = self.capacity
        # A job the worker still holds takes its place even after it was taken back.
        held = len(self.reported.union(self.placed))
        return WorkerSnapshot(
            worker_id=worker_id,
            name=reg.name if reg else "",
            tags=reg.tags if reg else frozenset(),
            capacity=capacity,
            held=max(held, capacity) if self.full else held,
            cpu_percent=self.cpu_percent,
            memory_percent=self.memory_percent,
            gpu_percent=self.gpu_percent,
            available=reg is not None and not self.unresponsive,
        )


class WorkerRegistry:
    """Every worker the scheduler counts on, or that still held jobs when it started."""

    def __init__(self) -> None:
        self._workers: dict[int, WorkerState] = {}

    def get(self, worker_id: int) -> WorkerState | None:
        return self._workers.get(worker_id)

    def restore(self, worker_id: int, job_ids: set[int], now: float) -> None:
        """Remember a worker that held jobs before a restart, until it re-joins or is dead."""
        self._workers[worker_id] = WorkerState(None, now, dict.fromkeys(job_ids, now))

    def join(self, registration: WorkerRegistration, now: float) -> WorkerState:
        """Start a fresh view of a worker that joined; it keeps the jobs it may keep.

        Every job it says it holds keeps its place until it says otherwise, kept or not.
        """
        previous = self._workers.get(registration.worker_id)
        placed_before = previous.placed if previous else {}
        kept = registration.kept_job_ids.intersection(placed_before)
        state = WorkerState(
            registration,
            last_seen=now,
            placed=dict.fromkeys(kept, now),
            reported=registration.running_job_ids,
        )
        self._workers[registration.worker_id] = state
        return state

    def remove(self, worker_id: int) -> None:
        del self._workers[worker_id]

    def silent(self, now: float, dead_after_s: float) -> list[int]:
        """Ids of the workers not heard from for more than `dead_after_s`."""
        return [
            worker_id
            for worker_id, worker in self._workers.items()
            if now - worker.last_seen > dead_after_s
        ]

    def snapshots(self) -> dict[int, WorkerSnapshot]:
        return {worker_id: w.snapshot(worker_id) for worker_id, w in self._workers.items()}

    def joined_ids(self) -> frozenset[int]:
        return frozenset(
            worker_id for worker_id, w in self._workers.items() if w.registration is not None
        )
