"""The `dpip` command: `up` serves and stops cleanly; user administration; join token."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import requests

import datastore
from datastore import users, workloads
from foundation import defaults
from tests.conftest import ADMIN_PASSWORD, BIN, Client, free_port, slow_png, wait_until


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


def test_user_delete_removes_the_users_workloads_and_their_image_dirs(tmp_path):
    for name in ("grace", "heidi"):
        added = dpip(tmp_path, "user", "add", name, "--password-stdin", stdin="long-enough-1\n")
        assert added.returncode == 0, added.stderr
    images = tmp_path / "images"
    conn = datastore.connect(tmp_path / "data" / defaults.DATABASE_FILE)
    try:
        dirs = {}
        for owner, workload in (("grace", "cats"), ("grace", "dogs"), ("heidi", "birds")):
            user_id = users.find_user_by_name(conn, owner)["id"]
            with datastore.transaction(conn) as db:
                row = workloads.create_workload(db, user_id, workload, "grayscale", {}, [])
            dirs[workload] = images / row["dir_name"]
            dirs[workload].mkdir(parents=True)
            (dirs[workload] / "0.original.png").write_bytes(b"pixels")
    finally:
        conn.close()

    deleted = dpip(tmp_path, "user", "delete", "grace", "--images-dir", str(images))

    assert deleted.returncode == 0, deleted.stderr
    assert "2 workload(s)" in deleted.stdout
    assert not dirs["cats"].exists()
    assert not dirs["dogs"].exists()
    assert (dirs["birds"] / "0.original.png").read_bytes() == b"pixels"


def test_user_add_refuses_a_password_that_is_not_utf8(tmp_path):
    data_dir = str(tmp_path / "data")
    added = subprocess.run(
        [str(BIN / "dpip"), "user", "add", "ivan", "--password-stdin", "--data-dir", data_dir],
        input=b"long-enough-\xff\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 2, added.stderr  # a usage error, as a short password is
    assert b"Traceback" not in added.stderr
    assert b"at least 8 characters" in added.stderr
    assert "ivan" not in dpip(tmp_path, "user", "list").stdout


def test_a_first_admin_password_that_breaks_the_rule_is_refused(tmp_path):
    started = subprocess.run(
        [str(BIN / "dpip"), "join-token", "--data-dir", str(tmp_path / "data")],
        env={**os.environ, "DPIP_ADMIN_PASSWORD": "short"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 1
    assert "DPIP_ADMIN_PASSWORD" in started.stderr
    assert "Traceback" not in started.stderr


def test_join_token_is_stable_and_private(tmp_path):
    first = dpip(tmp_path, "join-token").stdout.strip()
    assert len(first) >= 32
    assert dpip(tmp_path, "join-token").stdout.strip() == first
    assert (tmp_path / "data" / "join_token").stat().st_mode & 0o777 == 0o600


DRAIN_TIMEOUT_S = 60


@contextmanager
def dpip_up(tmp_path, *options: str) -> Iterator[tuple[subprocess.Popen, Client]]:
    """Run `dpip up` in its own session, as a terminal's foreground job; yield it and a client
    logged in as admin once both local workers are alive; kill what is left at the end."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "dpip"),
            "up",
            "--port",
            str(port),
            "--controller-port",
            str(free_port()),
            *options,
        ],
        cwd=tmp_path,
        env={**os.environ, "DPIP_ADMIN_PASSWORD": ADMIN_PASSWORD, "DPIP_LOG_LEVEL": "INFO"},
        stdout=open(tmp_path / "up.log", "wb"),  # noqa: SIM115 - the child holds it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url), 60, "the API of dpip up")
        token = requests.post(url + "/login", auth=("admin", ADMIN_PASSWORD), timeout=10)
        admin = Client(url, token.json()["token"])
        wait_until(
            lambda: sum(w["alive"] for w in admin.get("/status").json()["workers"]) == 2,
            30,
            "two local workers",
        )
        yield process, admin
    finally:
        if process.poll() is None:  # the test failed: leave nothing behind
            children = psutil.Process(process.pid).children(recursive=True)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/status", timeout=1).status_code == 401
    except requests.ConnectionError:
        return False


def _jobs(tmp_path) -> dict[int, tuple[str, int | None]]:
    with sqlite3.connect(tmp_path / "dpip-data" / "dpip.sqlite3") as conn:
        return {row[0]: row[1:] for row in conn.execute("SELECT id, status, worker_id FROM jobs")}


def test_ctrl_c_drains_running_jobs_then_stops_api_and_controller(tmp_path):
    """SIGINT to the whole foreground process group, as a terminal sends it."""
    with dpip_up(
        tmp_path, "--worker-concurrency", "1", "--drain-timeout", str(DRAIN_TIMEOUT_S)
    ) as (
        process,
        admin,
    ):
        workload = admin.create_workload(filter="blur", radius=30)["workload_id"]
        data = slow_png((5000, 5000))  # a few seconds a job
        for _ in range(4):
            assert admin.upload(workload, data).status_code == 201
        wait_until(
            lambda: (
                sum(w["running_jobs"] for w in admin.get("/status").json()["workers"]) == 2
                and [status for status, _ in _jobs(tmp_path).values()] == ["running"] * 4
            ),
            30,
            "both workers to run a job and hold one more, prefetched for its slot",
        )
        held = set(_jobs(tmp_path))
        children = psutil.Process(process.pid).children(recursive=True)
        signalled = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=DRAIN_TIMEOUT_S) == 0
        assert time.monotonic() - signalled < DRAIN_TIMEOUT_S
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []

    jobs = _jobs(tmp_path)
    assert len(held) == 4
    done = {job for job, (status, _) in jobs.items() if status == "done"}
    assert len(done) == 2  # the running ones: delivered, not taken back
    for job in done:
        number = job - 1  # one workload: job ids follow image numbers
        assert list((tmp_path / "images").glob(f"*/{number}.filtered.png"))
    # The prefetched jobs, which had not started, were given back for the next start.
    assert {jobs[job][0] for job in held - done} == {"queued"}
    log = (tmp_path / "up.log").read_text()
    assert "killing" not in log
    assert "leaked semaphore" not in log
    # Every child stopped on its own, the workers before the API and the controller, which
    # they need to deliver their results.
    stops = re.findall(r"(\S+) stopped \(exit code (-?\d+)\)", log)
    assert stops[:2] in (
        [("worker-1", "0"), ("worker-2", "0")],
        [("worker-2", "0"), ("worker-1", "0")],
    )
    assert stops[2:] == [("api", "0"), ("controller", "0")]


def test_second_ctrl_c_stops_at_once(tmp_path):
    with dpip_up(tmp_path, "--worker-concurrency", "1") as (process, admin):
        workload = admin.create_workload(filter="blur", radius=60)["workload_id"]
        assert admin.upload(workload, slow_png((7000, 7000))).status_code == 201
        wait_until(
            lambda: sum(w["running_jobs"] for w in admin.get("/status").json()["workers"]) == 1,
            30,
            "a worker to run the job",
        )
        children = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGINT)
        wait_until(lambda: "stopping" in (tmp_path / "up.log").read_text(), 10, "the drain")
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=10) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    assert "leaked semaphore" not in (tmp_path / "up.log").read_text()
