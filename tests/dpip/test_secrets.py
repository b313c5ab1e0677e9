"""Secrets: made once, never read half-written or empty, even by processes starting together."""

from __future__ import annotations

import multiprocessing
import subprocess
import time
from pathlib import Path

import pytest

from foundation.secrets import SecretError, read_or_create_secret
from tests.conftest import BIN

ROUNDS = 40
PROCESSES = 3


def read_at(path: Path, start_at: float, results: multiprocessing.Queue) -> None:
    while time.time() < start_at:  # line the processes up on one moment
        pass
    try:
        results.put(read_or_create_secret(path, "DPIP_TEST_UNSET_SECRET"))
    except Exception as e:  # reported to the test, which names it
        results.put(repr(e))


def test_processes_starting_together_all_read_the_one_secret(tmp_path):
    context = multiprocessing.get_context("fork")
    for round_number in range(ROUNDS):
        path = tmp_path / f"round-{round_number}" / "join_token"
        results = context.Queue()
        start_at = time.time() + 0.05
        processes = [
            context.Process(target=read_at, args=(path, start_at, results))
            for _ in range(PROCESSES)
        ]
        try:
            for process in processes:
                process.start()
            values = {results.get(timeout=30) for _ in processes}
        finally:
            for process in processes:
                process.join(timeout=30)
        assert len(values) == 1, values
        assert len(values.pop()) >= 32
        assert path.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["join_token"]  # no temp file left


def test_an_empty_secret_is_refused_from_a_file_or_the_environment(tmp_path, monkeypatch):
    empty = tmp_path / "jwt_secret"
    empty.write_text("\n")
    with pytest.raises(SecretError, match="empty"):
        read_or_create_secret(empty, "DPIP_TEST_UNSET_SECRET")
    monkeypatch.setenv("DPIP_TEST_BLANK_SECRET", " ")
    with pytest.raises(SecretError, match="DPIP_TEST_BLANK_SECRET"):
        read_or_create_secret(tmp_path / "other", "DPIP_TEST_BLANK_SECRET")


def test_commands_refuse_an_empty_join_token(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "join_token").write_text("")
    printed = subprocess.run(
        [str(BIN / "dpip"), "join-token", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert printed.returncode == 1
    assert "empty" in printed.stderr
    assert "Traceback" not in printed.stderr
    worker = subprocess.run(
        [
            str(BIN / "worker"),
            "--worker-name",
            "w",
            "--join-token-file",
            str(data_dir / "join_token"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert worker.returncode == 2
    assert "empty" in worker.stderr
