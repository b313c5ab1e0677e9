"""A benchmark target is met only by a run whose every image came back right, and each case
asks for the figure its issue set."""

from __future__ import annotations

import pytest

from bench.cases import CASES, Target, lead_verdict, target_verdict
from bench.run import stress_test_argv

# Figures that meet every target.
GREAT = {
    "ratio": 10.0,
    "dpip_ips": 1e6,
    "p50_ms": 0.1,
    "api_rss_after_mb": 1.0,
    "api_rss_max_mb": 1.0,
    "workload_get_ms": 0.1,
    "archive_mb_per_s": 1e4,
    "archive_rss_growth_mb": 0.0,
}
TARGETS = [pytest.param(t, id=f"{c.name}: {t.description}") for c in CASES for t in c.targets]
CASE_BY_NAME = {case.name: case for case in CASES}


@pytest.mark.parametrize("target", TARGETS)
def test_a_run_that_was_not_ok_meets_no_target_whatever_its_figures(target):
    assert target_verdict(target, GREAT, run_ok=True) == "yes"
    assert target_verdict(target, GREAT, run_ok=False) == "no"


def test_a_missing_figure_is_not_applicable():
    target = Target("ratio", ">=", 1)
    assert target.description == "ratio >= 1"
    assert target_verdict(target, {"ratio": None}, run_ok=True) == "n/a"


# (case, figure, a value just meeting its target, a value just missing it)
BOUNDS = [
    ("64px_png_grayscale_batch50", "ratio", 0.25, 0.249),
    ("64px_png_grayscale", "ratio", 0.10, 0.099),
    ("1080p_jpeg_grayscale_batch20", "ratio", 0.65, 0.649),
    ("1080p_jpeg_grayscale", "ratio", 0.60, 0.599),
    ("1080p_jpeg_blur", "ratio", 0.85, 0.849),
    ("idle_latency", "p50_ms", 6.0, 6.01),
    ("10k_batches_archive", "api_rss_max_mb", 199.9, 200.0),
    ("10k_batches_archive", "archive_mb_per_s", 50.0, 49.9),
    ("10k_batches_archive", "archive_rss_growth_mb", 9.9, 10.0),
]


@pytest.mark.parametrize(("name", "figure", "meets", "misses"), BOUNDS)
def test_each_target_is_met_from_its_bound_on(name, figure, meets, misses):
    (target,) = [t for t in CASE_BY_NAME[name].targets if t.figure == figure]
    assert target_verdict(target, {figure: meets}, run_ok=True) == "yes"
    assert target_verdict(target, {figure: misses}, run_ok=True) == "no"


@pytest.mark.parametrize(
    ("batched", "single"),
    [
        ("64px_png_grayscale_batch50", "64px_png_grayscale"),
        ("1080p_jpeg_grayscale_batch20", "1080p_jpeg_grayscale"),
    ],
)
def test_a_batch_case_runs_the_images_of_its_one_request_per_image_case(batched, single, tmp_path):
    batch, one = CASE_BY_NAME[batched], CASE_BY_NAME[single]
    batch_argv = stress_test_argv(batch, batch.images, 2, 1, tmp_path / "report.json")
    one_argv = stress_test_argv(one, one.images, 2, 1, tmp_path / "report.json")
    assert batch_argv == [*one_argv, "--batch", str(batch.batch), "--upload-as", batch.upload_as]


def test_the_archive_case_uploads_in_batches_and_fetches_the_archive(tmp_path):
    case = CASE_BY_NAME["10k_batches_archive"]
    argv = stress_test_argv(case, case.images, 2, 1, tmp_path / "report.json")
    assert argv[-5:] == ["--batch", "50", "--upload-as", "form", "--archive"]
    assert argv[argv.index("--images") + 1] == "10000"


@pytest.mark.parametrize(
    ("dpip_ratio", "dpip_ok", "peer_ratio", "peer_verified", "verdict"),
    [
        (0.27, True, 0.20, True, "yes"),
        (0.19, True, 0.20, True, "no"),
        (0.20, True, 0.20, True, "no"),  # a tie is no lead
        (0.27, False, 0.20, True, "no"),  # DPIP's figures count only when verified
        (0.27, True, 0.20, False, "n/a"),  # nothing to be ahead of
        (None, True, 0.20, True, "n/a"),
    ],
)
def test_dpip_is_ahead_of_a_peer_only_with_both_runs_verified(
    dpip_ratio, dpip_ok, peer_ratio, peer_verified, verdict
):
    assert lead_verdict(dpip_ratio, dpip_ok, peer_ratio, peer_verified) == verdict
