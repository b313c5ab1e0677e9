"""A client connection's input: its request head gathered without a thread, its body paced.

gunicorn's threaded worker gives a connection to a thread as soon as one byte arrived, and the
thread then blocks on the socket until the whole head and body are in: a client that sends
`G` and nothing more holds that thread for ever. Here the worker's poller gathers the head
with non-blocking reads (under a deadline and a size cap) and hands the connection over only
once the head is complete; the thread then reads the body under an idle timeout per read and
a minimum average rate, so a trickling body is cut too.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from enum import Enum

from gunicorn.http.errors import LimitRequestHeaders
from gunicorn.http.unreader import SocketUnreader

from foundation.errors import DPIPError
from foundation.settings import setting

HEAD_READ_BYTES = 65536  # one non-blocking read in the poller
# A head ends at its first empty line; a bare LF is refused by gunicorn's parser, so it ends
# the gathering as well (the thread answers 400 at once instead of waiting for a CRLF).
HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


class ClientTooSlow(DPIPError, TimeoutError):
    """Raised when a client sends its request body slower than the limits allow.

    A TimeoutError, so that Werkzeug answers 400 to the app's read and gunicorn closes the
    connection instead of draining it.
    """


@dataclass(frozen=True)
class ClientLimits:
    """How long and how slowly a client may send a request, and how many may be connected."""

    head_timeout_s: float = setting("API_HEAD_TIMEOUT_S")
    idle_timeout_s: float = setting("API_IDLE_TIMEOUT_S")
    body_min_bytes_per_s: int = setting("API_BODY_MIN_BYTES_PER_S")
    max_head_bytes: int = setting("API_MAX_HEAD_BYTES")
    max_connections: int = setting("API_MAX_CONNECTIONS")  # per API process

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")


class HeadState(Enum):
    """Where the gathering of a request head stands after a non-blocking read."""

    INCOMPLETE = "incomplete"  # keep waiting in the poller
    COMPLETE = "complete"  # a thread can parse it without reading the socket
    OVERSIZED = "oversized"  # a thread answers 431 without reading the socket
    CLOSED = "closed"  # the client closed or reset the connection


class PacedInput(SocketUnreader):
    """gunicorn's socket reader, with the head gathered by the poller and the body paced."""

    def __init__(self, sock: socket.socket, limits: ClientLimits) -> None:
        super().__init__(sock)
        self._limits = limits
        self._head = bytearray()
        self._scanned = 0  # how much of `_head` was searched for its end
        self._oversized = False
        self._started = 0.0
        self._received = 0

    def gather_head(self) -> HeadState:
        """Read what the client has sent so far, without blocking (the poller's thread).

        Bytes read ahead by the previous request on this connection start the new head.
        """
        if not self._head:
            self._head += self.take_buffered()
            self._scanned = 0
        end = self._head_end() if self._head else 0
        if not end:
            try:
                data = self.sock.recv(HEAD_READ_BYTES)
            except (BlockingIOError, InterruptedError):
                return HeadState.INCOMPLETE
            except OSError:
                return HeadState.CLOSED
            if not data:
                return HeadState.CLOSED
            self._head += data
            end = self._head_end()
        if (end or len(self._head)) > self._limits.max_head_bytes:
            self._oversized = True  # the thread's first read answers 431
            self._head.clear()
            return HeadState.OVERSIZED
        if not end:
            return HeadState.INCOMPLETE
        self.unread(self._head)  # copied
        self._head.clear()
        return HeadState.COMPLETE

    def _head_end(self) -> int:
        """Where the head ends in `_head` (0: not in yet); each byte is searched once, and an
        end may straddle two reads."""
        start = max(0, self._scanned - 3)
        self._scanned = len(self._head)
        for end in HEAD_ENDS:
            at = self._head.find(end, start)
            if at >= 0:
                return at + len(end)
        return 0

    def drain(self) -> bool:
        """Drop what the client still sends after its last answer (the poller's thread);
        False once it closed its side.

        Closing with unread bytes would reset the connection, and a reset can discard the
        answer before the client read it (a refused upload's 401 or 413, say).
        """
        try:
            return bool(self.sock.recv(HEAD_READ_BYTES))
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def start_request(self) -> None:
        """Start the body's clock: a thread has taken the request."""
        self._started = time.monotonic()
        self._received = 0

    def chunk(self, size_hint: int | None = None) -> bytes:
        """Read the next piece of the request (a thread), within the idle timeout and the pace.

        The body may fall behind the minimum rate by one idle timeout at most.
        """
        if self._oversized:
            raise LimitRequestHeaders(f"request head over {self._limits.max_head_bytes} bytes")
        idle_s = self._limits.idle_timeout_s
        due = self._started + idle_s + self._received / self._limits.body_min_bytes_per_s
        wait_s = min(idle_s, due - time.monotonic())
        if wait_s <= 0:
            raise ClientTooSlow("the request body came in too slowly")
        if self.sock.gettimeout() != wait_s:
            self.sock.settimeout(wait_s)
        try:
            data = super().chunk(size_hint)
        except TimeoutError as e:
            raise ClientTooSlow("the request body came in too slowly") from e
        finally:
            if wait_s != idle_s:
                self.sock.settimeout(idle_s)  # the answer's writes get the idle timeout
        self._received += len(data)
        return data
