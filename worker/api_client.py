"""The worker's HTTP client of the API: fetch a batch's originals, deliver its results.

Plain urllib3 rather than requests: a batch makes two calls, and requests' extra layers cost
more CPU than the filter on small images (about 1.5 ms per call here). Images travel as
length-prefixed frames (`protocol.image_frames`), read from and written to the socket in
one piece each; or, where the API keeps images in an object store, it answers with presigned
URLs instead, and the worker reads each original and uploads each result there itself,
then names the uploaded results to the API.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

import urllib3

from foundation import defaults
from foundation.errors import DPIPError
from protocol import MEMBERSHIP_ENDED
from protocol.image_frames import CONTENT_TYPE, FrameError, frame_head, read_frames

log = logging.getLogger(__name__)

ImageKey = tuple[int, int]  # (workload id, image number)
JSON = "application/json"


class JobTaken(DPIPError):
    """Raised when the API says the jobs are no longer this worker's (its token died with
    its membership, which took its jobs back)."""


class ApiUnavailable(DPIPError):
    """Raised when the API cannot be reached or answers with an unexpected error."""


def max_upload_bytes() -> int:
    """The API's bound on a request body (DPIP_MAX_UPLOAD_BYTES, read as the API reads it)."""
    return int(os.environ.get("DPIP_MAX_UPLOAD_BYTES", defaults.MAX_UPLOAD_BYTES))


def _error(response: urllib3.BaseHTTPResponse) -> tuple[str, str]:
    """The API's error code and message, as far as the answer has them."""
    try:
        body = json.loads(response.data)
        return body.get("error", ""), body.get("message", response.reason)
    except (ValueError, AttributeError):
        return "", response.reason or f"HTTP {response.status}"


def split_uploads(
    results: Sequence[tuple[ImageKey, bytes]], limit: int
) -> Iterator[list[tuple[ImageKey, bytes]]]:
    """The results cut into requests whose bodies stay within `limit` bytes (a result
    bigger than that goes alone, and the API refuses it as it would any upload)."""
    request: list[tuple[ImageKey, bytes]] = []
    size = 0
    for key, data in results:
        # The frame's header is a few dozen bytes; counting 1 KiB for it is generous.
        cost = len(data) + 1024
        if request and size + cost > limit:
            yield request
            request, size = [], 0
        request.append((key, data))
        size += cost
    if request:
        yield request


class ApiClient:
    """Keeps one kept-alive connection pool per worker process."""

    def __init__(
        self, api_url: str, token: str, timeout_s: float = defaults.WORKER_HTTP_TIMEOUT_S
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self._upload_limit = max_upload_bytes()
        self._result_urls: dict[ImageKey, str] = {}  # where each result goes, from an object store
        self._pool = urllib3.PoolManager(
            maxsize=1, retries=False, timeout=urllib3.Timeout(total=timeout_s)
        )

    def _send(self, method: str, url: str, **kwargs) -> urllib3.BaseHTTPResponse:
        """Send one request; while its server is down or failing (a restart), retry with
        backoff, then raise ApiUnavailable.

        Without the retries a short outage would use up every job's attempts at once.
        A body to send again must be re-readable (bytes, or a list of them).
        """
        give_up_at = time.monotonic() + defaults.WORKER_API_RETRY_WINDOW_S
        delay = 0.05
        what = f"{method} {urlsplit(url).path}"
        while True:
            try:
                response = self._pool.request(method, url, **kwargs)
            except urllib3.exceptions.HTTPError as e:
                problem = f"{what}: {e}"
            else:
                if response.status < 500:
                    return response
                problem = f"{what}: HTTP {response.status} {_error(response)[1]}"
            if time.monotonic() + delay > give_up_at:
                raise ApiUnavailable(problem)
            log.warning("%s; retrying in %.2fs", problem, delay)
            time.sleep(delay)  # recovery only: the server is down or failing
            delay = min(delay * 2, 2.0)

    def _request(self, method: str, path: str, **kwargs) -> urllib3.BaseHTTPResponse:
        """Send one request to the API with the worker token, retried as `_send` does."""
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        response = self._send(method, self.api_url + path, headers=headers, **kwargs)
        if response.status >= 300:
            code, message = _error(response)
            # A token that died with the worker's membership: that took the worker's jobs
            # back too. The worker re-joins once the controller's heartbeats leave it out.
            if code == MEMBERSHIP_ENDED:
                raise JobTaken(message)
            raise ApiUnavailable(f"{method} {path}: HTTP {response.status} {message}")
        return response

    def download_originals(self, images: Sequence[ImageKey]) -> dict[ImageKey, bytes]:
        """The originals of these images in one request (or, from an object store, one
        each); one that the API does not send is no longer this worker's to filter."""
        self._result_urls.clear()  # a batch's results go where its own download said
        body = json.dumps({"images": [{"workload_id": w, "image_id": n} for w, n in images]})
        response = self._request(
            "POST",
            "/jobs/originals",
            body=body,
            headers={"Content-Type": "application/json"},
            preload_content=False,
        )
        try:
            if response.headers.get("Content-Type", "").startswith(JSON):
                return self._download_from_store(json.loads(response.read())["images"])
            return {
                (header["workload_id"], header["image_id"]): data
                for header, data in read_frames(response.read, self._upload_limit)
                if header.get("status") == "ok"
            }
        except (FrameError, KeyError, TypeError, ValueError, urllib3.exceptions.HTTPError) as e:
            raise ApiUnavailable(f"POST /jobs/originals: a broken answer ({e})") from e
        finally:
            response.release_conn()

    def _download_from_store(self, transfers: list[dict]) -> dict[ImageKey, bytes]:
        """Read each original from its URL, and keep where its result goes; an original the
        store does not give (missing, or its URL refused) is left out."""
        originals: dict[ImageKey, bytes] = {}
        for transfer in transfers:
            if transfer.get("status") != "ok":
                continue
            key = (transfer["workload_id"], transfer["image_id"])
            response = self._send("GET", transfer["original_url"])
            if response.status != 200:
                log.warning(
                    "original %s not read from the image store: HTTP %d", key, response.status
                )
                continue
            originals[key] = response.data
            self._result_urls[key] = transfer["result_url"]
        return originals

    def upload_results(
        self, results: Sequence[tuple[ImageKey, bytes]]
    ) -> dict[ImageKey, tuple[str, str]]:
        """Deliver results, as few requests as the API's body bound allows; answer, per
        image, the API's status for it (`stored`, `not_assigned`, or why it was refused)
        and its message."""
        direct = [(key, data) for key, data in results if key in self._result_urls]
        answers = self._upload_to_store(direct) if direct else {}
        sent = [(key, data) for key, data in results if key not in answers]
        for request in split_uploads(sent, self._upload_limit):
            body: list[bytes] = []
            for (workload_id, number), data in request:
                header = {"workload_id": workload_id, "image_id": number}
                body += [frame_head(header, len(data)), data]
            headers = {"Content-Type": CONTENT_TYPE, "Content-Length": str(sum(map(len, body)))}
            answers |= self._deliver(body, headers)
        return answers

    def _upload_to_store(
        self, results: Sequence[tuple[ImageKey, bytes]]
    ) -> dict[ImageKey, tuple[str, str]]:
        """PUT each result to its URL, then name the uploaded ones to the API in one request."""
        answers: dict[ImageKey, tuple[str, str]] = {}
        uploaded: list[ImageKey] = []
        for key, data in results:
            response = self._send("PUT", self._result_urls.pop(key), body=data)
            if response.status == 200:
                uploaded.append(key)
            else:
                problem = f"HTTP {response.status} {_error(response)[1]}"
                answers[key] = ("upload_refused", f"the image store refused the result: {problem}")
        if uploaded:
            named = [{"workload_id": w, "image_id": n} for w, n in uploaded]
            body = json.dumps({"results": named}).encode()
            answers |= self._deliver(body, {"Content-Type": "application/json"})
        return answers

    def _deliver(
        self, body: bytes | list[bytes], headers: dict[str, str]
    ) -> dict[ImageKey, tuple[str, str]]:
        """POST /jobs/results; the API's answer per image."""
        response = self._request("POST", "/jobs/results", body=body, headers=headers)
        try:
            return {
                (answer["workload_id"], answer["image_id"]): (
                    answer["status"],
                    answer.get("message", ""),
                )
                for answer in json.loads(response.data)["results"]
            }
        except (ValueError, KeyError, TypeError) as e:
            raise ApiUnavailable(f"POST /jobs/results: a broken answer ({e})") from e
