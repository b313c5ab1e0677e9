"""The datastore's own errors, whatever the engine."""

from __future__ import annotations

from foundation.errors import DPIPError


class StoreError(DPIPError):
    """Raised when the datastore cannot be opened or written."""


class StoreUnavailable(StoreError):
    """Raised when the datastore cannot answer now (its server unreachable or restarting, a
    session lost): the same request may succeed a moment later."""
