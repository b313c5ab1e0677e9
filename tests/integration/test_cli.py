"""The `dpip` command: `up` serves and stops cleanly; user administration; join token."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import psutil
import requests

from tests.conftest import BIN, free_port, wait_until


def dpip(tmp_path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dpip"), *args, "--data-dir", str(tmp_path / "data")],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_up_serves_prints_credentials_and_stops_every_child(tmp_path):
    port, controller_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DPIP_ADMIN_PASSWORD"}
    process = subprocess.Popen(
        [
            str(BIN / "dpip"),
            "up",
            "--port",
            str(port),
            "--controller-port",
            str(controller_port),
            "--workers",
            "2",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        while not any("password:" in line for line in lines):
            line = process.stdout.readline()
            assert line, "dpip up ended before printing the admin password"
            lines.append(line)
        assert any(f"http://127.0.0.1:{port}" in line for line in lines)
        password = re.search(r"password: (\S+)", "".join(lines)).group(1)
        assert (tmp_path / "dpip-data" / "admin_password").read_text().strip() == password
        assert (tmp_path / "dpip-data" / "admin_password").stat().st_mode & 0o077 == 0
        token = requests.post(
            f"http://127.0.0.1:{port}/login", auth=("admin", password), timeout=10
        ).json()["token"]

        def two_workers_alive():
            status = requests.get(
                f"http://127.0.0.1:{port}/status",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).json()
            return sum(w["alive"] for w in status["workers"]) == 2

        wait_until(two_workers_alive, 30, "two local workers")
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 4  # controller, API, two workers (and their pool processes)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_user_commands(tmp_path):
    added = dpip(tmp_path, "user", "add", "grace", "--password-stdin", stdin="grace-secret-1\n")
    assert added.returncode == 0, added.stderr
    admin_added = dpip(
        tmp_path, "user", "add", "root2", "--admin", "--password-stdin", stdin="root-secret-1\n"
    )
    assert admin_added.returncode == 0
    duplicate = dpip(tmp_path, "user", "add", "grace", "--password-stdin", stdin="grace-secret-1\n")
    assert duplicate.returncode != 0
    listed = dpip(tmp_path, "user", "list").stdout.split("\n")
    assert "grace\tuser" in listed
    assert "root2\tadmin" in listed
    assert "admin\tadmin" in listed
    assert dpip(tmp_path, "user", "delete", "grace").returncode == 0
    assert "grace\tuser" not in dpip(tmp_path, "user", "list").stdout
    assert dpip(tmp_path, "user", "delete", "grace").returncode != 0
    short = dpip(tmp_path, "user", "add", "h", "--password-stdin", stdin="short\n")
    assert short.returncode != 0


def test_join_token_is_stable_and_private(tmp_path):
    first = dpip(tmp_path, "join-token").stdout.strip()
    assert len(first) >= 32
    assert dpip(tmp_path, "join-token").stdout.strip() == first
    assert (tmp_path / "data" / "join_token").stat().st_mode & 0o777 == 0o600
