"""The worker's result uploads: as few requests as the API's body bound allows."""

from __future__ import annotations

from worker.api_client import split_uploads

LIMIT = 10_000


def results(*sizes: int) -> list[tuple[tuple[int, int], bytes]]:
    return [((1, n), bytes(size)) for n, size in enumerate(sizes)]


def test_small_results_go_in_one_request():
    assert list(split_uploads(results(100, 200, 300), LIMIT)) == [results(100, 200, 300)]


def test_results_are_cut_into_requests_within_the_bound_in_order():
    batch = results(*[3000] * 7)
    requests = list(split_uploads(batch, LIMIT))
    assert [len(request) for request in requests] == [2, 2, 2, 1]  # 3000 + 1 KiB of frame each
    assert [result for request in requests for result in request] == batch


def test_a_result_over_the_bound_goes_alone():
    requests = list(split_uploads(results(100, 20_000, 100), LIMIT))
    assert [[len(data) for _, data in request] for request in requests] == [[100], [20_000], [100]]
