"""Several API hosts behind nginx, sharing one PostgreSQL datastore and one image store.

Six simulated hosts (tests/api_site.py): PostgreSQL, the controller, two API hosts, nginx
(deploy/nginx/dpip.conf, the configuration user-guide.md shows) and a worker, with the
test's client on the switch. Clients and the worker reach the API through nginx, except
where a test calls one API host directly to show what holds across them. Needs root, `ip`,
PostgreSQL and nginx (.ci/run installs them); skips otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.api_site import Site, site_addresses, start_site
from tests.conftest import (
    ADMIN_PASSWORD,
    BUSY_FILTER,
    Client,
    slow_png,
    start_busy_workload,
    wait_until,
)
from tests.netns import inside, simulated_network
from tests.nginx_server import nginx_binary
from tests.outcomes import assert_done_once, job_records, wrong_results
from tests.postgres_server import postgres_bin_dir

pytestmark = pytest.mark.hosts

SUBNET = "10.213.9"
LOGIN_MAX_FAILURES = 3  # per (username, address); the account's own delay starts later
IMAGES = 6  # per half of the killed API's run


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx)")
    addresses = site_addresses(SUBNET, api_hosts=2, workers=1)
    env = {
        "DPIP_LOGIN_MAX_FAILURES": str(LOGIN_MAX_FAILURES),
        "DPIP_WORKLOAD_WAIT_RECHECK_S": "60",  # longer than any wait: only notices wake one
    }
    with (
        simulated_network(f"a{os.getpid()}", SUBNET, addresses) as network,
        contextlib.ExitStack() as running,
    ):
        with inside(network.switch):
            root = tmp_path_factory.mktemp("site")
            started = start_site(network, root, running, env, worker_concurrency=2)
        yield started  # tests enter the switch themselves to reach the hosts


def login(url: str, username: str, password: str, **headers: str) -> requests.Response:
    return requests.post(
        url + "/login", json={"username": username, "password": password}, headers=headers
    )


def refuses(url: str) -> bool:
    """Whether nothing listens at `url` any more."""
    try:
        requests.get(url + "/status", timeout=1)
    except requests.ConnectionError:
        return True
    return False


def test_a_login_on_one_api_host_holds_on_the_other_until_logged_out_on_either(site):
    with inside(site.network.switch):
        one, other = (Client(url) for url in site.apis.values())
        one.api.login("admin", ADMIN_PASSWORD)
        other.token = one.token
        assert other.get("/status").status_code == 200
        assert other.delete("/logout").status_code == 200
        assert one.get("/status").status_code == 401
        assert other.get("/status").status_code == 401


def test_failed_logins_count_together_on_every_api_host(site):
    with inside(site.network.switch):
        site.cluster.login("admin", ADMIN_PASSWORD).api.create_user("tessa", "tessa-password-1")
        urls = list(site.apis.values())
        for attempt in range(LOGIN_MAX_FAILURES):
            assert login(urls[attempt % 2], "tessa", "wrong").status_code == 401
        for url in urls:
            assert login(url, "tessa", "tessa-password-1").status_code == 429


def test_through_nginx_a_login_counts_for_the_client_not_an_address_it_claims(site):
    """nginx is a host of its own: were the API to count nginx's address, or the first one
    in X-Forwarded-For (the client's claim), the client's own login would pass below."""
    with inside(site.network.switch):
        site.cluster.login("admin", ADMIN_PASSWORD).api.create_user("ulla", "ulla-password-1")
        for n in range(LOGIN_MAX_FAILURES):
            claimed = {"X-Forwarded-For": f"198.51.100.{n}"}
            assert login(site.cluster.url, "ulla", "wrong", **claimed).status_code == 401
        assert login(site.apis["api-1"], "ulla", "ulla-password-1").status_code == 429
        assert login(site.cluster.url, "ulla", "ulla-password-1").status_code == 429


def test_a_long_poll_on_each_api_host_wakes_on_progress_made_through_nginx(site):
    with inside(site.network.switch):
        admin = site.cluster.login("admin", ADMIN_PASSWORD)
        workload_id = admin.api.create_workload("woken-everywhere", "grayscale").id
        waiters = [Client(url, admin.token) for url in site.apis.values()]
        with ThreadPoolExecutor(len(waiters)) as pool:  # its threads start inside the switch
            waiting = [
                pool.submit(waiter.get, f"/workloads/{workload_id}", params={"wait": 8, "seen": 0})
                for waiter in waiters
            ]
            admin.api.upload_image(workload_id, slow_png(size=(64, 48)))
            answers = [future.result(timeout=30) for future in waiting]
        # The recheck comes every 60 s and a wait ends after 8: only a notice wakes a waiter
        # with the image done.
        assert [answer.json()["filtered_images"] for answer in answers] == [[0], [0]]


def test_killing_one_api_host_mid_run_loses_nothing(site):
    """Killed while it holds the run's long poll, worker requests and uploads: nginx sends
    them to the other host (a worker resends what failed), and the run completes there."""
    cluster = site.cluster
    later = [slow_png(seed=seed) for seed in range(IMAGES, 2 * IMAGES)]
    with inside(site.network.switch):
        admin = cluster.login("admin", ADMIN_PASSWORD)  # through nginx
        workload_id, originals = start_busy_workload(cluster, admin, "through-nginx", IMAGES)
        with ThreadPoolExecutor(1) as pool:  # its thread starts inside the switch
            waiting = pool.submit(admin.wait_completed, workload_id, 120)
            cluster.stop("api-1", signal.SIGKILL)
            try:
                # A request sent while the host dies is lost with it (nginx answers 502 and
                # resends only a GET): the upload goes once nothing of api-1 is left.
                wait_until(lambda: refuses(site.apis["api-1"]), 10, "api-1 to be gone")
                uploaded = admin.api.upload(workload_id, later, batch=IMAGES, in_flight=1)
                waiting.result(timeout=150)  # the long poll survived (it may end early)
                completed = admin.wait_completed(workload_id, 120)
            finally:
                site.apis["api-1"] = site.start_api("api-1")
        originals |= {image.image_id: data for image, data in zip(uploaded, later, strict=True)}
        assert completed["filtered_images"] == list(range(2 * IMAGES))
        assert completed["failed_images"] == []
        assert_done_once(job_records(cluster, workload_id))
        assert wrong_results(admin, workload_id, originals, BUSY_FILTER) == []
