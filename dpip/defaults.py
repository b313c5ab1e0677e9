"""Every tunable with its unit, in one place; components read overrides from CLI/env."""

from __future__ import annotations

API_HOST = "127.0.0.1"
API_PORT = 8080
CONTROLLER_HOST = "127.0.0.1"
CONTROLLER_PORT = 40899
LOCAL_WORKERS = 2

DATA_DIR = "dpip-data"  # relative to the current directory
IMAGES_DIR = "images"  # relative to the current directory
DATABASE_FILE = "dpip.sqlite3"
JWT_SECRET_FILE = "jwt_secret"
JOIN_TOKEN_FILE = "join_token"
ADMIN_PASSWORD_FILE = "admin_password"
ADMIN_USERNAME = "admin"

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_IMAGE_PIXELS = 50_000_000  # larger images are refused as decompression bombs
TOKEN_TTL_SECONDS = 3600
LOGIN_MAX_FAILURES = 5  # failed logins per (username, address) within the window, then 429
LOGIN_MAX_FAILURES_PER_ADDRESS = 20  # failed logins per address, any usernames, in the window
LOGIN_WINDOW_S = 60.0  # seconds a failed login counts against its client
LOGIN_MAX_TRACKED_KEYS = 10_000  # bound on the throttle table; the oldest keys go first
WORKER_TOKEN_TTL_SECONDS = 24 * 3600
FILTERED_LISTS_CACHED_NUMBERS = 200_000  # filtered_images numbers kept per API process
API_PROCESSES = 2  # gunicorn worker processes (each with its own GIL)
API_THREADS = 8  # request threads per API process
API_KEEPALIVE_S = 75  # idle kept-alive connections (workers, clients) stay open this long
API_GRACEFUL_TIMEOUT_S = 10  # on SIGTERM, requests in flight get this long to finish
WORKLOAD_WAIT_MAX_S = 8.0  # GET /workloads/{id}?wait=: the longest wait, under the graceful stop
WORKLOAD_WAIT_RECHECK_S = 1.0  # a waiting request re-reads this often, in case a message was lost

TELEMETRY_INTERVAL_MS = 1000
DEAD_AFTER_INTERVALS = 3  # a worker silent this many intervals is dead
RECOVERY_SWEEP_MS = 2000  # how often the controller re-reads queued jobs it may have missed
MAX_JOB_ATTEMPTS = 3
NOTIFY_TIMEOUT_MS = 500  # API → controller hint; the recovery sweep covers a lost one
JOIN_TIMEOUT_MS = 2000  # a join is quick; a silent controller is retried with backoff
MAX_JOIN_BACKOFF_MS = 5000
WORKER_REQUEST_TIMEOUT_MS = 5000  # worker → controller results
RESULT_DELIVERY_TRIES = 5
HEARTBEAT_WAIT_SLICE_MS = 250  # a worker checks for a stop request this often while listening
RPC_TIMEOUT_MS = 2000  # scheduler → worker submit_job; a slower worker counts as unresponsive
WORKER_HTTP_TIMEOUT_S = 60  # worker → API download or upload of one image
WORKER_API_RETRY_WINDOW_S = 30  # how long a worker retries an unreachable or failing API
SUPERVISOR_STOP_GRACE_S = 20  # `dpip up`: how long children may take to stop before SIGKILL
SUPERVISOR_MAX_RESTARTS = 5  # `dpip up`: restarts of one crashed child before giving up

DEFAULT_FILTER = "grayscale"
DEFAULT_BLUR_RADIUS = 2.0
MAX_BLUR_RADIUS = 100.0
MAX_WORKLOAD_NAME_CHARS = 200
MAX_WORKER_NAME_CHARS = 200
MAX_TAGS = 16
MAX_TAG_CHARS = 64
