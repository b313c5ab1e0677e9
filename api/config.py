"""The API's configuration, filled from CLI flags and DPIP_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import datastore
from foundation import defaults
from foundation.settings import setting
from imaging import CostLimits


@dataclass(frozen=True)
class ApiConfig:
    """Everything the API process needs to know."""

    data_dir: Path
    images_dir: Path  # the image store; with an S3 store, its requests' scratch files
    jwt_secret: str
    # host:port of the controller, for job hints; or several, comma-separated (standbys)
    controller_address: str | None = None
    database_url: str = setting("DATABASE_URL")  # PostgreSQL's; empty: SQLite in data_dir
    image_store: str = setting("IMAGE_STORE")  # s3://bucket/prefix; empty: images_dir
    transfer_url_ttl_s: int = setting("TRANSFER_URL_TTL_S")  # workers' presigned URLs (S3)
    database_sessions: int = defaults.API_THREADS  # PostgreSQL sessions per process, at most
    metrics_token: str | None = None  # Prometheus's bearer token; None: only admins scrape
    max_upload_bytes: int = setting("MAX_UPLOAD_BYTES")  # a single upload; each image of a batch
    max_image_pixels: int = setting("MAX_IMAGE_PIXELS")
    max_batch_images: int = setting("MAX_BATCH_IMAGES")
    max_batch_bytes: int = setting("MAX_BATCH_BYTES")  # a batch's body; its images' bytes in all
    max_filename_chars: int = setting("MAX_FILENAME_CHARS")  # an image's kept filename
    max_images_page: int = setting("MAX_IMAGES_PAGE")  # GET /workloads/{id}/images?limit=
    image_cost_limits: CostLimits = field(default_factory=CostLimits)  # scans, frames, blocks
    token_ttl_seconds: int = setting("TOKEN_TTL_SECONDS", "TOKEN_TTL")
    dead_after_intervals: int = defaults.DEAD_AFTER_INTERVALS
    login_max_failures: int = setting("LOGIN_MAX_FAILURES")  # per (username, address) and window
    login_max_failures_per_address: int = defaults.LOGIN_MAX_FAILURES_PER_ADDRESS
    login_window_s: float = setting("LOGIN_WINDOW_S")
    # Per account (username), from any addresses: failures before a delay, then the delay
    # doubles per failure up to the cap; failures are forgotten `memory_s` after the last.
    login_account_max_failures: int = setting("LOGIN_ACCOUNT_MAX_FAILURES")
    login_account_first_delay_s: float = setting("LOGIN_ACCOUNT_FIRST_DELAY_S")
    login_account_max_delay_s: float = setting("LOGIN_ACCOUNT_MAX_DELAY_S")
    login_account_memory_s: float = setting("LOGIN_ACCOUNT_MEMORY_S")
    max_waiting_requests: int = defaults.API_THREADS // 2  # per process: GET ...?wait= requests
    workload_wait_recheck_s: float = setting("WORKLOAD_WAIT_RECHECK_S")
    dashboard_poll_s: float = setting("DASHBOARD_POLL_S")
    dashboard_history_s: float = setting("DASHBOARD_HISTORY_S")
    dashboard_history_samples: int = setting("DASHBOARD_HISTORY_SAMPLES")
    dashboard_history_series: int = setting("DASHBOARD_HISTORY_SERIES")
    dashboard_thumbnails: int = setting("DASHBOARD_THUMBNAILS")
    thumbnail_side_px: int = setting("THUMBNAIL_SIDE_PX")
    dashboard_cookie_secure: int = setting("DASHBOARD_COOKIE_SECURE")  # 1: HTTPS only
    # Proxies in front of the API whose X-Forwarded-For and -Proto it believes (0: none).
    # Set it only where clients cannot reach the API but through them: anyone else could
    # claim any address.
    proxy_hops: int = setting("PROXY_HOPS")

    def __post_init__(self) -> None:
        for name in (
            "max_batch_images",
            "max_batch_bytes",
            "max_filename_chars",
            "max_images_page",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.proxy_hops < 0:
            raise ValueError(f"proxy_hops must be at least 0, not {self.proxy_hops}")

    @cached_property  # read on every request
    def database(self) -> Path | str:
        return datastore.location(self.data_dir, self.database_url)
