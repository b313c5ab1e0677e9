"""The stress test's own exceptions, shared by the modules that raise them and the command."""

from __future__ import annotations


class SetupFailed(RuntimeError):
    """Raised when the system under test cannot be started, reached or prepared."""
