"""The controller's configuration, filled from CLI flags and DPIP_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpip import defaults


@dataclass(frozen=True)
class ControllerConfig:
    """Everything the controller process needs to know."""

    data_dir: Path
    api_url: str
    join_token: str
    jwt_secret: str
    host: str = defaults.CONTROLLER_HOST
    port: int = defaults.CONTROLLER_PORT
    telemetry_port: int = 0  # 0: any free port, announced to workers when they join
    broadcast_port: int = 0
    telemetry_interval_ms: int = defaults.TELEMETRY_INTERVAL_MS
    dead_after_intervals: int = defaults.DEAD_AFTER_INTERVALS
    recovery_sweep_ms: int = defaults.RECOVERY_SWEEP_MS
    max_attempts: int = defaults.MAX_JOB_ATTEMPTS
    worker_token_ttl_seconds: int = defaults.WORKER_TOKEN_TTL_SECONDS

    @property
    def database_path(self) -> Path:
        return self.data_dir / defaults.DATABASE_FILE
