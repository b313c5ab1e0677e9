"""Imports between DPIP's packages go one way only: the contracts in pyproject.toml."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import BIN

ROOT = Path(__file__).resolve().parent.parent


def test_the_layers_contract_holds():
    checked = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 broken" in checked.stdout
