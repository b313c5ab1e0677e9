"""Dask distributed on the same images and filters: the peer `bench/run.py --peer dask` runs.

A LocalCluster with one worker process per core and one thread each (DPIP's layout on the
bench: one worker per core, one slot each), its scheduler and the client in this process,
on the same cores as the workers (as DPIP's API and the stress client are). End to end as
for DPIP: the clock runs from the first submit (each image's bytes travel with its task,
as an upload carries them) to the last result gathered into this process; every result is
then checked with the stress test's reference check. Dask is the `peers` extra; this module
imports it only when a peer run starts.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings
from dataclasses import dataclass
from multiprocessing.pool import Pool

from stress.images import Check, filter_image_bytes, verdicts

INSTALL_HINT = "pip install -e '.[peers]' (or pip install 'dask[distributed]')"


@dataclass(frozen=True)
class PeerRun:
    """What a peer did with a case's images: how fast, and how many results were wrong."""

    images: int
    seconds: float
    wrong: int  # results missing, failed, or not the reference filter's

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def verified(self) -> bool:
        return self.wrong == 0


def dask_missing() -> str | None:
    """Why the Dask peer cannot run here, or None when it can."""
    if importlib.util.find_spec("distributed") is None:
        return f"--peer dask needs Dask distributed, which is not installed: {INSTALL_HINT}"
    return None


def wrong_results(
    pool: Pool,
    originals: list[bytes],
    results: list[bytes | None],
    filter_name: str,
    radius: float,
    image_format: str,
) -> int:
    """Results that are missing (None, or a list too short) or not the reference filter's
    result of their original."""
    checks = [
        Check(original, result, filter_name, radius, image_format)
        for original, result in zip(originals, results, strict=False)
        if result is not None
    ]
    return len(originals) - sum(verdicts(pool, checks))


def dask_results(
    images: list[bytes], filter_name: str, radius: float, cores: int
) -> tuple[list[bytes | None], float]:
    """Filter every image on a fresh LocalCluster: each result (None for a task that
    failed) and the seconds from the first submit to the last result gathered."""
    from distributed import Client, LocalCluster, wait

    with (
        LocalCluster(
            n_workers=cores,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,  # its workers' heartbeat errors as it stops
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(cores)
        client.run(importlib.import_module, "stress.images")  # warm, as DPIP's workers are
        started = time.perf_counter()
        with warnings.catch_warnings():  # the images travel with their tasks, on purpose
            warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
            futures = client.map(
                filter_image_bytes, images, filter_name=filter_name, radius=radius, pure=False
            )
        wait(futures)
        done = iter(client.gather([f for f in futures if f.status == "finished"]))
        results = [next(done) if f.status == "finished" else None for f in futures]
        return results, time.perf_counter() - started


def run_dask(
    pool: Pool, images: list[bytes], filter_name: str, radius: float, image_format: str, cores: int
) -> PeerRun:
    """Time Dask on `images`, then check every result in `pool`."""
    results, seconds = dask_results(images, filter_name, radius, cores)
    wrong = wrong_results(pool, images, results, filter_name, radius, image_format)
    return PeerRun(len(images), seconds, wrong)
