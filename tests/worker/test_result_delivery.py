"""Results on their way to the controller: as few messages as fit, none over the bound."""

from __future__ import annotations

from protocol import JobResult, JobResults, decode
from worker.result_delivery import result_messages

MAX_BYTES = 2000


def test_results_that_fit_go_in_one_message():
    results = [JobResult(n, "done", duration_ms=5) for n in range(10)]
    [message] = result_messages(3, "key", results, MAX_BYTES)
    assert message == JobResults(3, tuple(results), "key")


def test_results_are_cut_into_messages_within_the_bound_in_order():
    results = [JobResult(n, "failed", "e" * 90) for n in range(100)]
    messages = list(result_messages(3, "key", results, MAX_BYTES))
    assert len(messages) > 1
    assert all(len(message.encode()) <= MAX_BYTES for message in messages)
    assert [r for message in messages for r in message.results] == results
    assert all(decode(message.encode()) == message for message in messages)


def test_a_result_whose_error_alone_is_too_long_has_it_cut():
    huge = JobResult(7, "failed", "\u2603" * 10_000)  # escaped in JSON: 6 bytes a character
    [message] = result_messages(3, "key", [huge], MAX_BYTES)
    assert len(message.encode()) <= MAX_BYTES
    [result] = message.results
    assert (result.job_id, result.outcome) == (7, "failed")
    assert result.error.startswith("\u2603") and "(10000 characters)" in result.error
