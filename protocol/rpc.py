"""The rpyc settings of both ends of the scheduler → worker call, and the channel they speak over.

No attribute access, no pickling, no remote exception classes: only the exposed methods answer.
An error goes back as its type and message only: no traceback (file paths) or rpyc version.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import zlib
from typing import NoReturn

from rpyc.core.channel import Channel
from rpyc.core.stream import Stream

from foundation.errors import DPIPError

log = logging.getLogger(__name__)

SAFE_RPYC_CONFIG = {
    "allow_public_attrs": False,
    "allow_all_attrs": False,
    "allow_pickle": False,
    "allow_setattr": False,
    "allow_delattr": False,
    "import_custom_exceptions": False,
    "instantiate_custom_exceptions": False,
    "include_local_traceback": False,
    "include_local_version": False,
}


CONNECT_PROOF_BYTES = 32


def connect_proof(rpc_key: str) -> bytes:
    """What the scheduler sends first on a new connection to prove it holds the worker's
    rpc key, so the worker authenticates a connection before rpyc reads a frame of it."""
    return hmac.new(rpc_key.encode(), b"dpip rpc connect", hashlib.sha256).digest()


class FrameRefused(DPIPError, EOFError):
    """Raised when an rpyc frame is, or inflates to, more than the bound; an EOFError, so
    rpyc ends the connection as it does when the peer hangs up."""


class BoundedChannel(Channel):
    """rpyc's Channel with a bound on each frame, checked before anything is allocated.

    rpyc's own reads as many bytes as a frame's 4-byte header claims and inflates a frame
    flagged as compressed without a limit, before the service sees a byte of it (so before
    any key is checked): a 521 KB frame took a worker to 1 GB.
    """

    __slots__ = ("max_frame_bytes",)

    def __init__(self, stream: Stream, max_frame_bytes: int) -> None:
        super().__init__(stream)
        self.max_frame_bytes = max_frame_bytes

    def recv(self) -> bytes:
        """Read the next frame; raise FrameRefused (and close) if it is over the bound."""
        header = self.stream.read(self.FRAME_HEADER.size)
        length, compressed = self.FRAME_HEADER.unpack(header)
        if length > self.max_frame_bytes:
            self._refuse(f"a frame of {length} bytes")
        data = self.stream.read(length + len(self.FLUSHER))[: -len(self.FLUSHER)]
        return self._inflate(data) if compressed else data

    def _inflate(self, data: bytes) -> bytes:
        inflater = zlib.decompressobj()
        try:
            # One byte over the bound is enough to know it is over: no more is inflated.
            inflated = inflater.decompress(data, self.max_frame_bytes + 1)
        except zlib.error as e:
            self._refuse(f"a corrupt compressed frame ({e})")
        if len(inflated) > self.max_frame_bytes:
            self._refuse(f"a compressed frame of {len(data)} bytes that inflates past it")
        if not inflater.eof:
            self._refuse("a truncated compressed frame")
        return inflated

    def _refuse(self, what: str) -> NoReturn:
        log.warning(
            "refused %s (the bound is %d bytes); closing the rpyc connection",
            what,
            self.max_frame_bytes,
        )
        self.close()
        raise FrameRefused(f"refused {what}: the bound is {self.max_frame_bytes} bytes")
