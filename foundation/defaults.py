"""Every tunable with its unit, in one place; components read overrides from CLI/env."""

from __future__ import annotations

API_HOST = "127.0.0.1"
API_PORT = 8080
CONTROLLER_HOST = "127.0.0.1"
CONTROLLER_PORT = 40899
LOCAL_WORKERS = 2

DATA_DIR = "dpip-data"  # relative to the current directory
IMAGES_DIR = "images"  # relative to the current directory
IMAGE_STORE = ""  # DPIP_IMAGE_STORE: s3://bucket/prefix; empty: the local directory IMAGES_DIR
DATABASE_FILE = "dpip.sqlite3"
DATABASE_URL = ""  # DPIP_DATABASE_URL: a postgresql:// URL; empty: DATABASE_FILE in the data dir
JWT_SECRET_FILE = "jwt_secret"
JOIN_TOKEN_FILE = "join_token"
ADMIN_PASSWORD_FILE = "admin_password"
METRICS_TOKEN_FILE = "metrics_token"  # the bearer token Prometheus scrapes GET /metrics with
HTTP_METRICS_DIR = "http-metrics"  # the API processes' request counts (prometheus_client files)
ADMIN_USERNAME = "admin"

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # a single upload's request; each image of a batch
MAX_IMAGE_PIXELS = 50_000_000  # larger images are refused as decompression bombs
MAX_JPEG_SCANS = 100  # scans per JPEG (its decoder passes over the image once per scan)
MAX_IMAGE_FRAMES = 10_000  # frames of an animated GIF, WebP or PNG; pages of a TIFF
MAX_IMAGE_BLOCKS = 50_000  # PNG chunks, JPEG header segments, GIF blocks, WebP chunks, or
# entries and strips of one TIFF page: Pillow parses each in Python (a few µs apiece)
MAX_BATCH_IMAGES = 1000  # images per batch upload (POST /workloads/{id}/images), 413 past it
MAX_BATCH_BYTES = 1024 * 1024 * 1024  # a batch's request body, and its images' bytes together
BATCH_ENTRIES_PER_IMAGE = 2  # zip or tar entries (directories included) per allowed image
# A batch zip's central directory, or a batch tar's extended headers (pax, GNU long names)
# together, per allowed entry: what their readers load whole before any image is read.
ARCHIVE_METADATA_BYTES_PER_ENTRY = 1024
MAX_FILENAME_CHARS = 255  # an image's original filename is kept to its last this many chars
IMAGES_PAGE_DEFAULT = 100  # GET /workloads/{id}/images: images per page unless `limit` says
MAX_IMAGES_PAGE = 1000  # ... and the largest `limit`
ARCHIVE_CHUNK_BYTES = 256 * 1024  # GET /workloads/{id}/archive: the zip is sent in such pieces
TOKEN_TTL_SECONDS = 3600
LOGIN_MAX_FAILURES = 5  # failed logins per (username, address) within the window, then 429
LOGIN_MAX_FAILURES_PER_ADDRESS = 20  # failed logins per address, any usernames, in the window
LOGIN_WINDOW_S = 60.0  # seconds a failed login counts against its client
LOGIN_MAX_TRACKED_KEYS = 10_000  # bound on the throttle table; the oldest keys go first
LOGIN_ACCOUNT_MAX_FAILURES = 10  # failed logins per username, any addresses, before delays
LOGIN_ACCOUNT_FIRST_DELAY_S = 1.0  # then each attempt waits this long, doubling per failure
LOGIN_ACCOUNT_MAX_DELAY_S = 60.0  # the longest wait an account's failures impose
LOGIN_ACCOUNT_MEMORY_S = 900.0  # an account's failures are forgotten this long after its last
WORKER_TOKEN_TTL_SECONDS = 24 * 3600
# Per API process: tokens whose signature and claims were checked, kept until they expire.
VERIFIED_TOKENS_CACHED = 1024
FILTERED_LISTS_CACHED_NUMBERS = 200_000  # filtered_images numbers kept per API process
API_PROCESSES = 2  # gunicorn worker processes (each with its own GIL)
API_THREADS = 8  # request threads per API process
API_KEEPALIVE_S = 75  # idle kept-alive connections (workers, clients) stay open this long
API_GRACEFUL_TIMEOUT_S = 10  # on SIGTERM, requests in flight get this long to finish
API_HEAD_TIMEOUT_S = 10.0  # a request head must be in this long after it is awaited (no thread)
API_IDLE_TIMEOUT_S = 10.0  # the longest wait on a client: one read of a body or write of an answer
API_BODY_MIN_BYTES_PER_S = 64 * 1024  # a body slower on average (after one idle timeout) is cut
API_MAX_HEAD_BYTES = 80 * 1024  # request line and headers; a longer head is answered 431
API_MAX_CONNECTIONS = 500  # per API process: open client connections; more wait to be accepted
WORKLOAD_WAIT_MAX_S = 8.0  # GET /workloads/{id}?wait=: the longest wait, under the graceful stop
WORKLOAD_WAIT_RECHECK_S = 1.0  # a waiting request re-reads this often, in case a message was lost

TELEMETRY_INTERVAL_MS = 1000
DEAD_AFTER_INTERVALS = 3  # a worker silent this many intervals is dead
RECOVERY_SWEEP_MS = 2000  # how often the controller re-reads queued jobs it may have missed
MAX_JOB_ATTEMPTS = 3
NOTIFY_TIMEOUT_MS = 500  # API → controller hint; the recovery sweep covers a lost one
JOIN_TIMEOUT_MS = 2000  # a join is quick; a silent controller is retried with backoff
MAX_JOIN_BACKOFF_MS = 5000
JOIN_CHALLENGES_MAX = 1024  # challenges the controller keeps unanswered; the oldest go first
JOIN_CHALLENGE_TTL_MS = 10_000  # an unanswered challenge is forgotten this long after it was sent
NNG_MAX_MESSAGE_BYTES = 64 * 1024  # any nng message, either way (a join or telemetry: ~1 KB)
REFUSALS_PER_CONNECTION = 20  # refused messages (and join hellos) a connection may send at once
REFUSAL_WINDOW_S = 10.0  # ... and again per this window; past that its connection is closed
REFUSAL_LOG_LINES = 5  # refusals logged per sender address at once, then per window below
REFUSAL_LOG_WINDOW_S = 60.0  # the rest are counted and the count logged once per window
REFUSAL_TRACKED_SENDERS = 4096  # connections and addresses remembered; the stalest go first
LOG_QUOTE_CHARS = 80  # characters of a peer's text (a name, a decode error) a log line quotes
# On PostgreSQL the active controller holds an advisory lock on a session of its own, and a
# standby controller waits for it. Both ends of that session probe a silent peer after IDLE,
# every INTERVAL, COUNT times: a controller host cut off loses the lock (to the standby), and
# learns it did, within IDLE + INTERVAL x COUNT seconds (11 s). A killed one loses it at once.
CONTROLLER_LOCK_KEEPALIVE_IDLE_S = 5
CONTROLLER_LOCK_KEEPALIVE_INTERVAL_S = 2
CONTROLLER_LOCK_KEEPALIVE_COUNT = 3
CONTROLLER_LOCK_WAIT_SLICE_S = 1.0  # a standby checks for a stop request this often as it waits
WORKER_REQUEST_TIMEOUT_MS = 5000  # worker → controller results
RESULT_DELIVERY_TRIES = 5
TELEMETRY_CHILDREN_REFRESH_S = 10.0  # a worker looks for its pool processes again this often
HEARTBEAT_WAIT_SLICE_MS = 250  # a worker checks for a stop request this often while listening
RPC_TIMEOUT_MS = 2000  # scheduler → worker submit_job; a slower worker counts as unresponsive
WORKER_HTTP_TIMEOUT_S = 60  # worker → API download or upload of one image
WORKER_API_RETRY_WINDOW_S = 30  # how long a worker retries an unreachable or failing API
# (or, with an S3 image store, an unreachable store)
TRANSFER_URL_TTL_S = 3600  # a presigned URL of a job's original or result (S3 image store)
S3_CONNECT_TIMEOUT_S = 5  # the API's connection to the S3 image store
S3_READ_TIMEOUT_S = 60  # the API waiting on the S3 image store's answer
S3_TRIES = 3  # the API's tries of one S3 call (boto3's standard retries, with back-off)
JOB_TIME_LIMIT_S = 300.0  # a job running longer on a worker is stopped and reported failed
# Jobs a worker may take beyond each slot, waiting ready for it: a free slot runs up to half
# of its share (1 + this) together, one download and one upload for them all. The scheduler
# sends fewer where jobs are long: what waits for a slot should take about PREFETCH_WINDOW_MS
# by the worker's recent jobs (at least one job), and PREFETCH_UNMEASURED per slot before
# any of its jobs ended.
WORKER_PREFETCH = 32
MAX_WORKER_PREFETCH = 64  # the most a JoinRequest may ask for (jobs per slot)
PREFETCH_WINDOW_MS = 200
PREFETCH_UNMEASURED = 3
JOB_TIME_SMOOTHING = 0.3  # the weight of a newly ended job in a worker's average job time
POOL_PROCESS_START_RETRY_S = 1.0  # a pool process the system would not start is retried after
RPC_MAX_FRAME_BYTES = 64 * 1024  # an rpyc frame, before or after inflating (a job: ~200 bytes)
RPC_CONNECT_TIMEOUT_S = 2.0  # a connection to a worker's rpyc port must prove the key this fast
RPC_MAX_CONNECTIONS = 16  # connections a worker's rpyc port holds at once; more are closed
# `dpip up`: how long workers may take to finish running jobs on a stop: a job's time limit,
# and time to deliver its result.
SUPERVISOR_DRAIN_S = JOB_TIME_LIMIT_S + 30
SUPERVISOR_STOP_GRACE_S = 20  # `dpip up`: how long the API and controller get to stop, each
SUPERVISOR_MAX_RESTARTS = 5  # `dpip up`: restarts of one crashed child in a row before giving up
SUPERVISOR_RESTART_DELAY_S = 0.5  # `dpip up`: wait before the first restart; doubles each time
SUPERVISOR_MAX_RESTART_DELAY_S = 30.0  # `dpip up`: the longest wait between restarts
SUPERVISOR_STABLE_AFTER_S = 60.0  # `dpip up`: a child up this long starts a new restart count
SUPERVISOR_WATCH_S = 0.5  # `dpip up`: how often crashed children are looked for (recovery only)

DEFAULT_FILTER = "grayscale"
DEFAULT_BLUR_RADIUS = 2.0
MAX_BLUR_RADIUS = 100.0
MAX_WORKLOAD_NAME_CHARS = 200
MAX_WORKER_NAME_CHARS = 200
MAX_TAGS = 16
MAX_TAG_CHARS = 64

# The dashboard (api/dashboard): how often its live parts ask for news, how much worker
# history each API process keeps in memory, and its thumbnails.
DASHBOARD_POLL_S = 1.0  # the overview's and a workload page's poll (at most 1 s: "live")
DASHBOARD_HISTORY_S = 300.0  # seconds of worker telemetry a sparkline shows
DASHBOARD_HISTORY_SAMPLES = 600  # samples kept per workload for its images/s; the oldest go first
DASHBOARD_HISTORY_SERIES = 1000  # workloads with an images/s history, the least recent dropped
WORKER_HISTORY_STEP_S = 2.0  # the datastore keeps one telemetry sample per worker per step
WORKER_HISTORY_KEPT_S = 600.0  # ... for this long (the sparklines show DASHBOARD_HISTORY_S)
DASHBOARD_RATE_WINDOW_S = 10.0  # a workload's images/s: finished images over this many seconds
DASHBOARD_THUMBNAILS = 24  # thumbnails of the newest results on a workload page
THUMBNAIL_SIDE_PX = 160  # a thumbnail's longer side
THUMBNAIL_JPEG_QUALITY = 80
DASHBOARD_COOKIE_SECURE = 0  # 1: the session cookie only travels over HTTPS (set behind TLS)
PROXY_HOPS = 0  # proxies in front of the API whose X-Forwarded-For it believes (nginx: 1)
