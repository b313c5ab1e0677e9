"""The controller's configuration, filled from CLI flags and DPIP_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import datastore
from foundation import defaults
from foundation.settings import from_env, setting


@dataclass(frozen=True)
class PeerLimits:
    """What a peer may cost the controller before it proved anything (a flood's bounds)."""

    max_message_bytes: int = setting("NNG_MAX_MESSAGE_BYTES")
    refusals_per_connection: int = setting("REFUSALS_PER_CONNECTION")
    refusal_window_s: float = setting("REFUSAL_WINDOW_S")
    refusal_log_lines: int = setting("REFUSAL_LOG_LINES")
    refusal_log_window_s: float = setting("REFUSAL_LOG_WINDOW_S")
    tracked_senders: int = setting("REFUSAL_TRACKED_SENDERS")
    log_quote_chars: int = setting("LOG_QUOTE_CHARS")
    join_challenges_max: int = setting("JOIN_CHALLENGES_MAX")
    join_challenge_ttl_ms: int = setting("JOIN_CHALLENGE_TTL_MS")


@dataclass(frozen=True)
class LockKeepalive:
    """How the PostgreSQL session of the controller lock probes a silent peer (seconds and
    probes): a controller cut off loses the lock to a standby within idle + interval x count."""

    idle_s: int = setting("CONTROLLER_LOCK_KEEPALIVE_IDLE_S")
    interval_s: int = setting("CONTROLLER_LOCK_KEEPALIVE_INTERVAL_S")
    count: int = setting("CONTROLLER_LOCK_KEEPALIVE_COUNT")

    def __post_init__(self) -> None:
        for name in ("idle_s", "interval_s", "count"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"lock keepalive {name} must be at least 1, not {getattr(self, name)}"
                )


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
    database_url: str = defaults.DATABASE_URL  # PostgreSQL's; empty: SQLite in data_dir
    # From the environment (no CLI flags): bounds nobody needs to change day to day.
    peer_limits: PeerLimits = field(default_factory=lambda: from_env(PeerLimits, os.environ))
    lock_keepalive: LockKeepalive = field(
        default_factory=lambda: from_env(LockKeepalive, os.environ)
    )

    @property
    def database(self) -> Path | str:
        return datastore.location(self.data_dir, self.database_url)
