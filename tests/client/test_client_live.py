"""The client against a real system: log in and out, upload batches of files and bytes,
wait on the long poll, page through images, download one result and the whole archive, and
each error class raised on the status the API really answers."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from client import (
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    NotAuthenticated,
    NotFound,
    RateLimited,
    RetryPolicy,
    TooLarge,
    UploadedImage,
    User,
    WaitTimedOut,
    Workload,
)
from tests.conftest import ADMIN_PASSWORD, cluster_fixture, image_bytes

MAX_BATCH_IMAGES = 4
IMAGES_PAGE = 3
LOGIN_MAX_FAILURES = 2
cluster = cluster_fixture(
    workers=1,
    env={
        "DPIP_MAX_BATCH_IMAGES": str(MAX_BATCH_IMAGES),
        "DPIP_MAX_IMAGES_PAGE": str(IMAGES_PAGE),
        "DPIP_LOGIN_MAX_FAILURES": str(LOGIN_MAX_FAILURES),
    },
)


@pytest.fixture(scope="module")
def admin_client(cluster) -> Iterator[Client]:
    with Client(cluster.url) as client:
        client.login("admin", ADMIN_PASSWORD)
        yield client


_names = iter(range(1_000_000))


@pytest.fixture(scope="module")
def make_client(cluster, admin_client) -> Iterator[Callable[[], Client]]:
    """Create a fresh user (through the client's admin calls) and log a client in as them;
    `.password` is theirs. Every client made is closed at the module's end."""
    made: list[Client] = []

    def make() -> Client:
        name, password = f"client-user-{next(_names)}", "client-password-1"
        assert admin_client.create_user(name, password) == User(name, "user")
        client = Client(cluster.url)
        made.append(client)
        assert client.login(name, password) == User(name, "user")
        client.username, client.password = name, password
        return client

    try:
        yield make
    finally:
        for client in made:
            client.close()


ORIGINALS = {f"photo {n}.png": image_bytes("PNG", size=(16, 12), seed=n) for n in range(5)}
BARE = [image_bytes("PNG", size=(16, 12), seed=10), image_bytes("PNG", size=(16, 12), seed=11)]


@pytest.fixture(scope="module")
def completed(make_client, tmp_path_factory) -> tuple[Client, Workload, list[bytes], list]:
    """A workload of 7 images, uploaded as files (3 batches, in flight together) and as
    bytes, then waited for: (its client, the final workload, the originals by number, what
    on_progress got)."""
    client = make_client()
    folder = tmp_path_factory.mktemp("photos")
    for filename, data in ORIGINALS.items():
        (folder / filename).write_bytes(data)
    workload = client.create_workload(name="holiday", filter="grayscale", tags=())
    batches: list[list[UploadedImage]] = []
    paths = [folder / filename for filename in ORIGINALS]
    from_files = client.upload(workload.id, paths, batch=2, in_flight=3, on_batch=batches.append)
    from_bytes = client.upload(
        workload.id, [("named.png", BARE[0]), BARE[1]], batch=MAX_BATCH_IMAGES
    )

    assert [image.filename for image in from_files] == list(ORIGINALS)
    assert sorted(len(batch) for batch in batches) == [1, 2, 2]
    assert [image.filename for image in from_bytes] == ["named.png", None]
    uploaded = from_files + from_bytes
    assert sorted(image.image_id for image in uploaded) == list(range(7))
    originals: list[bytes] = [b""] * 7
    for image, data in zip(uploaded, [*ORIGINALS.values(), *BARE], strict=True):
        originals[image.image_id] = data

    progress: list[Workload] = []
    final = client.wait(workload.id, timeout=60, on_progress=progress.append)
    return client, final, originals, progress


def test_wait_answers_the_completed_workload_and_reports_progress(completed):
    _, final, _, progress = completed
    assert final.is_completed and final.images.done == 7 and final.images.failed == 0
    assert final.filtered_images == tuple(range(7))
    assert final.name == "holiday" and final.filter == "grayscale"
    finished = [workload.images.finished for workload in progress]
    assert finished == sorted(set(finished)), "each call brings news, in order"
    assert progress[-1] == final


def test_images_pages_through_every_image_in_number_order(completed):
    client, final, originals, _ = completed
    images = list(client.images(final.id))  # 3 pages: the API's largest page is 3
    assert [image.image_id for image in images] == list(range(7))
    assert {image.filename for image in images} == {*ORIGINALS, "named.png", None}
    assert all(image.status == "done" and image.format == "PNG" for image in images)
    assert [image.size for image in images] == [len(data) for data in originals]
    assert len(list(client.images(final.id, status="done", page_size=2))) == 7
    assert list(client.images(final.id, status="failed")) == []


def test_a_downloaded_result_is_pillows_grayscale_of_its_original(completed, tmp_path):
    client, final, originals, _ = completed
    result = client.download(final.id, 3)
    with Image.open(io.BytesIO(result)) as filtered, Image.open(io.BytesIO(originals[3])) as orig:
        assert filtered.mode == "L"
        assert filtered.tobytes() == orig.convert("L").tobytes()
    assert client.download(final.id, 3, type="original") == originals[3]
    assert client.download_to(final.id, 3, tmp_path / "three.png") == len(result)
    assert (tmp_path / "three.png").read_bytes() == result
    assert [path.name for path in tmp_path.iterdir()] == ["three.png"]


def test_download_all_writes_every_entry_and_the_manifest(completed, tmp_path):
    client, final, originals, _ = completed
    manifest = client.download_all(final.id, tmp_path / "results")
    written = sorted(path.name for path in (tmp_path / "results").iterdir())
    assert written == [f"{n:06d}.png" for n in range(7)] + ["manifest.json"]
    assert (manifest.workload_id, manifest.type) == (final.id, "filtered")
    assert [entry.image_id for entry in manifest.images] == list(range(7))
    assert {entry.filename for entry in manifest.images} == {*ORIGINALS, "named.png", None}
    assert all(entry.status == "done" for entry in manifest.images)
    for n in range(7):
        assert (tmp_path / "results" / f"{n:06d}.png").read_bytes() == client.download(final.id, n)

    client.download_all(final.id, tmp_path / "originals", type="original")
    for n, data in enumerate(originals):
        assert (tmp_path / "originals" / f"{n:06d}.png").read_bytes() == data


def test_logout_revokes_the_token(cluster, make_client):
    client = make_client()
    token = client.token
    client.logout()
    assert client.token is None
    with Client(cluster.url, token) as old, pytest.raises(NotAuthenticated) as raised:
        old.workloads()
    assert (raised.value.status, raised.value.error) == (401, "token_revoked")
    with pytest.raises(NotAuthenticated) as raised:
        client.workloads()
    assert raised.value.error == "missing_token"


def test_a_wrong_password_is_not_authenticated(cluster, make_client):
    user = make_client()
    with Client(cluster.url) as client, pytest.raises(NotAuthenticated) as raised:
        client.login(user.username, "not-the-password")
    assert raised.value.error == "bad_credentials"
    assert client.token is None


def test_repeated_wrong_passwords_are_rate_limited_with_retry_after(cluster, make_client):
    """Opting in to wait changes nothing when the wait is past the policy's total time."""
    user = make_client()
    patient = RetryPolicy(attempts=3, total_s=0.5)
    with Client(cluster.url, retry=patient, wait_on_rate_limit=True) as client:
        for _ in range(LOGIN_MAX_FAILURES):
            with pytest.raises(NotAuthenticated):
                client.login(user.username, "not-the-password")
        with pytest.raises(RateLimited) as raised:
            client.login(user.username, user.password)
    assert raised.value.error == "too_many_attempts"
    assert 0 < raised.value.retry_after <= 60


def test_another_users_workload_is_not_found(make_client):
    owner, other = make_client(), make_client()
    workload = owner.create_workload()
    with pytest.raises(NotFound) as raised:
        other.workload(workload.id)
    assert (raised.value.status, raised.value.error) == (404, "not_found")
    with pytest.raises(NotFound):
        other.upload(workload.id, [image_bytes()])


def test_a_taken_workload_name_is_a_conflict(make_client):
    client = make_client()
    client.create_workload(name="twice")
    with pytest.raises(Conflict) as raised:
        client.create_workload(name="twice")
    assert raised.value.error == "duplicate_workload_name"


def test_a_batch_past_the_limit_is_too_large_and_stores_nothing(make_client):
    client = make_client()
    workload = client.create_workload()
    images = [image_bytes(seed=n) for n in range(MAX_BATCH_IMAGES + 1)]
    with pytest.raises(TooLarge) as raised:
        client.upload(workload.id, images, batch=MAX_BATCH_IMAGES + 1)
    assert raised.value.error == "too_many_images"
    assert client.workload(workload.id).images.total == 0


def test_an_unknown_filter_is_a_bad_request(make_client):
    with pytest.raises(BadRequest) as raised:
        make_client().create_workload(filter="sepia")
    assert (raised.value.status, raised.value.error) == (400, "unknown_filter")


def test_users_may_not_list_users(make_client):
    with pytest.raises(Forbidden) as raised:
        make_client().users()
    assert raised.value.status == 403


def test_wait_times_out_on_a_workload_without_images(make_client):
    client = make_client()
    workload = client.create_workload(name="empty", filter="blur", radius=3)
    assert workload.radius == 3.0
    with pytest.raises(WaitTimedOut) as raised:
        client.wait(workload.id, timeout=0.3)
    assert raised.value.workload.status == "scheduling"


def test_status_lists_the_worker_and_the_callers_workloads(admin_client):
    status = admin_client.status()
    assert status.system_name == "DPIP"
    assert [worker.name for worker in admin_client.workers()] == ["worker-1"]
    assert status.workers[0].alive and status.workers[0].concurrency >= 1


def test_admins_manage_users_and_a_password_change_renews_the_token(
    cluster, admin_client, make_client
):
    user = make_client()
    assert User(user.username, "user") in admin_client.users()
    assert user.user(user.username) == User(user.username, "user")

    old_token = user.token
    user.update_user(user.username, password="new-password-1", current_password=user.password)
    assert user.token != old_token
    assert user.user(user.username).username == user.username  # the new token works
    with Client(cluster.url, old_token) as old, pytest.raises(NotAuthenticated):
        old.workloads()

    promoted = admin_client.update_user(user.username, role="admin")
    assert promoted == User(user.username, "admin")
    admin_client.delete_user(user.username)
    with pytest.raises(NotFound):
        admin_client.user(user.username)


def test_a_username_with_spaces_and_symbols_is_addressed(admin_client):
    name = "ann marie+1@x?y#z"
    admin_client.create_user(name, "client-password-1")
    assert admin_client.user(name) == User(name, "user")
    admin_client.delete_user(name)


def test_upload_reads_files_as_it_sends_them(make_client, tmp_path: Path):
    """A file larger than one read of the body goes whole, and its name is kept as sent."""
    client = make_client()
    workload = client.create_workload()
    large = image_bytes("BMP", size=(400, 300))  # 360 KB: more than one 256 KiB piece
    (tmp_path / "large.bmp").write_bytes(large)
    uploaded = client.upload(workload.id, [('dir/"quoted" ü.bmp', tmp_path / "large.bmp")])
    assert uploaded[0].filename == 'dir/"quoted" ü.bmp'
    assert client.download(workload.id, uploaded[0].image_id, type="original") == large


def test_one_image_a_request_and_an_archive_as_it_is(make_client, tmp_path) -> None:
    client = make_client()
    workload = client.create_workload(filter="grayscale")
    (tmp_path / "kept name.png").write_bytes(ORIGINALS["photo 0.png"])
    assert client.upload_image(workload.id, tmp_path / "kept name.png") == UploadedImage(
        0, "kept name.png"
    )
    assert client.upload_image(workload.id, BARE[0]) == UploadedImage(1, None)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        for name in ("a.png", "b.png"):
            member = tarfile.TarInfo(name)
            member.size = len(BARE[1])
            archive.addfile(member, io.BytesIO(BARE[1]))
    (tmp_path / "two.tar").write_bytes(tar.getvalue())
    assert client.upload_archive(workload.id, tmp_path / "two.tar") == [
        UploadedImage(2, "a.png"),
        UploadedImage(3, "b.png"),
    ]
    with pytest.raises(ValueError):
        client.upload_archive(workload.id, tar.getvalue())  # bytes say no kind
    assert [image.filename for image in client.images(workload.id)] == [
        "kept name.png",
        None,
        "a.png",
        "b.png",
    ]


def test_one_long_poll_step_and_the_raw_archive(make_client) -> None:
    client = make_client()
    workload = client.create_workload(filter="grayscale")
    client.upload_image(workload.id, BARE[0], "only.png")
    assert client.workload(workload.id, wait=0).images.total == 1  # answers at once
    finished = client.wait(workload.id, timeout=60)
    step = client.workload(workload.id, wait=5, seen=0)  # more than 0 finished: no wait
    assert step.images.finished == finished.images.finished == 1
    sink = io.BytesIO()
    size = client.download_archive(workload.id, sink)
    assert size == len(sink.getvalue()) > 0
    with zipfile.ZipFile(sink) as archive:
        assert archive.namelist() == ["000000.png", "manifest.json"]
