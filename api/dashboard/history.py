"""A short, bounded history of numbers per series, kept in memory by each API process:
each workload's finished count at each poll, for the overview's images/s.

Every sample is a cumulative reading of the datastore at a known time, so API processes
that each see a share of the polls still compute the same rate, and a restart loses only
the last few seconds of it. (The workers' sparklines need minutes that outlive a restart:
the datastore keeps those, `datastore/worker_history.py`.)
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One reading: when (seconds since the epoch) and the values read then."""

    at: float
    values: tuple[float, ...]


class HistoryRing:
    """The last `max_samples` samples of up to `max_series` series, each within `span_s`.

    A sample no newer than a series' last one is ignored (the same telemetry read twice);
    the series used least recently is dropped when a new one would exceed `max_series`.
    """

    def __init__(self, max_series: int, max_samples: int, span_s: float) -> None:
        self._series: OrderedDict[Hashable, deque[Sample]] = OrderedDict()
        self._max_series = max_series
        self._max_samples = max_samples
        self._span_s = span_s
        self._lock = threading.Lock()

    def record(self, key: Hashable, at: float, *values: float) -> None:
        with self._lock:
            samples = self._series.get(key)
            if samples is None:
                samples = self._series[key] = deque(maxlen=self._max_samples)
                if len(self._series) > self._max_series:
                    self._series.popitem(last=False)
            self._series.move_to_end(key)
            if samples and samples[-1].at >= at:
                return
            samples.append(Sample(at, tuple(values)))
            while samples[0].at < at - self._span_s:
                samples.popleft()

    def samples(self, key: Hashable) -> list[Sample]:
        with self._lock:
            return list(self._series.get(key, ()))

    def rate(self, key: Hashable, window_s: float, index: int = 0) -> float:
        """The per-second change of a cumulative value over the last `window_s` seconds."""
        samples = self.samples(key)
        if len(samples) < 2:
            return 0.0
        last = samples[-1]
        first = next(s for s in samples if s.at >= last.at - window_s)
        if first is last:
            first = samples[-2]
        elapsed = last.at - first.at
        return max(0.0, (last.values[index] - first.values[index]) / elapsed) if elapsed else 0.0


def sparkline_points(values: list[float], width: int, height: int, top: float = 100.0) -> str:
    """An SVG polyline's `points` for `values` (0..`top`), spread over `width` x `height`."""
    if not values:
        return ""
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - min(max(v, 0.0), top) / top * height:.1f}"
        for i, v in enumerate(values)
    )
