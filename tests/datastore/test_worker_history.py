"""Each worker's telemetry history: one sample per step, pruned past its span, read by time."""

from __future__ import annotations

from datastore import transaction, worker_history, workers
from datastore.worker_history import WorkerSample

STEP_S, KEPT_S = 2.0, 10.0


def join(conn, name: str) -> int:
    with transaction(conn) as db:
        return workers.register_worker(db, name, [], 1, "127.0.0.1", 9, 1000, "").worker_id


def report(conn, worker_id: int, at: float, cpu: float, gpu: float | None = None) -> None:
    sample = WorkerSample(at, cpu, cpu / 2, gpu)
    worker_history.record_sample(conn, worker_id, sample, STEP_S, KEPT_S)


def test_only_the_first_report_of_each_step_is_kept(conn) -> None:
    worker = join(conn, "w")
    for at, cpu in [(100.0, 10), (100.5, 20), (101.9, 30), (102.0, 40), (103.0, 50)]:
        report(conn, worker, at, cpu)
    history = worker_history.samples_since(conn, 0)
    assert [(s.at, s.cpu_percent) for s in history[worker]] == [(100.0, 10), (102.0, 40)]
    assert history[worker][0] == WorkerSample(100.0, 10, 5, None)


def test_a_new_step_prunes_what_fell_out_of_the_span(conn) -> None:
    worker = join(conn, "w")
    for second in range(0, 30, 2):
        report(conn, worker, 1000.0 + second, second)
    kept = [s.at for s in worker_history.samples_since(conn, 0)[worker]]
    assert kept == [1020.0, 1022.0, 1024.0, 1026.0, 1028.0]  # KEPT_S / STEP_S samples
    assert conn.execute("SELECT COUNT(*) FROM worker_samples").fetchone()[0] == 5


def test_samples_since_reads_every_worker_by_time_oldest_first(conn) -> None:
    first, second = join(conn, "a"), join(conn, "b")
    for at in (200.0, 202.0, 204.0):
        report(conn, second, at, at - 200, gpu=at - 190)
        report(conn, first, at, 1)
    history = worker_history.samples_since(conn, 202.0)
    assert sorted(history) == [first, second]
    assert [s.at for s in history[second]] == [202.0, 204.0]
    assert [s.gpu_percent for s in history[second]] == [12.0, 14.0]
    assert worker_history.samples_since(conn, 205.0) == {}


def test_a_worker_keeps_its_history_when_it_joins_again(conn) -> None:
    worker = join(conn, "w")
    report(conn, worker, 300.0, 70)
    assert join(conn, "w") == worker
    assert [s.cpu_percent for s in worker_history.samples_since(conn, 0)[worker]] == [70]
