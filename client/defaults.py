"""The client's tunables with their units; `Client`'s arguments override them per client.

The client imports nothing of DPIP's other packages (it is what users install to talk to a
remote system), so these are its own, not `foundation.defaults`.
"""

from __future__ import annotations

CONNECT_TIMEOUT_S = 5.0  # to open a connection to the API
READ_TIMEOUT_S = 60.0  # the longest silence of the API within one request (a socket read)
KEPT_CONNECTIONS = 8  # kept alive for the next requests (upload threads and one more each)

RETRY_ATTEMPTS = 4  # tries of one request in all, the first included
RETRY_FIRST_DELAY_S = 0.25  # the wait before the first resend; it doubles with each resend
RETRY_MAX_DELAY_S = 4.0  # the longest wait between two tries
RETRY_TOTAL_S = 30.0  # no resend starts later than this after the first try began
RETRY_JITTER = 0.5  # each wait is cut by up to this share, at random, so clients spread out

UPLOAD_BATCH_IMAGES = 50  # images per POST /workloads/{id}/images
UPLOAD_THREADS = 4  # batch requests in flight at once
UPLOAD_CHUNK_BYTES = 256 * 1024  # a batch body is read from its files in pieces this large

DOWNLOAD_CHUNK_BYTES = 256 * 1024  # a streamed download is written in pieces this large

WAIT_MAX_S = 8.0  # GET /workloads/{id}?wait=: the longest the API waits (its own limit)
WAIT_BUSY_PAUSE_S = 0.5  # pause after an early answer with nothing new (the API was too busy
# to wait), before asking again
