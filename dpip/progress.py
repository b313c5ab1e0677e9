"""Progress bars on stderr, shown only to a person at a terminal.

When stderr is not a terminal (a pipe, a log file, a CI job) the bars are off entirely: no
escape codes, no carriage returns, nothing written.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(total: int, description: str, initial: int = 0) -> tqdm:
    """A bar of `total` images, `initial` of them done already, with the rate (img/s) of
    the rest; use it as a `with` block."""
    return tqdm(
        total=total,
        initial=initial,
        desc=description,
        unit="img",
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        dynamic_ncols=True,
    )


class FinishedBar:
    """A bar of a workload's finished images, begun at the first count seen (a wait may
    start halfway), whose total may grow as images are added."""

    def __init__(self, description: str) -> None:
        self.description = description
        self._bar: tqdm | None = None

    def __enter__(self) -> FinishedBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def show(self, finished: int, total: int) -> None:
        if self._bar is None:
            self._bar = progress_bar(total, self.description, initial=finished)
        elif not self._bar.disable:
            self._bar.total = total
            self._bar.update(finished - self._bar.n)
