"""Sample this host's load for the controller: CPU, memory and, where there is one, the GPU."""

from __future__ import annotations

import logging
from typing import Any

import psutil

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
