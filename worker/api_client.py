"""The worker's HTTP client of the API: fetch an original, deliver its filtered result.

Plain urllib3 rather than requests: a job makes two calls, and requests' extra layers cost
more CPU than the filter on small images (about 1.5 ms per call here).
"""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import urlencode

import urllib3

from foundation import defaults
from foundation.errors import DPIPError
from protocol import MEMBERSHIP_ENDED

log = logging.getLogger(__name__)


class JobTaken(DPIPError):
    """Raised when the API says the job is no longer this worker's (reassigned or gone, or
    the worker's token died with its membership)."""


class ApiUnavailable(DPIPError):
    """Raised when the API cannot be reached or answers with an unexpected error."""


def _error(response: urllib3.BaseHTTPResponse) -> tuple[str, str]:
    """The API's error code and message, as far as the answer has them."""
    try:
        body = json.loads(response.data)
        return body.get("error", ""), body.get("message", response.reason)
    except (ValueError, AttributeError):
        return "", response.reason or f"HTTP {response.status}"


def _message(response: urllib3.BaseHTTPResponse) -> str:
    return _error(response)[1]


class ApiClient:
    """Keeps one kept-alive connection pool per worker process."""

    def __init__(
        self, api_url: str, token: str, timeout_s: float = defaults.WORKER_HTTP_TIMEOUT_S
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self._pool = urllib3.PoolManager(
            maxsize=1, retries=False, timeout=urllib3.Timeout(total=timeout_s)
        )

    def _request(self, method: str, path: str, **kwargs) -> urllib3.BaseHTTPResponse:
        """Send one request; while the API is down or failing (a restart), retry with backoff.

        Without the retries a short API outage would use up every job's attempts at once.
        """
        give_up_at = time.monotonic() + defaults.WORKER_API_RETRY_WINDOW_S
        delay = 0.05
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        while True:
            try:
                response = self._pool.request(
                    method, self.api_url + path, headers=headers, **kwargs
                )
            except urllib3.exceptions.HTTPError as e:
                problem = f"{method} {path}: {e}"
            else:
                if response.status < 500:
                    break
                problem = f"{method} {path}: HTTP {response.status} {_message(response)}"
            if time.monotonic() + delay > give_up_at:
                raise ApiUnavailable(problem)
            log.warning("%s; retrying in %.2fs", problem, delay)
            time.sleep(delay)  # recovery only: the API is down or failing
            delay = min(delay * 2, 2.0)
        # A token that died with the worker's membership: that took the worker's jobs back
        # too. The worker re-joins once the controller's heartbeats leave it out.
        if response.status in (404, 409) or _error(response)[0] == MEMBERSHIP_ENDED:
            raise JobTaken(_message(response))
        if response.status >= 300:
            raise ApiUnavailable(f"{method} {path}: HTTP {response.status} {_message(response)}")
        return response

    def download_original(self, workload_id: int, number: int) -> bytes:
        query = urlencode({"workload_id": workload_id, "type": "original"})
        return self._request("GET", f"/images/{number}?{query}").data

    def upload_filtered(self, workload_id: int, number: int, data: bytes) -> None:
        query = urlencode({"workload_id": workload_id, "image_id": number, "type": "filtered"})
        self._request(
            "POST",
            f"/images?{query}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )
