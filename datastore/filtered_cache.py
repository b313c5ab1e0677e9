"""Reuse a workload's `filtered_images` list while its count of done jobs stays the same.

A done job never changes again and workload ids are never reused (AUTOINCREMENT), so two
reads with the same number of done jobs list the same images. Polling a finished
10,000-image workload then skips reading and decoding the list (1.6 ms of its 4.6 ms).
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class FilteredImagesCache:
    """Per-process, bounded by the numbers it holds; the least recently used lists go first."""

    def __init__(self, max_numbers: int) -> None:
        self.max_numbers = max_numbers
        self._lists: OrderedDict[int, tuple[int, list[int]]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, workload_id: int, done: int) -> list[int] | None:
        """The cached list of `workload_id` if it was read with `done` done jobs."""
        with self._lock:
            entry = self._lists.get(workload_id)
            if entry is None or entry[0] != done:
                return None
            self._lists.move_to_end(workload_id)
            return entry[1]

    def put(self, workload_id: int, done: int, numbers: list[int]) -> None:
        with self._lock:
            old = self._lists.pop(workload_id, None)
            if old is not None:
                self._held -= len(old[1])
            if len(numbers) > self.max_numbers:
                return
            self._lists[workload_id] = (done, numbers)
            self._held += len(numbers)
            while self._held > self.max_numbers:
                _, (_, evicted) = self._lists.popitem(last=False)
                self._held -= len(evicted)
