"""The overview's in-memory history: bounded in series, samples and time; rates; lines."""

from __future__ import annotations

import pytest

from api.dashboard.history import HistoryRing, sparkline_points


def test_a_series_keeps_its_newest_samples_within_its_span() -> None:
    ring = HistoryRing(max_series=10, max_samples=3, span_s=100)
    for at in range(5):
        ring.record("w", float(at), at * 10)
    assert [s.at for s in ring.samples("w")] == [2.0, 3.0, 4.0]
    ring.record("w", 200.0, 1)
    assert [s.at for s in ring.samples("w")] == [200.0]  # the others are older than the span


def test_the_same_reading_twice_is_kept_once() -> None:
    ring = HistoryRing(max_series=10, max_samples=10, span_s=100)
    ring.record("w", 5.0, 1)
    ring.record("w", 5.0, 2)
    ring.record("w", 4.0, 3)
    assert [s.values for s in ring.samples("w")] == [(1,)]


def test_the_least_recently_used_series_is_dropped() -> None:
    ring = HistoryRing(max_series=2, max_samples=10, span_s=100)
    ring.record("a", 1.0, 1)
    ring.record("b", 1.0, 1)
    ring.record("a", 2.0, 1)
    ring.record("c", 1.0, 1)
    assert ring.samples("b") == []
    assert len(ring.samples("a")) == 2


def test_a_rate_over_a_window() -> None:
    ring = HistoryRing(max_series=10, max_samples=100, span_s=100)
    assert ring.rate("w", 10) == 0.0
    for at in range(21):
        ring.record("w", float(at), at * 3)  # 3 a second
    assert ring.rate("w", 10) == pytest.approx(3.0)


def test_sparkline_points_fit_the_box() -> None:
    assert sparkline_points([], 100, 20) == ""
    assert sparkline_points([0, 50, 100, 250], 30, 20) == "0.0,20.0 10.0,10.0 20.0,0.0 30.0,0.0"
