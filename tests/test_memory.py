"""keep_freed_memory: glibc takes both thresholds (this machine runs glibc, as CI does)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are a glibc feature"
)


def test_glibc_takes_both_thresholds():
    # In a child process: the thresholds are process-wide and would outlive the test.
    code = (
        "from foundation.memory import keep_freed_memory; raise SystemExit(not keep_freed_memory())"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0
