"""The root of DPIP's exceptions, so callers can catch everything DPIP raises at once."""

from __future__ import annotations


class DPIPError(Exception):
    """Raised (through a subclass) for any failure DPIP itself detects."""
