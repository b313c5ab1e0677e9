"""The worker's HTTP client of the API: fetch an original, deliver its filtered result."""

from __future__ import annotations

import logging
import time

import requests

from dpip import defaults
from dpip.errors import DPIPError

log = logging.getLogger(__name__)


class JobTaken(DPIPError):
    """Raised when the API says the job is no longer this worker's (reassigned or gone)."""


class ApiUnavailable(DPIPError):
    """Raised when the API cannot be reached or answers with an unexpected error."""


class ApiClient:
    """Keeps one HTTP session (connection reuse) per worker process."""

    def __init__(
        self, api_url: str, token: str, timeout_s: float = defaults.WORKER_HTTP_TIMEOUT_S
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self._timeout_s = timeout_s
        self._session = requests.Session()

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Send one request; while the API is down or failing (a restart), retry with backoff.

        Without the retries a short API outage would use up every job's attempts at once.
        """
        give_up_at = time.monotonic() + defaults.WORKER_API_RETRY_WINDOW_S
        delay = 0.05
        while True:
            try:
                response = self._session.request(
                    method,
                    self.api_url + path,
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=self._timeout_s,
                    **kwargs,
                )
            except requests.RequestException as e:
                problem = f"{method} {path}: {e}"
            else:
                if response.status_code < 500:
                    break
                problem = f"{method} {path}: HTTP {response.status_code} {response.text[:200]}"
            if time.monotonic() + delay > give_up_at:
                raise ApiUnavailable(problem)
            log.warning("%s; retrying in %.2fs", problem, delay)
            time.sleep(delay)  # recovery only: the API is down or failing
            delay = min(delay * 2, 2.0)
        if response.status_code in (404, 409):
            raise JobTaken(response.json().get("message", response.reason))
        if response.status_code >= 300:
            raise ApiUnavailable(
                f"{method} {path}: HTTP {response.status_code} {response.text[:200]}"
            )
        return response

    def download_original(self, workload_id: int, number: int) -> bytes:
        return self._request(
            "GET", f"/images/{number}", params={"workload_id": workload_id, "type": "original"}
        ).content

    def upload_filtered(self, workload_id: int, number: int, data: bytes) -> None:
        self._request(
            "POST",
            "/images",
            data={"workload_id": workload_id, "image_id": number, "type": "filtered"},
            files={"data": (f"{number}.filtered", data, "application/octet-stream")},
        )
