"""gunicorn's threaded worker, giving a connection to a thread only once its request head is in.

gunicorn's `ThreadWorker` hands a new or kept-alive connection to a thread as soon as it is
readable, and that thread blocks on the socket for the rest of the head and the body: a few
dozen clients that send one byte hold every thread. Here the worker's poller thread gathers
each head (`PacedInput.gather_head`, non-blocking) among its pending connections, which gunicorn
already closes at their deadline; an idle or slow client costs a socket, never a thread.
Threads read bodies and write answers under `ClientLimits` (see `api.client_input`).

gunicorn also closes a connection gracefully on the poller thread: it half-closes, then reads
the client's unread bytes for up to 2 s, blocking the poller (accepts, heads, kept-alive
connections) for each client that does not close its side. Here that linger is one more
state in the poller, bounded by the idle timeout.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections import deque
from concurrent.futures import Future
from functools import partial

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

from api.client_input import ClientLimits, HeadState, PacedInput


class HeadFirstWorker(ThreadWorker):
    """A threaded worker whose threads never wait for a request head."""

    limits = ClientLimits()

    @classmethod
    def with_limits(cls, limits: ClientLimits) -> type[HeadFirstWorker]:
        """This class with `limits` (gunicorn builds each worker from its class)."""
        return type(cls.__name__, (cls,), {"limits": limits})

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.closing_conns: deque[TConn] = deque()  # half-closed, draining the client's bytes

    def enqueue_req(self, conn: TConn) -> None:
        """Give `conn` to a thread if its head is in; otherwise wait for it in the poller.

        gunicorn calls this for a new connection, a kept-alive one that became readable and
        one whose previous request read ahead into the next.
        """
        state = self._input(conn).gather_head()
        if state is not HeadState.INCOMPLETE:
            self._hand_over(conn, state)
            return
        conn.timeout = time.monotonic() + self.limits.head_timeout_s
        self.pending_conns.append(conn)  # closed by murder_pending() past conn.timeout
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def on_pending_socket_readable(self, conn: TConn, client: object) -> None:
        state = conn.parser.unreader.gather_head()
        if state is HeadState.INCOMPLETE:
            return
        self.poller.unregister(client)
        self.pending_conns.remove(conn)
        self._hand_over(conn, state)

    def _hand_over(self, conn: TConn, state: HeadState) -> None:
        if state is HeadState.CLOSED:
            self._close(conn)
        else:
            super().enqueue_req(conn)

    def _input(self, conn: TConn) -> PacedInput:
        """The connection's reader (made on its first request), its socket non-blocking."""
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.parser.unreader = PacedInput(conn.sock, self.limits)
            conn.initialized = True  # TConn.init() would make a blocking parser of its own
        if conn.sock.gettimeout() != 0.0:
            conn.sock.setblocking(False)
        return conn.parser.unreader

    def handle(self, conn: TConn) -> object:
        conn.parser.unreader.start_request()
        return super().handle(conn)

    def handle_request(self, req: http.Request, conn: TConn) -> bool:
        # gunicorn made the socket blocking: bound the body's reads and the answer's writes.
        conn.sock.settimeout(self.limits.idle_timeout_s)
        return super().handle_request(req, conn)

    def finish_request(self, conn: TConn, fs: Future) -> None:
        """Back on the poller thread after a request: a connection to close lingers in the
        poller; gunicorn handles the rest (kept alive, or failed: closed at once)."""
        if fs.cancelled() or fs.exception() is not None or fs.result():
            super().finish_request(conn, fs)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)  # the answer is complete: send FIN
        except OSError:
            self._close(conn)
            return
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.limits.idle_timeout_s
        self.closing_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self._on_closing_socket_readable, conn)
        )

    def _on_closing_socket_readable(self, conn: TConn, client: object) -> None:
        if not conn.parser.unreader.drain():
            self.closing_conns.remove(conn)
            self._close(conn)

    def murder_pending(self) -> None:
        """Close the connections past their deadline: heads not in, closes not answered."""
        super().murder_pending()
        now = time.monotonic()
        while self.closing_conns and self.closing_conns[0].timeout <= now:
            self._close(self.closing_conns.popleft())

    def _close(self, conn: TConn) -> None:
        with contextlib.suppress(KeyError, ValueError):  # not registered (yet)
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def _cap_keepalive(self, deadline: float) -> None:
        """On stop, connections still sending a head or closing get the kept-alive ones'
        short linger."""
        super()._cap_keepalive(deadline)
        for conn in (*self.pending_conns, *self.closing_conns):
            conn.timeout = min(conn.timeout, deadline)
