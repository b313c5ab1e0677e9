"""The benchmark's cases, the targets DPIP should reach on them, and the verdicts.

Pure data and rules, apart from bench/run.py's measuring, so tests check them alone.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from typing import Any

COMPARISONS = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Target:
    """A figure the system should reach, shown next to the result."""

    figure: str  # a key of the case's result
    comparison: str  # a key of COMPARISONS
    bound: float

    @property
    def description(self) -> str:
        return f"{self.figure} {self.comparison} {self.bound:g}"

    def met(self, result: dict[str, Any]) -> bool:
        """Whether the result's figure reaches the bound; TypeError when it is None."""
        return COMPARISONS[self.comparison](result[self.figure], self.bound)


@dataclass(frozen=True)
class Case:
    """One benchmark: which images, how many, and what DPIP should reach on them."""

    name: str
    images: int
    quick_images: int
    size: str
    image_format: str  # a stress_test.py --format
    filter_name: str
    targets: tuple[Target, ...]
    radius: float = 2.0
    sequential: bool = False
    batch: int = 0  # stress_test.py --batch: images a request; 0: one request per image
    upload_as: str = "form"  # stress_test.py --upload-as for a batch: form, zip or tar
    archive: bool = False  # stress_test.py --archive: fetch and check the results' zip
    peer: bool = False  # a throughput case that --peer runs too


def batched(case: Case, batch: int, target: Target, upload_as: str = "form") -> Case:
    """The same work as `case`, uploaded `batch` images a request as `upload_as`."""
    return dataclasses.replace(
        case,
        name=f"{case.name}_batch{batch}",
        batch=batch,
        upload_as=upload_as,
        targets=(target,),
    )


_1080P_GRAYSCALE = Case(
    "1080p_jpeg_grayscale",
    200,
    12,
    "1920x1080",
    "jpeg",
    "grayscale",
    (Target("ratio", ">=", 0.60),),
    peer=True,
)
_64PX_GRAYSCALE = Case(
    "64px_png_grayscale",
    3000,
    300,
    "64x64",
    "png",
    "grayscale",
    (Target("ratio", ">=", 0.10),),
    peer=True,
)

CASES = (
    _1080P_GRAYSCALE,
    # A tar: its members are read as they lie, where a form's boundary is searched for
    # through every byte (the API's CPU per 1080p image 5.3 ms against 8.3).
    batched(_1080P_GRAYSCALE, 20, Target("ratio", ">=", 0.65), upload_as="tar"),
    Case(
        "1080p_jpeg_blur",
        200,
        12,
        "1920x1080",
        "jpeg",
        "blur",
        (Target("ratio", ">=", 0.85),),
        peer=True,
    ),
    _64PX_GRAYSCALE,
    batched(_64PX_GRAYSCALE, 50, Target("ratio", ">=", 0.25)),
    Case(
        "idle_latency",
        50,
        10,
        "64x64",
        "png",
        "grayscale",
        (Target("p50_ms", "<=", 6),),
        sequential=True,
    ),
    Case(
        "10k_workload",
        10000,
        1000,
        "64x64",
        "png",
        "grayscale",
        (Target("api_rss_after_mb", "<", 200), Target("workload_get_ms", "<=", 5)),
    ),
    Case(
        "10k_batches_archive",
        10000,
        1000,
        "64x64",
        "png",
        "grayscale",
        (
            Target("api_rss_max_mb", "<", 200),
            Target("archive_mb_per_s", ">=", 50),
            # Flat: the API grows by far less than the archive (~28 MB for 10 000 images).
            Target("archive_rss_growth_mb", "<", 10),
        ),
        batch=50,
        archive=True,
    ),
)


def target_verdict(target: Target, result: dict[str, Any], run_ok: bool) -> str:
    """`yes` only for a run whose every image came back right (a failed or timed-out run's
    figures say nothing); `n/a` when a figure is missing."""
    if not run_ok:
        return "no"
    try:
        return "yes" if target.met(result) else "no"
    except TypeError:  # a figure is missing (None)
        return "n/a"


def lead_verdict(
    dpip_ratio: float | None, dpip_ok: bool, peer_ratio: float, peer_verified: bool
) -> str:
    """Is DPIP ahead of a peer? `no` when DPIP's run was not verified (as for a target),
    `n/a` when the peer's was not or DPIP has no ratio."""
    if not dpip_ok:
        return "no"
    if not peer_verified or dpip_ratio is None:
        return "n/a"
    return "yes" if dpip_ratio > peer_ratio else "no"
