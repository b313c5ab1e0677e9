"""A small run of stress_test.py against a system it spawns: nothing lost, wrong or doubled."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 180
IMAGES = 12


def run_stress_test(*args: str) -> subprocess.CompletedProcess:
    """Run stress_test.py; on a timeout SIGTERM it, so it stops the system it started."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "stress_test.py"), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"stress_test.py ran over {RUN_TIMEOUT_S} s:\n{output}")
    return subprocess.CompletedProcess(process.args, process.returncode, output)


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_small_stress_run_filters_every_image_correctly(tmp_path, image_format):
    report_path = tmp_path / "report.json"
    result = run_stress_test(
        *("--spawn", "--workers", "2", "--images", str(IMAGES), "--size", "96x64"),
        *("--filter", "both", "--format", image_format, "--workloads", "2"),
        *("--quiet", "--timeout", str(RUN_TIMEOUT_S - 30), "--json", str(report_path)),
    )
    assert result.returncode == 0, result.stdout
    report = json.loads(report_path.read_text())
    assert report["images"] == report["uploaded"] == report["filtered"] == IMAGES
    assert (report["lost"], report["wrong"], report["duplicated"], report["failed"]) == (0, 0, 0, 0)
    assert report["errors"] == {}
    # The system's parts were found and measured: each did work for these images.
    cpu = report["cpu_ms_per_image"]
    assert all(cpu[part] > 0 for part in ("api", "controller", "workers", "client")), cpu
    assert cpu["total"] == pytest.approx(
        sum(cpu[p] for p in ("api", "controller", "workers", "client")), abs=0.05
    )


def test_sequential_run_waits_on_each_image_with_long_polls(tmp_path):
    report_path = tmp_path / "report.json"
    result = run_stress_test(
        *("--spawn", "--workers", "1", "--images", "4", "--size", "32x32", "--format", "png"),
        *("--sequential", "--quiet", "--timeout", str(RUN_TIMEOUT_S - 30)),
        *("--json", str(report_path)),
    )
    assert result.returncode == 0, result.stdout
    report = json.loads(report_path.read_text())
    assert report["sequential"] is True
    assert report["filtered"] == 4
    assert report["errors"] == {}
    # Each latency ends inside the run: one image at a time, each seen before the next.
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["wall_s"] * 1000


@pytest.mark.parametrize(
    ("image_format", "upload_as"), [("png", "form"), ("jpeg", "zip"), ("png", "tar")]
)
def test_batch_run_then_archive_checks_every_entry_and_the_manifest(
    tmp_path, image_format, upload_as
):
    report_path = tmp_path / "report.json"
    result = run_stress_test(
        *("--spawn", "--workers", "2", "--images", str(IMAGES), "--size", "96x64"),
        *("--filter", "both", "--format", image_format, "--workloads", "2"),
        *("--batch", "4", "--upload-as", upload_as, "--archive"),
        *("--quiet", "--timeout", str(RUN_TIMEOUT_S - 30), "--json", str(report_path)),
    )
    assert result.returncode == 0, result.stdout
    report = json.loads(report_path.read_text())
    assert (report["batch"], report["upload_as"]) == (4, upload_as)
    assert report["uploaded"] == report["filtered"] == IMAGES
    assert (report["lost"], report["wrong"], report["duplicated"], report["failed"]) == (0, 0, 0, 0)
    assert report["errors"] == {}
    # Both workloads' archives came back whole: every result right, the manifests complete.
    assert (report["archive_entries"], report["archive_wrong"]) == (IMAGES, 0)
    assert report["archive_problems"] == {}
    assert report["archive_mb"] > 0 and report["archive_mb_per_s"] > 0
    assert report["api_rss_archive_start_mb"] <= report["api_rss_archive_peak_mb"]
    assert report["api_rss_before_mb"] <= report["api_rss_max_mb"]
