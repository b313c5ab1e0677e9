"""The S3 image store against a real S3 server (SeaweedFS): staged writes that no reader
sees, commits that replace whole, reads, listing and deletion, as the local store's; and
the workers' presigned transfers, read back and checked before they count."""

from __future__ import annotations

import io
import uuid

import pytest
import urllib3
from botocore.exceptions import ClientError

from imagestore import (
    ImageMissing,
    ImageName,
    StoreUnreachable,
    UploadTooLarge,
    open_image_store,
)
from imagestore.s3 import S3ImageStore
from tests.conftest import free_port
from tests.seaweedfs_server import S3_BUCKET

WORKLOAD = "7-holiday"
ORIGINAL = ImageName(0, "original", "png")
RESULT_UPLOAD = "result-0-5.png"
URL_TTL_S = 60


@pytest.fixture
def store(seaweedfs, tmp_path, monkeypatch) -> S3ImageStore:
    """A store under a prefix of its own, so tests never see each other's images; its
    client made from the standard AWS variables, as the API's is."""
    for name, value in seaweedfs.store_env(f"images-{uuid.uuid4().hex}").items():
        monkeypatch.setenv(name, value)
    made = open_image_store(f"s3://{S3_BUCKET}/images-{uuid.uuid4().hex}", tmp_path)
    assert isinstance(made, S3ImageStore)
    return made


def _keys(store: S3ImageStore) -> list[str]:
    """Every key under the store's prefix, without it."""
    listed = store.client.list_objects_v2(Bucket=S3_BUCKET, Prefix=store.prefix)
    return sorted(item["Key"].removeprefix(store.prefix) for item in listed.get("Contents", ()))


def _commit(store: S3ImageStore, name: ImageName, data: bytes) -> None:
    with store.put(WORKLOAD, io.BytesIO(data)) as staged:
        staged.commit(name)


def test_a_staged_image_is_invisible_until_committed(store):
    with store.put(WORKLOAD, io.BytesIO(b"pixels")) as staged:
        assert store.list_workload(WORKLOAD) == []
        [temp] = _keys(store)
        assert temp.startswith(f".staging/{WORKLOAD}/")
        staged.commit(ORIGINAL)
    assert _keys(store) == [f"{WORKLOAD}/0.original.png"]
    with store.open(WORKLOAD, ORIGINAL) as stored:
        assert (stored.size, stored.read()) == (6, b"pixels")


def test_a_staged_image_never_committed_is_discarded(store):
    with pytest.raises(RuntimeError), store.put(WORKLOAD, io.BytesIO(b"pixels")):
        raise RuntimeError("the transaction failed")
    assert _keys(store) == []


def test_commit_replaces_an_image_of_the_same_name_whole(store):
    for data in (b"first", b"second, longer"):
        _commit(store, ORIGINAL, data)
    assert store.open(WORKLOAD, ORIGINAL).read() == b"second, longer"


def test_open_a_missing_image(store):
    with pytest.raises(ImageMissing, match="the original file of image 0 is missing"):
        store.open(WORKLOAD, ORIGINAL)


def test_list_and_delete_take_staged_objects_too(store):
    names = [ImageName(10, "original", "png"), ImageName(2, "filtered", "jpg")]
    for name in names:
        _commit(store, name, b"x")
    with store.put(WORKLOAD, io.BytesIO(b"staged")):
        assert store.list_workload(WORKLOAD) == sorted(names)
        store.delete_workload(WORKLOAD)
    assert _keys(store) == []
    store.delete_workload(WORKLOAD)  # gone already: no error


def test_the_server_refuses_a_wrong_key_and_anonymous_reads(seaweedfs, store):
    _commit(store, ORIGINAL, b"secret")
    with pytest.raises(ClientError):
        seaweedfs.client("wrong-secret").get_object(
            Bucket=S3_BUCKET, Key=store.key(WORKLOAD, ORIGINAL)
        )
    anonymous = urllib3.request("GET", f"{seaweedfs.endpoint}/{S3_BUCKET}/{store.prefix}")
    assert anonymous.status == 403


def test_a_worker_reads_and_uploads_through_presigned_urls_only(store):
    _commit(store, ORIGINAL, b"original")
    read = urllib3.request("GET", store.read_url(WORKLOAD, ORIGINAL, URL_TTL_S))
    assert (read.status, read.data) == (200, b"original")
    upload_url = store.upload_url(WORKLOAD, RESULT_UPLOAD, URL_TTL_S)
    assert urllib3.request("PUT", upload_url, body=b"filtered").status == 200
    assert store.list_workload(WORKLOAD) == [ORIGINAL]  # staged: nobody sees it yet
    data, staged = store.take_upload(WORKLOAD, RESULT_UPLOAD, max_bytes=100)
    with staged:
        assert data == b"filtered"
        staged.commit(ImageName(0, "filtered", "png"))
    assert _keys(store) == [f"{WORKLOAD}/0.filtered.png", f"{WORKLOAD}/0.original.png"]
    # A signature for one key does not open another.
    forged = store.read_url(WORKLOAD, ORIGINAL, URL_TTL_S).replace("0.original", "0.filtered")
    assert urllib3.request("GET", forged).status == 403


def test_an_upload_over_the_bound_is_refused_and_removed(store):
    upload_url = store.upload_url(WORKLOAD, RESULT_UPLOAD, URL_TTL_S)
    assert urllib3.request("PUT", upload_url, body=b"x" * 101).status == 200
    with pytest.raises(UploadTooLarge, match="101 bytes, over 100"):
        store.take_upload(WORKLOAD, RESULT_UPLOAD, max_bytes=100)
    assert _keys(store) == []
    with pytest.raises(ImageMissing):
        store.take_upload(WORKLOAD, RESULT_UPLOAD, max_bytes=100)


def test_an_unreachable_store_is_an_error_to_retry(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    store = open_image_store(f"s3://{S3_BUCKET}/nowhere", tmp_path)
    with pytest.raises(StoreUnreachable, match="cannot be reached to read an image"):
        store.open(WORKLOAD, ORIGINAL)
    with pytest.raises(StoreUnreachable):
        store.put(WORKLOAD, io.BytesIO(b"x"))
