"""Sample load for the controller: the host's CPU, memory and GPU, and the worker's own use."""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from typing import Any

import psutil

from foundation import defaults

log = logging.getLogger(__name__)


class GpuProbe:
    """Reads the first NVIDIA GPU through NVML when the optional nvidia-ml-py is installed."""

    def __init__(self) -> None:
        self._handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception as e:  # no module, no driver or no device: report no GPU
            log.debug("no GPU telemetry: %s", e)

    def sample(self) -> dict[str, Any] | None:
        if self._handle is None:
            return None
        try:
            utilization = self._nvml.nvmlDeviceGetUtilizationRates(self._handle)
            memory = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
        except Exception as e:
            log.debug("GPU sample failed: %s", e)
            return None
        return {
            "utilization_percent": float(utilization.gpu),
            "memory_percent": 100.0 * memory.used / memory.total,
        }


class ProcessSampler:
    """CPU % (of one core) since the previous sample and resident memory now, of this
    process and its children (the pool), so two workers on one host can be told apart.

    Finding the children reads every process of the host (psutil has no cheaper way), 4 to 9
    ms with 100 to 240 processes, more than the rest of a sample: the list is kept and found
    again every CHILDREN_REFRESH_S, or at the next sample after a child is gone.
    """

    def __init__(self, children_refresh_s: float = defaults.TELEMETRY_CHILDREN_REFRESH_S) -> None:
        self._process = psutil.Process()
        self._children_refresh_s = children_refresh_s
        self._children: list[psutil.Process] = []
        self._children_due = 0.0  # time.monotonic() at which to look for them again
        self._cpu_s: dict[int, float] = {}
        self._sampled_at = time.monotonic()
        self.sample()  # the first call only sets the baseline

    def _processes(self, now: float) -> tuple[psutil.Process, ...]:
        if now >= self._children_due:
            with suppress(psutil.Error):
                self._children = self._process.children(recursive=True)
            self._children_due = now + self._children_refresh_s
        return (self._process, *self._children)

    def sample(self) -> tuple[float, int]:
        now = time.monotonic()
        cpu_s: dict[int, float] = {}
        rss_bytes = 0
        for process in self._processes(now):
            try:
                times = process.cpu_times()
                rss_bytes += process.memory_info().rss
            except psutil.Error:  # a pool process that exited: look for its successor
                self._children_due = now
                continue
            cpu_s[process.pid] = times.user + times.system
        used_s = sum(max(0.0, s - self._cpu_s.get(pid, 0.0)) for pid, s in cpu_s.items())
        percent = 100 * used_s / max(now - self._sampled_at, 1e-3)
        self._cpu_s, self._sampled_at = cpu_s, now
        return round(percent, 1), rss_bytes


class LoadSampler:
    """CPU % since the previous sample, memory % now, and the GPU's figures."""

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)  # the first call only sets the baseline
        self._gpu = GpuProbe()

    def sample(self) -> tuple[float, float, dict[str, Any] | None]:
        return (
            psutil.cpu_percent(interval=None),
            psutil.virtual_memory().percent,
            self._gpu.sample(),
        )
