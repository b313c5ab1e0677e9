"""Users share the workers fairly, however many workloads one of them makes."""

from __future__ import annotations

from tests.conftest import ADMIN_PASSWORD, Client, Cluster, image_bytes, running_cluster
from tests.outcomes import database

BUSY_WORKLOADS = 10
IMAGES_PER_WORKLOAD = 3
# One slot, users alternating: the late user's jobs finish 2nd, 4th and 6th (a job the
# worker refuses while it is still joining, or a late hint, shifts them a little); with
# workloads taking turns instead, they finished 11th, 22nd and 33rd.
LATE_USER_DEADLINE = 12


def make_user(cluster: Cluster, admin: Client, name: str) -> Client:
    password = f"pw-{name}-secret"
    response = admin.post("/users", json={"username": name, "password": password})
    assert response.status_code == 201, response.text
    return cluster.login(name, password)


def queue_workload(user: Client, name: str, seed: int) -> int:
    workload_id = user.create_workload(filter="grayscale", workload_name=name)["workload_id"]
    for image in range(IMAGES_PER_WORKLOAD):
        data = image_bytes("PNG", seed=seed * IMAGES_PER_WORKLOAD + image)
        assert user.upload(workload_id, data).status_code == 201
    return workload_id


def workloads_in_finishing_order(cluster: Cluster) -> list[int]:
    """The workload of each job, in the order the jobs finished."""
    conn = database(cluster)
    try:
        rows = conn.execute(
            "SELECT workload_id FROM jobs WHERE status = 'done' ORDER BY finished_at, id"
        ).fetchall()
    finally:
        conn.close()
    return [row[0] for row in rows]


def test_a_user_with_one_workload_is_not_starved_by_one_with_many(tmp_path, system_env) -> None:
    # No worker until everything is queued, so the busy user's backlog is all waiting
    # when the late user's workload arrives.
    with running_cluster(tmp_path, workers=0, env=system_env) as cluster:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        busy = make_user(cluster, admin, "busy")
        late = make_user(cluster, admin, "late")
        busy_ids = [queue_workload(busy, f"busy-{n}", seed=n) for n in range(BUSY_WORKLOADS)]
        late_id = queue_workload(late, "late", seed=BUSY_WORKLOADS)

        cluster.start_worker("worker-1", concurrency=1)
        for workload_id in busy_ids:
            busy.wait_completed(workload_id)
        late.wait_completed(late_id)

        order = workloads_in_finishing_order(cluster)
        assert len(order) == (BUSY_WORKLOADS + 1) * IMAGES_PER_WORKLOAD
        late_places = [
            place for place, workload in enumerate(order, start=1) if workload == late_id
        ]
        assert len(late_places) == IMAGES_PER_WORKLOAD
        assert max(late_places) <= LATE_USER_DEADLINE, f"late user's jobs finished {late_places}"
