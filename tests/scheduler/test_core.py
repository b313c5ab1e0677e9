"""The scheduler's core: plain calls with a fake clock, one test per transition and fault.

The core never touches the datastore: where a decision needs the datastore's answer (did a
failed attempt requeue the job or fail it?), the test plays the datastore's part.
"""

from __future__ import annotations

import pytest

from datastore.jobs import QueuedJob
from foundation import defaults
from protocol import JobOutcome, JobResult, JobResults, SubmitAnswer, Telemetry
from scheduler.core import DIED_ERROR, LOST_JOB_ERROR, RESTARTED_ERROR, SchedulerCore
from scheduler.decisions import (
    AcceptResult,
    Assign,
    DeclareDead,
    Drop,
    FailAttempt,
    FailedForGood,
    HandBack,
    LoadNewJobs,
    OpenLink,
    RecordLoad,
    ReleaseJobs,
    ReloadQueue,
    Requeue,
    SetAside,
    Settle,
)
from scheduler.worker_registry import WorkerRegistration

INTERVAL_S = 1.0
DEAD_AFTER_S = 3 * INTERVAL_S
SWEEP_S = 2.0


class Clock:
    """Time as the shell would pass it; it moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core(clock: Clock) -> SchedulerCore:
    core = SchedulerCore(dead_after_s=DEAD_AFTER_S, recovery_sweep_s=SWEEP_S)
    assert core.restore({}, clock.now) == [LoadNewJobs(0)]
    return core


def job(job_id: int, *, workload_id: int = 1, tags=(), last_worker_id=None) -> QueuedJob:
    return QueuedJob(
        job_id=job_id,
        workload_id=workload_id,
        user_id=1,
        image_number=job_id,
        filter_name="grayscale",
        params={},
        tags=frozenset(tags),
        attempts=0 if last_worker_id is None else 1,
        last_worker_id=last_worker_id,
    )


def registration(
    worker_id: int,
    *,
    concurrency: int = 1,
    tags=(),
    key: str = "",
    running=(),
    renewed: bool = False,
    prefetch: int = 0,
) -> WorkerRegistration:
    return WorkerRegistration(
        worker_id=worker_id,
        name=f"w{worker_id}",
        tags=frozenset(tags),
        concurrency=concurrency,
        rpc_host="127.0.0.1",
        rpc_port=9000 + worker_id,
        rpc_key=key or f"key-{worker_id}",
        running_job_ids=frozenset(running),
        membership_renewed=renewed,
        prefetch=prefetch,
    )


def report(reg: WorkerRegistration, running=(), key: str | None = None, prefetched=()) -> Telemetry:
    return Telemetry(
        worker_id=reg.worker_id,
        cpu_percent=0.0,
        memory_percent=0.0,
        gpu=None,
        running_job_ids=tuple(running),
        worker_key=reg.rpc_key if key is None else key,
        prefetched_job_ids=tuple(prefetched),
    )


def result(
    reg: WorkerRegistration,
    job_id: int,
    outcome: JobOutcome = JobOutcome.DONE,
    error: str = "",
    key: str | None = None,
) -> JobResults:
    """A message with one job's result."""
    return results(reg, (job_id, outcome, error), key=key)


def results(
    reg: WorkerRegistration, *ended: tuple[int, JobOutcome, str], key: str | None = None
) -> JobResults:
    """A message with several jobs' results: (job id, outcome, error) each."""
    return JobResults(
        worker_id=reg.worker_id,
        results=tuple(
            JobResult(job_id, outcome.value, error, duration_ms=12)
            for job_id, outcome, error in ended
        ),
        worker_key=reg.rpc_key if key is None else key,
    )


def accepted(message: JobResults, late: bool = False) -> AcceptResult:
    """The core's acceptance of a message's one result."""
    [only] = message.results
    return AcceptResult(only, message.worker_id, late)


def placed(core: SchedulerCore, clock: Clock) -> list[tuple[int, int]]:
    """(job id, worker id) of every job the core places now."""
    return [(a.job.job_id, a.worker_id) for a in core.place(clock.now)]


def join(core: SchedulerCore, clock: Clock, reg: WorkerRegistration) -> None:
    assert core.on_join(reg, clock.now) == [
        OpenLink(reg),
        ReleaseJobs(reg.worker_id, reg.kept_job_ids, RESTARTED_ERROR),
    ]
    assert core.attempts_recorded([], [], RESTARTED_ERROR) == []  # the datastore had none


# The job state machine -----------------------------------------------------------------


def test_queued_to_running_assigns_to_a_joined_worker_with_a_free_slot(core, clock):
    core.add_jobs([job(1), job(2)])
    assert core.place(clock.now) == []  # no worker yet
    w1 = registration(1)
    join(core, clock, w1)
    assert core.place(clock.now) == [Assign(job(1), 1)]
    assert placed(core, clock) == []  # its one slot is held by job 1
    assert core.joined_worker_ids() == {1}


def test_new_jobs_load_after_the_last_seen_id(core):
    core.add_jobs([job(4), job(9)])
    assert core.on_jobs_queued() == [LoadNewJobs(9)]


def test_running_to_done_frees_the_slot_and_settles_the_job(core, clock):
    w1 = registration(1)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2)])
    assert placed(core, clock) == [(1, 1)]
    done = result(w1, 1)
    assert core.on_results(done) == [accepted(done, late=False), Settle((1,))]
    assert placed(core, clock) == [(2, 1)]


def test_a_failed_attempt_below_the_limit_is_retried_on_another_worker(core, clock):
    w1, w2 = registration(1), registration(2)
    join(core, clock, w1)
    core.add_jobs([job(1)])
    assert placed(core, clock) == [(1, 1)]
    join(core, clock, w2)
    failed = result(w1, 1, JobOutcome.FAILED, "boom")
    assert core.on_results(failed) == [
        accepted(failed, late=False),
        FailAttempt(1, 1, "boom"),
    ]
    # The datastore put it back in the queue (attempt 1 of 3).
    assert core.attempts_recorded([1], [], "boom") == [Requeue((1,))]
    core.requeue([job(1, last_worker_id=1)])
    assert placed(core, clock) == [(1, 2)]  # worker 1 is free, but failed it last time


def test_a_failed_attempt_at_the_limit_fails_the_job_for_good(core, clock):
    w1 = registration(1)
    join(core, clock, w1)
    core.add_jobs([job(1)])
    placed(core, clock)
    assert FailAttempt(1, 1, "bad data") in core.on_results(
        result(w1, 1, JobOutcome.FAILED, "bad data")
    )
    # The datastore counted the third attempt: retries are used up.
    assert core.attempts_recorded([], [1], "bad data") == [FailedForGood((1,), "bad data")]
    assert placed(core, clock) == []


def test_a_retry_goes_back_to_the_same_worker_when_no_other_could_run_it(core, clock):
    w1 = registration(1, tags=("gpu",))
    join(core, clock, w1)
    join(core, clock, registration(2))  # lacks the tag
    core.requeue([job(1, tags=("gpu",), last_worker_id=1)])
    assert placed(core, clock) == [(1, 1)]


def test_a_job_no_longer_queued_when_assigned_frees_its_slot(core, clock):
    join(core, clock, registration(1))
    core.add_jobs([job(1), job(2)])
    assert placed(core, clock) == [(1, 1)]
    core.assignment_void(1, 1)  # done or deleted meanwhile
    assert placed(core, clock) == [(2, 1)]


# Faults ------------------------------------------------------------------------------


def test_a_job_whose_tags_no_worker_has_waits_for_one(core, clock):
    join(core, clock, registration(1, tags=("cpu",)))
    core.add_jobs([job(1, tags=("gpu",)), job(2, workload_id=2)])
    assert placed(core, clock) == [(2, 1)]  # the other workload is not blocked
    join(core, clock, registration(2, tags=("gpu", "ssd")))
    assert placed(core, clock) == [(1, 2)]


def test_a_result_with_a_wrong_key_is_dropped_and_frees_nothing(core, clock):
    w1 = registration(1)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2)])
    placed(core, clock)
    forged = result(w1, 1, JobOutcome.FAILED, "forged", key="not-the-key")
    assert core.on_results(forged) == [Drop(1, "result", "without its key", suspicious=True)]
    assert placed(core, clock) == []  # job 1 still holds the slot


def test_a_report_with_a_wrong_key_is_dropped_and_keeps_nobody_alive(core, clock):
    w1 = registration(1)
    join(core, clock, w1)
    clock.advance(DEAD_AFTER_S)
    forged = report(w1, key="not-the-key")
    assert core.on_telemetry(forged, clock.now) == [
        Drop(1, "report", "without its key", suspicious=True)
    ]
    assert DeclareDead(1) in core.on_tick(clock.advance(1))


def test_a_result_from_a_dead_worker_is_dropped(core, clock):
    w1 = registration(1)
    join(core, clock, w1)
    core.add_jobs([job(1)])
    placed(core, clock)
    core.on_tick(clock.advance(DEAD_AFTER_S + 0.5))
    assert core.on_results(result(w1, 1)) == [
        Drop(1, "result", "not joined here", suspicious=False)
    ]
    assert core.on_telemetry(report(w1), clock.now) == [
        Drop(1, "report", "not joined here", suspicious=False)
    ]


def test_a_result_with_the_key_of_an_earlier_join_is_dropped(core, clock):
    old = registration(1, key="old-key")
    join(core, clock, old)
    join(core, clock, registration(1, key="new-key"))
    assert core.on_results(result(old, 1)) == [
        Drop(1, "result", "without its key", suspicious=True)
    ]


def test_a_late_result_frees_the_slot_and_changes_no_job(core, clock):
    """The job was taken back (lost, here) and its failed result came afterwards."""
    w1 = registration(1)
    join(core, clock, w1)
    core.add_jobs([job(1)])
    placed(core, clock)
    core.on_telemetry(report(w1, running=()), clock.advance(DEAD_AFTER_S + 0.5))
    late = result(w1, 1, JobOutcome.FAILED, "too late")
    assert core.on_results(late) == [accepted(late, late=True)]  # no second attempt lost


def test_a_late_done_result_still_wakes_who_waits(core, clock):
    w1 = registration(1)
    join(core, clock, w1)
    done = result(w1, 5)
    assert core.on_results(done) == [accepted(done, late=True), Settle((5,))]


def test_a_job_the_worker_lost_costs_an_attempt_after_the_grace_period(core, clock):
    w1 = registration(1, concurrency=2)
    join(core, clock, w1)
    core.add_jobs([job(1)])
    placed(core, clock)
    # A report sampled before the job arrived does not list it: within the grace, no loss.
    assert core.on_telemetry(report(w1), clock.advance(DEAD_AFTER_S)) == [
        RecordLoad(report(w1), clock.now)
    ]
    decisions = core.on_telemetry(report(w1), clock.advance(0.5))
    assert decisions == [RecordLoad(report(w1), clock.now), FailAttempt(1, 1, LOST_JOB_ERROR)]
    assert core.attempts_recorded([1], [], LOST_JOB_ERROR) == [Requeue((1,))]


def test_a_job_the_worker_still_lists_is_not_lost(core, clock):
    w1 = registration(1)
    join(core, clock, w1)
    core.add_jobs([job(1)])
    placed(core, clock)
    still = report(w1, running=(1,))
    assert core.on_telemetry(still, clock.advance(10 * DEAD_AFTER_S)) == [
        RecordLoad(still, clock.now)
    ]


def test_a_worker_silent_for_three_intervals_is_declared_dead(core, clock):
    w1, w2 = registration(1), registration(2)
    join(core, clock, w1)
    join(core, clock, w2)
    clock.advance(DEAD_AFTER_S)
    core.on_telemetry(report(w2), clock.now)
    assert core.on_tick(clock.now) == [ReloadQueue(0)]  # silent 3 intervals exactly: alive
    assert core.on_tick(clock.advance(0.1)) == [
        DeclareDead(1),
        ReleaseJobs(1, frozenset(), DIED_ERROR),
    ]
    assert core.joined_worker_ids() == {2}
    # The datastore released its jobs: one back in the queue, one out of attempts.
    assert core.attempts_recorded([7], [8], DIED_ERROR) == [
        Requeue((7,)),
        FailedForGood((8,), DIED_ERROR),
    ]


def test_a_worker_restored_from_the_datastore_is_dead_unless_it_re_joins(clock):
    core = SchedulerCore(dead_after_s=DEAD_AFTER_S, recovery_sweep_s=SWEEP_S)
    core.restore({1: {10}, 2: {20}}, clock.now)
    assert core.joined_worker_ids() == frozenset()
    w1 = registration(1, running=(10,), renewed=True)
    assert core.on_join(w1, clock.now)[1] == ReleaseJobs(1, frozenset({10}), RESTARTED_ERROR)
    core.on_telemetry(report(w1, running=(10,)), clock.advance(DEAD_AFTER_S + 0.5))
    assert [d for d in core.on_tick(clock.now) if isinstance(d, DeclareDead)] == [DeclareDead(2)]


def test_a_re_join_takes_back_the_jobs_a_new_membership_cannot_keep(core, clock):
    join(core, clock, registration(1, concurrency=2))
    core.add_jobs([job(1), job(2)])
    placed(core, clock)
    again = registration(1, concurrency=2, key="new", running=(1, 2))  # a new membership
    assert core.on_join(again, clock.now) == [
        OpenLink(again),
        ReleaseJobs(1, frozenset(), RESTARTED_ERROR),
    ]


def test_a_re_join_that_still_runs_jobs_keeps_their_slots_until_they_end(core, clock):
    """Taken back or not, a job the worker runs holds its slot there: no job is sent into
    a slot the worker would refuse as busy."""
    join(core, clock, registration(1, concurrency=2))
    core.add_jobs([job(1), job(2)])
    placed(core, clock)
    again = registration(1, concurrency=2, key="new", running=(1, 2))
    core.on_join(again, clock.now)
    core.attempts_recorded([1, 2], [], RESTARTED_ERROR)
    core.requeue([job(1, last_worker_id=1), job(2, last_worker_id=1)])
    core.add_jobs([job(3)])
    assert placed(core, clock) == []
    # Its upload for job 1 was refused (its old membership ended): discarded, slot free.
    discarded = result(again, 1, JobOutcome.DISCARDED)
    assert core.on_results(discarded) == [accepted(discarded, late=True), Settle((1,))]
    assert placed(core, clock) == [(1, 1)]


def test_a_renewed_re_join_keeps_its_jobs_and_their_slots(core, clock):
    join(core, clock, registration(1, concurrency=2))
    core.add_jobs([job(1), job(2)])
    placed(core, clock)
    again = registration(1, concurrency=2, key="new", running=(1,), renewed=True)
    assert core.on_join(again, clock.now)[1] == ReleaseJobs(1, frozenset({1}), RESTARTED_ERROR)
    core.attempts_recorded([2], [], RESTARTED_ERROR)
    core.requeue([job(2, last_worker_id=1)])
    assert placed(core, clock) == [(2, 1)]
    # Job 1 is still its own: a failure of it costs an attempt.
    assert FailAttempt(1, 1, "x") in core.on_results(result(again, 1, JobOutcome.FAILED, "x"))


@pytest.mark.parametrize("answer", [SubmitAnswer.BUSY, SubmitAnswer.NOT_READY])
def test_a_busy_refusal_costs_only_a_wait_for_the_next_free_slot(core, clock, answer):
    w1 = registration(1, concurrency=2)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2)])
    assert placed(core, clock) == [(1, 1), (2, 1)]
    assert core.on_refused(w1, (2,), answer, "busy") == [HandBack(2, 1, "busy"), Requeue((2,))]
    core.requeue([job(2)])
    assert placed(core, clock) == []  # it said it is full: nothing until a slot frees
    assert core.joined_worker_ids() == {1}  # still in rotation: no SetAside above
    core.on_results(result(w1, 1))
    assert placed(core, clock) == [(2, 1)]


def test_a_busy_worker_is_in_rotation_for_retries_that_avoid_another(core, clock):
    """A refusal for a full slot does not make the worker unsuitable: a retry waits for it
    rather than going back to the worker that failed it, as it would after a failed call."""
    w1, w2 = registration(1), registration(2, concurrency=2)
    join(core, clock, w1)
    join(core, clock, w2)
    core.add_jobs([job(1)])
    assert placed(core, clock) == [(1, 1)]
    core.on_refused(w1, (1,), SubmitAnswer.BUSY, "busy")
    core.requeue([job(1)])
    assert placed(core, clock) == [(1, 2)]
    core.requeue([job(5, last_worker_id=2)])
    assert placed(core, clock) == []  # worker 2 has a free slot, but failed job 5 last time
    assert core.on_refused(w1, (9,), None, "timed out") == [SetAside(1, "timed out")]  # job 9
    # was not placed there (no hand back); worker 1 is set aside: it could not take job 5.
    assert placed(core, clock) == [(5, 2)]


def test_a_report_ends_the_wait_of_a_busy_worker(core, clock):
    w1 = registration(1)
    join(core, clock, w1)
    core.add_jobs([job(1)])
    placed(core, clock)
    core.on_refused(w1, (1,), SubmitAnswer.NOT_READY, "not ready")
    core.requeue([job(1)])
    assert placed(core, clock) == []
    core.on_telemetry(report(w1), clock.advance(INTERVAL_S))
    assert placed(core, clock) == [(1, 1)]


@pytest.mark.parametrize("answer", [None, SubmitAnswer.REFUSED])
def test_a_failed_submission_sets_the_worker_aside_until_its_next_report(core, clock, answer):
    w1 = registration(1, concurrency=2)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2)])
    placed(core, clock)
    assert core.on_refused(w1, (2,), answer, "timed out") == [
        HandBack(2, 1, "timed out"),
        Requeue((2,)),
        SetAside(1, "timed out"),
    ]
    core.requeue([job(2)])
    core.on_results(result(w1, 1))  # a result is not enough
    assert placed(core, clock) == []
    core.on_telemetry(report(w1), clock.advance(INTERVAL_S))
    assert placed(core, clock) == [(2, 1)]


def test_a_refusal_through_the_link_of_an_earlier_join_changes_nothing(core, clock):
    old = registration(1, key="old")
    join(core, clock, old)
    core.add_jobs([job(1)])
    placed(core, clock)
    join(core, clock, registration(1, key="new"))
    assert core.on_refused(old, (1,), None, "connection reset") == []


def test_the_recovery_sweep_never_frees_a_slot_the_worker_still_holds(core, clock):
    """The race seen with 132 frames: the API marks a job done before the worker's pool
    process answers, so a slot counted free on the datastore's word was still busy on the
    worker, which refused the next job. Only the worker's own word frees a slot."""
    w1 = registration(1)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2)])
    assert placed(core, clock) == [(1, 1)]
    assert core.on_tick(clock.advance(SWEEP_S)) == [ReloadQueue(2)]
    assert placed(core, clock) == []
    core.on_telemetry(report(w1, running=(1,)), clock.advance(0.1))
    assert placed(core, clock) == []
    core.on_results(result(w1, 1))
    assert placed(core, clock) == [(2, 1)]


def test_a_report_sampled_before_a_result_does_not_hold_the_slot_again(core, clock):
    w1 = registration(1)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2), job(3)])
    placed(core, clock)
    core.on_results(result(w1, 1))
    core.on_telemetry(report(w1, running=(1,)), clock.advance(0.1))  # sampled before it ended
    assert placed(core, clock) == [(2, 1)]


def test_the_queue_reload_asks_only_for_jobs_it_lacks(core):
    core.add_jobs([job(1), job(3)])
    assert core.missing([1, 2, 3, 4]) == [2, 4]


# Prefetch and batches ------------------------------------------------------------------


def test_a_worker_holds_a_job_per_slot_and_its_prefetch_per_slot(core, clock):
    w1 = registration(1, concurrency=2, prefetch=1)
    join(core, clock, w1)
    core.add_jobs([job(n) for n in range(1, 7)])
    assert placed(core, clock) == [(n, 1) for n in range(1, 5)]  # 2 slots x (1 + 1)
    assert placed(core, clock) == []
    core.on_results(results(w1, (1, JobOutcome.DONE, ""), (2, JobOutcome.DONE, "")))
    assert placed(core, clock) == [(5, 1), (6, 1)]


def _done_in(reg: WorkerRegistration, duration_ms: int, *job_ids: int) -> JobResults:
    return JobResults(
        reg.worker_id,
        tuple(JobResult(j, JobOutcome.DONE.value, "", duration_ms) for j in job_ids),
        reg.rpc_key,
    )


def test_the_prefetch_shrinks_to_one_job_where_jobs_are_long(core, clock):
    """Unmeasured, a slot gets PREFETCH_UNMEASURED waiting; once its jobs take longer than
    the window, one: a long job never waits behind another long one for nothing."""
    w1 = registration(1, prefetch=8)
    join(core, clock, w1)
    core.add_jobs([job(n) for n in range(1, 21)])
    unmeasured = 1 + defaults.PREFETCH_UNMEASURED
    assert placed(core, clock) == [(n, 1) for n in range(1, unmeasured + 1)]
    core.on_results(_done_in(w1, 2 * defaults.PREFETCH_WINDOW_MS, *range(1, unmeasured + 1)))
    assert placed(core, clock) == [(unmeasured + 1, 1), (unmeasured + 2, 1)]  # 1 + 1 now
    assert placed(core, clock) == []


def test_the_prefetch_grows_to_its_limit_where_jobs_are_short(core, clock):
    w1 = registration(1, concurrency=2, prefetch=8)
    join(core, clock, w1)
    core.add_jobs([job(n) for n in range(1, 31)])
    first = placed(core, clock)
    assert len(first) == 2 * (1 + defaults.PREFETCH_UNMEASURED)
    core.on_results(_done_in(w1, 1, *(j for j, _ in first)))  # 1 ms each
    assert len(placed(core, clock)) == 2 * (1 + 8)  # capped by the worker's own prefetch


def test_failed_jobs_do_not_size_the_prefetch(core, clock):
    """A failure may be instant (the API refused it): only done jobs say how long jobs take."""
    w1 = registration(1, prefetch=8)
    join(core, clock, w1)
    core.add_jobs([job(n) for n in range(1, 21)])
    first = [j for j, _ in placed(core, clock)]
    failed = JobResults(1, tuple(JobResult(j, "failed", "x", 0) for j in first), w1.rpc_key)
    core.on_results(failed)
    assert len(placed(core, clock)) == 1 + defaults.PREFETCH_UNMEASURED


def test_jobs_spread_over_workers_by_the_share_of_their_places_held(core, clock):
    join(core, clock, registration(1, prefetch=3))  # 4 places
    join(core, clock, registration(2, concurrency=2, prefetch=0))  # 2 places
    core.add_jobs([job(n) for n in range(1, 7)])
    assert sorted(worker for _, worker in placed(core, clock)) == [1, 1, 1, 1, 2, 2]


def test_prefetched_jobs_a_report_lists_are_not_lost(core, clock):
    w1 = registration(1, prefetch=2)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2), job(3)])
    placed(core, clock)
    still = report(w1, running=(1,), prefetched=(2, 3))
    assert core.on_telemetry(still, clock.advance(10 * DEAD_AFTER_S)) == [
        RecordLoad(still, clock.now)
    ]
    assert placed(core, clock) == []  # all three still hold their places


def test_a_prefetched_job_the_worker_lost_costs_an_attempt_after_the_grace_period(core, clock):
    w1 = registration(1, prefetch=2)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2), job(3)])
    placed(core, clock)
    lost = report(w1, running=(1,), prefetched=(2,))
    assert core.on_telemetry(lost, clock.advance(DEAD_AFTER_S)) == [RecordLoad(lost, clock.now)]
    assert core.on_telemetry(lost, clock.advance(0.5)) == [
        RecordLoad(lost, clock.now),
        FailAttempt(3, 1, LOST_JOB_ERROR),
    ]
    core.add_jobs([job(4)])
    assert placed(core, clock) == [(4, 1)]  # the lost job's place is free


def test_a_dead_workers_prefetched_jobs_are_released_with_its_running_ones(core, clock):
    w1, w2 = registration(1, prefetch=2), registration(2)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2), job(3)])
    assert placed(core, clock) == [(1, 1), (2, 1), (3, 1)]
    join(core, clock, w2)
    core.on_telemetry(report(w2), clock.advance(DEAD_AFTER_S))
    assert core.on_tick(clock.advance(0.1))[:2] == [
        DeclareDead(1),
        ReleaseJobs(1, frozenset(), DIED_ERROR),  # every job running there, per the datastore
    ]
    assert core.attempts_recorded([1, 2, 3], [], DIED_ERROR) == [Requeue((1, 2, 3))]
    core.requeue([job(n, last_worker_id=1) for n in (1, 2, 3)])
    assert placed(core, clock) == [(1, 2)]  # one at a time on the living worker


def test_a_new_membership_releases_prefetched_jobs_which_hold_places_until_dropped(core, clock):
    join(core, clock, registration(1, prefetch=1))
    core.add_jobs([job(1), job(2)])
    placed(core, clock)
    again = registration(1, prefetch=1, key="new", running=(1, 2))
    assert core.on_join(again, clock.now)[1] == ReleaseJobs(1, frozenset(), RESTARTED_ERROR)
    core.attempts_recorded([1, 2], [], RESTARTED_ERROR)
    core.requeue([job(1, last_worker_id=1), job(2, last_worker_id=1)])
    assert placed(core, clock) == []  # it still holds both
    dropped = results(
        again, (2, JobOutcome.DISCARDED, "taken back"), (1, JobOutcome.DISCARDED, "taken back")
    )
    assert core.on_results(dropped)[-1] == Settle((2, 1))
    assert placed(core, clock) == [(1, 1), (2, 1)]


def test_a_renewed_membership_keeps_its_prefetched_jobs(core, clock):
    join(core, clock, registration(1, prefetch=1))
    core.add_jobs([job(1), job(2), job(3)])
    placed(core, clock)
    again = registration(1, prefetch=1, key="new", running=(1, 2), renewed=True)
    assert core.on_join(again, clock.now)[1] == ReleaseJobs(1, frozenset({1, 2}), RESTARTED_ERROR)
    assert placed(core, clock) == []
    # Job 2 is still its own: giving it back returns it to the queue at no cost.
    given_back = result(again, 2, JobOutcome.RETURNED, "no slot was free")
    assert core.on_results(given_back) == [
        accepted(given_back),
        HandBack(2, 1, "no slot was free"),
        Requeue((2,)),
    ]


def test_a_job_given_back_unstarted_goes_back_at_no_cost_preferably_elsewhere(core, clock):
    w1, w2 = registration(1, prefetch=1), registration(2)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2)])
    assert placed(core, clock) == [(1, 1), (2, 1)]
    join(core, clock, w2)
    given_back = result(w1, 2, JobOutcome.RETURNED, "no slot was free for 2 s")
    assert core.on_results(given_back) == [
        accepted(given_back),
        HandBack(2, 1, "no slot was free for 2 s"),
        Requeue((2,)),
    ]
    core.requeue([job(2)])  # not a failure: it may go anywhere
    assert placed(core, clock) == [(2, 2)]


def test_a_late_job_given_back_changes_nothing(core, clock):
    w1 = registration(1, prefetch=1)
    join(core, clock, w1)
    late = result(w1, 9, JobOutcome.RETURNED, "no slot was free")
    assert core.on_results(late) == [accepted(late, late=True)]


def test_a_batch_of_results_frees_each_place_and_settles_together(core, clock):
    w1 = registration(1, prefetch=3)
    join(core, clock, w1)
    core.add_jobs([job(n) for n in range(1, 5)])
    placed(core, clock)
    batch = results(
        w1,
        (1, JobOutcome.DONE, ""),
        (2, JobOutcome.FAILED, "boom"),
        (3, JobOutcome.RETURNED, "its batch-mate failed"),
        (4, JobOutcome.DISCARDED, "gone"),
    )
    assert core.on_results(batch) == [
        AcceptResult(batch.results[0], 1, late=False),
        AcceptResult(batch.results[1], 1, late=False),
        FailAttempt(2, 1, "boom"),
        AcceptResult(batch.results[2], 1, late=False),
        HandBack(3, 1, "its batch-mate failed"),
        AcceptResult(batch.results[3], 1, late=False),
        Requeue((3,)),
        Settle((1, 4)),
    ]
    core.add_jobs([job(n) for n in range(5, 10)])
    assert placed(core, clock) == [(n, 1) for n in range(5, 9)]


def test_results_with_a_wrong_key_are_dropped_whole(core, clock):
    w1 = registration(1, prefetch=1)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2)])
    placed(core, clock)
    forged = results(w1, (1, JobOutcome.DONE, ""), (2, JobOutcome.FAILED, "x"), key="no")
    assert core.on_results(forged) == [Drop(1, "result", "without its key", suspicious=True)]
    core.add_jobs([job(3)])
    assert placed(core, clock) == []


def test_a_refused_batch_goes_back_whole_in_its_order(core, clock):
    w1 = registration(1, prefetch=2)
    join(core, clock, w1)
    core.add_jobs([job(1), job(2), job(3)])
    placed(core, clock)
    assert core.on_refused(w1, (1, 2, 3), None, "timed out") == [
        HandBack(1, 1, "timed out"),
        HandBack(2, 1, "timed out"),
        HandBack(3, 1, "timed out"),
        Requeue((1, 2, 3)),
        SetAside(1, "timed out"),
    ]
