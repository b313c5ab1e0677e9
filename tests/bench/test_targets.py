"""A benchmark target is met only by a run whose every image came back right."""

from __future__ import annotations

import pytest

from bench.run import CASES, Target, target_verdict

# Figures that meet every target.
GREAT = {
    "ratio": 10.0,
    "dpip_ips": 1e6,
    "p50_ms": 0.1,
    "api_rss_after_mb": 1.0,
    "workload_get_ms": 0.1,
}
TARGETS = [pytest.param(t, id=f"{c.name}: {t.description}") for c in CASES for t in c.targets]


@pytest.mark.parametrize("target", TARGETS)
def test_a_run_that_was_not_ok_meets_no_target_whatever_its_figures(target):
    assert target_verdict(target, GREAT, run_ok=True) == "yes"
    assert target_verdict(target, GREAT, run_ok=False) == "no"


def test_a_missing_figure_is_not_applicable():
    target = Target("ratio >= 1", lambda result: result["ratio"] >= 1)
    assert target_verdict(target, {"ratio": None}, run_ok=True) == "n/a"
