"""The datastore's own error, whatever the engine."""

from __future__ import annotations

from foundation.errors import DPIPError


class StoreError(DPIPError):
    """Raised when the datastore cannot be opened or written."""
