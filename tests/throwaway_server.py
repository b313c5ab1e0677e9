"""What the tests' own servers (PostgreSQL, nginx, SeaweedFS) share: run from `with` to
its end."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class ThrowawayServer(ABC):
    """A server that a start failing part-way stops again before the error reaches the test."""

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    @abstractmethod
    def _start(self) -> None:
        """Start the server; return once it serves."""

    @abstractmethod
    def _stop(self) -> None:
        """Stop whatever part of the server runs and remove its files; also after a failed
        start."""
