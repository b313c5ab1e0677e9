"""GET /metrics on a live system: counters that move by exactly what happened and survive an
API restart, gauges per worker, bounded labels, and who may scrape."""

from __future__ import annotations

import stat
import uuid

import pynng
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from protocol import Telemetry
from tests.conftest import (
    Client,
    Cluster,
    FakeWorker,
    image_bytes,
    live_fake_worker,
    wait_until,
)
from tests.faults.test_failing_jobs import corrupt_png

IMAGES = 5
UPLOAD_ROUTE = "/images"
GPU_HOST = frozenset({("worker", "gpu-host")})
Samples = dict[tuple[str, frozenset], float]


def scrape(cluster: Cluster, token: str) -> Samples:
    """Every sample of /metrics, by name and labels."""
    response = requests.get(
        cluster.url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(after: Samples, before: Samples, name: str, **labels: str) -> float:
    """How far a sample moved between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture(scope="module")
def scrape_token(cluster: Cluster) -> str:
    return (cluster.data_dir / "metrics_token").read_text().strip()


def test_the_scrape_token_is_made_at_first_start_private(cluster: Cluster, scrape_token) -> None:
    assert len(scrape_token) >= 40
    mode = stat.S_IMODE((cluster.data_dir / "metrics_token").stat().st_mode)
    assert mode == 0o600


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("nobody", 401, "missing_token"),
        ("a wrong token", 401, "invalid_token"),
        ("a user", 403, "forbidden"),
        ("the scrape token", 200, None),
        ("an admin", 200, None),
    ],
)
def test_who_may_scrape(cluster, admin, make_user, scrape_token, who, status, code) -> None:
    tokens = {
        "nobody": None,
        "a wrong token": scrape_token[:-4] + "AAAA",
        "a user": make_user().token if who == "a user" else None,
        "the scrape token": scrape_token,
        "an admin": admin.token,
    }
    headers = {"Authorization": f"Bearer {tokens[who]}"} if tokens[who] else {}
    response = requests.get(cluster.url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"] == code  # the API's JSON error shape
    else:
        assert "dpip_jobs_total" in response.text


def test_a_workload_moves_the_counters_by_exactly_its_images(
    cluster: Cluster, admin: Client, scrape_token: str
) -> None:
    before = scrape(cluster, scrape_token)
    workload_id = admin.create_workload(workload_name=f"metrics-{uuid.uuid4().hex[:8]}")[
        "workload_id"
    ]
    for seed in range(IMAGES):
        assert admin.upload(workload_id, image_bytes(seed=seed)).status_code == 201
    admin.wait_completed(workload_id)

    # A done job's duration comes with its worker's result, just after the API stored it.
    wait_until(
        lambda: (
            moved(scrape(cluster, scrape_token), before, "dpip_job_duration_seconds_count")
            >= IMAGES
        ),
        10,
        "the results' durations",
    )
    after = scrape(cluster, scrape_token)

    def delta(name: str, **labels: str) -> float:
        return moved(after, before, name, **labels)

    assert delta("dpip_images_uploaded_total") == IMAGES
    assert delta("dpip_jobs_total", outcome="done") == IMAGES
    assert delta("dpip_jobs_total", outcome="failed") == 0
    assert delta("dpip_job_duration_seconds_count") == IMAGES
    assert delta("dpip_job_duration_seconds_bucket", le="+Inf") == IMAGES
    assert 0 < delta("dpip_job_duration_seconds_sum") < 60 * IMAGES
    assert delta("dpip_job_queue_wait_seconds_count") == IMAGES  # one assignment each
    assert delta("dpip_jobs_total", outcome="returned") == 0
    assert delta("dpip_jobs_total", outcome="retried") == 0
    assert delta("dpip_http_requests_total", method="POST", route=UPLOAD_ROUTE, status="201") == (
        IMAGES
    )
    assert delta("dpip_http_request_duration_seconds_count", route=UPLOAD_ROUTE) == IMAGES
    assert value(after, "dpip_jobs_queued") == 0
    assert value(after, "dpip_jobs_running") == 0
    assert value(after, "dpip_workers", state="alive") == 2
    for worker in ("worker-1", "worker-2"):
        assert 0 <= value(after, "dpip_worker_cpu_percent", worker=worker) <= 100
        assert 0 < value(after, "dpip_worker_memory_percent", worker=worker) <= 100
    assert not any(name == "dpip_worker_gpu_percent" for name, _ in after)  # no GPU reported


def test_a_failing_job_counts_its_retries_and_its_failure(
    cluster: Cluster, admin: Client, scrape_token: str
) -> None:
    before = scrape(cluster, scrape_token)
    workload_id = admin.create_workload(workload_name=f"failing-{uuid.uuid4().hex[:8]}")[
        "workload_id"
    ]
    assert admin.upload(workload_id, corrupt_png()).status_code == 201
    assert admin.wait_completed(workload_id)["images"]["failed"] == 1
    after = scrape(cluster, scrape_token)
    # 3 attempts: 2 failed and queued again, the last failed for good, in one transaction
    # each with the job's own change.
    assert moved(after, before, "dpip_jobs_total", outcome="retried") == 2
    assert moved(after, before, "dpip_jobs_total", outcome="failed") == 1


def test_random_paths_add_one_label_set(cluster: Cluster, admin: Client, scrape_token: str) -> None:
    def request_label_sets() -> set[frozenset]:
        return {
            labels
            for name, labels in scrape(cluster, scrape_token)
            if name == "dpip_http_requests_total"
        }

    def random_requests(count: int) -> None:
        for _ in range(count):
            admin.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex[:6]}", params={"x": uuid.uuid4().hex})
            admin.request(uuid.uuid4().hex[:8].upper(), f"/{uuid.uuid4().hex}")

    random_requests(1)
    before = request_label_sets()
    random_requests(200)
    assert request_label_sets() == before
    routes = {dict(labels)["route"] for labels in before}
    assert "unmatched" in routes
    assert all(route.startswith("/") or route == "unmatched" for route in routes)


def test_counters_survive_an_api_restart(
    cluster: Cluster, admin: Client, scrape_token: str
) -> None:
    workload_id = admin.create_workload(workload_name=f"restart-{uuid.uuid4().hex[:8]}")[
        "workload_id"
    ]
    assert admin.upload(workload_id, image_bytes(seed=9)).status_code == 201
    admin.wait_completed(workload_id)
    before = scrape(cluster, scrape_token)
    cluster.stop("api")
    cluster.start_api()
    after = scrape(cluster, scrape_token)
    assert value(after, "dpip_images_uploaded_total") >= 1
    for name, labels in (
        ("dpip_images_uploaded_total", {}),
        ("dpip_jobs_total", {"outcome": "done"}),
        ("dpip_job_queue_wait_seconds_count", {}),
    ):
        assert value(after, name, **labels) == value(before, name, **labels), name
    # The requests' counts are the API processes' own: a restart starts them again.
    uploads = {"method": "POST", "route": UPLOAD_ROUTE, "status": "201"}
    assert value(before, "dpip_http_requests_total", **uploads) >= 1
    assert value(after, "dpip_http_requests_total", **uploads) == 0


# The fake workers of the last tests take jobs they never run (handed back): they come last.


def test_a_worker_reporting_a_gpu_gets_its_gpu_gauge(cluster: Cluster, scrape_token: str) -> None:
    """A worker's telemetry with GPU figures (sent here by a joined fake worker: no GPU on
    the test host) shows as its GPU gauge; the workers without one have none."""
    worker = FakeWorker(cluster, "gpu-host")
    accepted = worker.accepted
    report = Telemetry(
        accepted.worker_id,
        12.5,
        40.0,
        {"utilization_percent": 87.5, "memory_percent": 30.0},
        (),
        worker_key=accepted.rpc_key,
    )

    def reported() -> Samples | None:
        pub.send(report.encode())  # pub/sub drops what it sends before it is connected
        samples = scrape(cluster, scrape_token)
        return samples if ("dpip_worker_gpu_percent", GPU_HOST) in samples else None

    with pynng.Pub0(dial=f"tcp://127.0.0.1:{accepted.telemetry_port}") as pub:
        samples = wait_until(reported, 10, "the GPU gauge")
    assert value(samples, "dpip_worker_gpu_percent", worker="gpu-host") == 87.5
    assert value(samples, "dpip_worker_cpu_percent", worker="gpu-host") == 12.5
    assert value(samples, "dpip_worker_memory_percent", worker="gpu-host") == 40.0
    gpu_workers = {
        dict(labels)["worker"] for name, labels in samples if name.endswith("gpu_percent")
    }
    assert gpu_workers == {"gpu-host"}


def test_a_worker_token_may_not_scrape(cluster: Cluster) -> None:
    with live_fake_worker(cluster, "scraping-worker") as worker:
        headers = {"Authorization": f"Bearer {worker.accepted.worker_token}"}
        response = requests.get(cluster.url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
