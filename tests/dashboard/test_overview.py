"""The overview's sparklines come from the datastore's history of each worker's telemetry:
an API process that has just started draws the same minutes as the one before it."""

from __future__ import annotations

import re

import requests

from tests.conftest import ADMIN_PASSWORD, Cluster, wait_until
from tests.dashboard.conftest import browser_session

ROW = re.compile(r'<tr class="worker" data-worker="([^"]+)">(.*?)</tr>', re.S)
CPU_LINE = re.compile(r'<polyline class="spark-cpu" points="([^"]*)"')
HISTORY_POINTS = 3  # the controller keeps a sample every 2 s: about 6 s of telemetry


def cpu_lines(session: requests.Session, cluster: Cluster) -> dict[str, list[str]]:
    """Each worker's CPU sparkline on the overview, as its list of points."""
    page = session.get(cluster.url + "/ui/overview", timeout=10)
    assert page.status_code == 200, page.text
    return {name: CPU_LINE.search(row).group(1).split() for name, row in ROW.findall(page.text)}


def test_an_api_restart_keeps_the_workers_sparklines(cluster: Cluster) -> None:
    session = browser_session(cluster, "admin", ADMIN_PASSWORD)
    wait_until(
        lambda: (
            (lines := cpu_lines(session, cluster))
            and len(lines) == 2
            and all(len(points) >= HISTORY_POINTS for points in lines.values())
        ),
        30,
        f"{HISTORY_POINTS} points of history for both workers",
    )
    cluster.stop("api")
    cluster.start_api()
    after = cpu_lines(browser_session(cluster, "admin", ADMIN_PASSWORD), cluster)
    assert sorted(after) == ["worker-1", "worker-2"]
    assert all(len(points) >= HISTORY_POINTS for points in after.values()), after
    for points in after.values():  # within the box: x from 0 to its width, y from 0 to 24
        for point in points:
            x, y = map(float, point.split(","))
            assert 0 <= x <= 120 and 0 <= y <= 24
