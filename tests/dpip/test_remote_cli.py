"""The `dpip` command line as its users type it, run as a subprocess against a real system:
log in, process a folder, resume uploads (after an interruption too), wait's exit codes,
--json, one-line errors, log out."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from client import Client, NotAuthenticated, User
from stress.images import Check, result_is_correct
from tests.conftest import BIN, cluster_fixture, image_bytes, wait_until
from tests.faults.test_failing_jobs import corrupt_png

cluster = cluster_fixture(workers=1)
NO_WORKER = "nowhere"  # a tag no worker has: the workload's jobs stay queued
DPIP_VARIABLES = ("DPIP_URL", "DPIP_TOKEN")

Dpip = Callable[..., subprocess.CompletedProcess]


def dpip_env(config_home: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in DPIP_VARIABLES}
    return {**env, "XDG_CONFIG_HOME": str(config_home), **extra}


def runner(config_home: Path, **extra: str) -> Dpip:
    """Run `dpip ARGS` with its config in `config_home` (and `extra` variables)."""

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "dpip"), *map(str, args)],
            input=stdin,
            capture_output=True,
            text=True,
            env=dpip_env(config_home, **extra),
            timeout=60,
            check=False,
        )

    return run


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result


def parsed(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def account(cluster, admin) -> tuple[str, str]:
    name, password = "cli-user", "cli-user-password"
    response = admin.post("/users", json={"username": name, "password": password})
    assert response.status_code == 201, response.text
    return name, password


def log_in(dpip: Dpip, url: str, account: tuple[str, str]) -> subprocess.CompletedProcess:
    name, password = account
    return ok(dpip("login", url, "--user", name, "--password-stdin", "--json", stdin=password))


@pytest.fixture(scope="module")
def config_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("config")


@pytest.fixture(scope="module")
def dpip(cluster, account, config_home) -> Dpip:
    """The command, logged in as `account` for the whole module."""
    run = runner(config_home)
    log_in(run, cluster.url, account)
    return run


@pytest.fixture(scope="module")
def api(cluster, account) -> Iterator[Client]:
    """The API as the same user, to check what the commands did."""
    with Client(cluster.url) as client:
        client.login(*account)
        yield client


def write_photos(folder: Path, names: list[str]) -> dict[str, bytes]:
    """A small distinct image for each relative name (its format by its suffix, except that
    `.dat` is a PNG); answer the bytes by name."""
    formats = {".jpg": "JPEG", ".bmp": "BMP"}
    written = {}
    for seed, name in enumerate(names):
        data = image_bytes(formats.get(Path(name).suffix, "PNG"), size=(20, 14), seed=seed)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        written[name] = data
    return written


PHOTO_NAMES = [
    *(f"img_{n:03d}.png" for n in range(20)),
    *(f"img_{n:03d}.jpg" for n in range(20, 24)),
    "scan.bmp",
    "photo.dat",
    *(f"holiday/day1/img_{n:03d}.png" for n in range(3)),
    "holiday/cover.jpg",
]


@pytest.fixture(scope="module")
def processed(
    dpip, tmp_path_factory
) -> tuple[Path, dict[str, bytes], dict, subprocess.CompletedProcess]:
    """`dpip process` of a folder of 30 images, 4 in subfolders, and a text file: (the
    output folder, the originals by relative name, the --json document, the run)."""
    photos = tmp_path_factory.mktemp("photos")
    originals = write_photos(photos, PHOTO_NAMES)
    (photos / "notes.txt").write_text("not an image\n")
    out = tmp_path_factory.mktemp("out")
    run = ok(dpip("process", photos, "--filter", "grayscale", "--out", out, "--json"))
    return out, originals, parsed(run), run


def assert_grayscale_of(result: Path, original: bytes) -> None:
    """`result` is Pillow's grayscale of `original`, in the original's format."""
    with Image.open(io.BytesIO(original)) as image:
        image_format = image.format
    check = Check(original, result.read_bytes(), "grayscale", 0.0, image_format)
    assert result_is_correct(check), result


def test_login_keeps_the_token_in_a_file_only_its_owner_reads(cluster, account, api, tmp_path):
    dpip = runner(tmp_path)
    document = parsed(log_in(dpip, cluster.url, account))
    path = tmp_path / "dpip" / "credentials.json"
    assert document["credentials"] == str(path)
    assert document["user"] == {"username": account[0], "role": "user"}
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    stored = json.loads(path.read_text())
    assert stored["url"] == cluster.url
    with Client(cluster.url, stored["token"]) as client:
        assert client.user(account[0]) == User(account[0], "user")
    assert [entry.name for entry in path.parent.iterdir()] == ["credentials.json"]

    status = parsed(ok(dpip("status", "--json")))
    assert {worker["name"] for worker in status["workers"]} == {"worker-1"}
    table = ok(dpip("workers")).stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "ALIVE"] and table[1].split()[:2] == ["worker-1", "yes"]


def test_process_filters_a_folder_into_numbered_files(processed):
    out, originals, document, run = processed
    upload, download = document["upload"], document["download"]
    assert (upload["found"], upload["uploaded"], upload["not_images"]) == (30, 30, 1)
    assert document["workload"]["images"]["done"] == 30
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted([entry["path"] for entry in download["files"]] + ["manifest.json"])
    assert sorted(int(name.split(".")[0]) for name in written[:-1]) == list(range(30))
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(entry["filename"] for entry in manifest["images"]) == sorted(originals)
    assert "holiday/day1/img_001.png" in {entry["filename"] for entry in manifest["images"]}
    for entry in manifest["images"]:
        [result] = out.glob(f"{entry['image_id']:06d}.*")
        assert_grayscale_of(result, originals[entry["filename"]])
    assert "\r" not in run.stderr and "\x1b" not in run.stderr  # no bar off a terminal


def test_download_names_files_by_their_uploaded_paths(dpip, processed, tmp_path):
    _, originals, document, _ = processed
    workload_id = document["workload"]["id"]
    run = ok(dpip("download", workload_id, "--out", tmp_path, "--names", "original", "--json"))
    assert parsed(run)["kept_numbered"] == []
    written = {
        path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file()
    }
    assert written == {*originals, "manifest.json"}
    for name, original in originals.items():
        assert_grayscale_of(tmp_path / name, original)

    ok(dpip("download", workload_id, "--out", tmp_path / "originals", "--type", "original"))
    manifest = json.loads((tmp_path / "originals" / "manifest.json").read_text())
    for entry in manifest["images"]:
        [copy] = (tmp_path / "originals").glob(f"{entry['image_id']:06d}.*")
        assert copy.read_bytes() == originals[entry["filename"]]


def test_wait_exits_0_when_every_image_is_filtered(dpip, processed):
    workload_id = processed[2]["workload"]["id"]
    run = ok(dpip("wait", workload_id))
    assert run.stdout == f"workload {workload_id} completed: 30 filtered, 0 failed\n"


def test_wait_exits_3_when_images_failed(dpip, api, tmp_path):
    workload = api.create_workload(filter="grayscale")
    api.upload(workload.id, [("good.png", image_bytes("PNG")), ("bad.png", corrupt_png())])
    run = dpip("wait", workload.id, "--timeout", 60, "--json")
    assert run.returncode == 3, run.stderr
    assert parsed(run)["images"]["failed"] == 1
    [line] = run.stderr.splitlines()
    assert line.startswith(f"dpip: workload {workload.id} completed with 1 failed image(s)")


def test_wait_exits_4_on_timeout(dpip, api):
    workload = api.create_workload(tags=[NO_WORKER])
    api.upload(workload.id, [image_bytes("PNG")])
    run = dpip("wait", workload.id, "--timeout", 0.5, "--json")
    assert run.returncode == 4, run.stderr
    assert parsed(run)["status"] == "scheduling"
    [line] = run.stderr.splitlines()
    assert line.startswith(f"dpip: workload {workload.id} is still scheduling after 0.5 s")


def test_a_second_upload_sends_only_the_new_files(dpip, api, tmp_path):
    workload_id = parsed(ok(dpip("workload", "create", "--tags", NO_WORKER, "--json")))["id"]
    first = write_photos(tmp_path, [f"a{n}.png" for n in range(5)])
    run = parsed(ok(dpip("upload", workload_id, tmp_path, "--json")))
    assert (run["uploaded"], run["already_uploaded"]) == (5, 0)

    later = write_photos(tmp_path / "more", ["b.png", "c.png", "deeper/d.png"])
    run = parsed(ok(dpip("upload", workload_id, tmp_path, "--json")))
    assert (run["found"], run["uploaded"], run["already_uploaded"]) == (8, 3, 5)
    assert sorted(image["filename"] for image in run["images"]) == [
        f"more/{name}" for name in sorted(later)
    ]
    names = [image.filename for image in api.images(workload_id)]
    assert sorted(names) == sorted([*first, *(f"more/{name}" for name in later)])


def test_an_interrupted_upload_resumes_with_the_rest(dpip, api, config_home, tmp_path):
    """SIGINT stops an upload of 1000 images partway (one image a request, one request at a
    time: several seconds, so the signal lands before the end even on a loaded machine); the
    rerun, in batches, sends exactly the images the workload lacks."""
    count = 1000
    for n in range(count):
        (tmp_path / f"{n:03d}.png").write_bytes(image_bytes("PNG", size=(4, 4), seed=n))
    workload = api.create_workload(tags=[NO_WORKER])
    argv = ["upload", workload.id, tmp_path, "--batch", 1, "--in-flight", 1]
    # Through a shim that sets SIGINT back to its default before the exec: a test run started
    # in the background (`make test &`, nohup) has SIGINT ignored, which children inherit,
    # and Python then never turns it into KeyboardInterrupt.
    command = [str(BIN / "dpip"), *map(str, argv)]
    shim = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL);"
        " os.execv(sys.argv[1], sys.argv[1:])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", shim, *command],
        env=dpip_env(config_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the signal reaches it alone
    )
    try:
        wait_until(lambda: api.workload(workload.id).images.total, 30, "a first image")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1 and "Aborted!" in stderr, stderr
    sent = api.workload(workload.id).images.total
    assert 0 < sent < count, "the upload was to be stopped partway"

    run = parsed(ok(dpip("upload", workload.id, tmp_path, "--json")))
    assert (run["uploaded"], run["already_uploaded"]) == (count - sent, sent)
    names = Counter(image.filename for image in api.images(workload.id))
    assert names == Counter(f"{n:03d}.png" for n in range(count))


def test_workload_delete(dpip, api):
    workload = api.create_workload("to-delete", tags=[NO_WORKER])
    assert ok(dpip("workload", "delete", workload.id)).stdout == f"deleted workload {workload.id}\n"
    run = dpip("workload", "show", workload.id)
    assert run.returncode == 1 and "does not exist" in run.stderr


def test_an_api_error_is_one_line_and_exit_status_1(dpip, cluster, admin):
    others = admin.create_workload(workload_name="not-the-cli-users")["workload_id"]
    run = dpip("workload", "show", others)
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == f"dpip: workload {others} does not exist\n"
    run = dpip("workload", "show", others, "--json")
    assert run.returncode == 1
    assert parsed(run) == {"error": "not_found", "message": f"workload {others} does not exist"}


def test_the_environment_overrides_the_stored_login(cluster, api, tmp_path):
    dpip = runner(tmp_path, DPIP_URL=cluster.url, DPIP_TOKEN=api.token)
    assert isinstance(parsed(ok(dpip("workloads", "--json")))["workloads"], list)
    run = runner(tmp_path, DPIP_URL=cluster.url)("workloads")
    assert run.returncode == 1
    assert run.stderr == f"dpip: not logged in to {cluster.url}: run `dpip login {cluster.url}`\n"


def test_logout_revokes_the_token(cluster, account, tmp_path):
    dpip = runner(tmp_path)
    log_in(dpip, cluster.url, account)
    path = tmp_path / "dpip" / "credentials.json"
    token = json.loads(path.read_text())["token"]
    assert parsed(ok(dpip("logout", "--json")))["revoked"] is True
    assert not path.exists()
    with Client(cluster.url, token) as client, pytest.raises(NotAuthenticated) as raised:
        client.workloads()
    assert raised.value.error == "token_revoked"
    run = dpip("workloads")
    assert run.returncode == 1
    assert run.stderr == "dpip: not logged in: run `dpip login URL`\n"
