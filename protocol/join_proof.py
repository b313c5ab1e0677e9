"""The join handshake's proofs: HMACs keyed by the join token over both sides' fresh nonces.

worker → `JoinHello(worker nonce)`; controller → `JoinChallenge(controller nonce, controller
proof)`; worker → `JoinRequest(…, worker proof)`; controller → `JoinAccepted` or
`JoinRefused`, with a proof over the reply itself. Neither side sends the token, so a
process squatting on the controller's port learns nothing it can reuse: nonces, and HMACs
bound to them. Each proof names its role, so one side's proof never passes for the other's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from protocol.messages import JoinAccepted, JoinRefused

NONCE_BYTES = 16
_NONCE = re.compile(rf"[0-9a-f]{{{2 * NONCE_BYTES}}}")


def new_nonce() -> str:
    """A fresh random nonce, as hex."""
    return secrets.token_hex(NONCE_BYTES)


def is_nonce(value: str) -> bool:
    """Whether a peer's nonce has the one shape nonces have (so its length is bounded)."""
    return _NONCE.fullmatch(value) is not None


def proves(expected: str, given: str) -> bool:
    """Compare a proof in constant time; a peer's text may hold anything, lone surrogates too."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class JoinProofs:
    """The proofs of one handshake: the join token and the two nonces it exchanged."""

    join_token: str
    worker_nonce: str
    controller_nonce: str

    def _mac(self, role: str, content: str = "") -> str:
        key = self.join_token.encode("utf-8", "surrogatepass")
        data = json.dumps([role, self.worker_nonce, self.controller_nonce, content]).encode()
        return hmac.new(key, data, hashlib.sha256).hexdigest()

    def controller(self) -> str:
        """The controller's proof, sent in its JoinChallenge."""
        return self._mac("controller")

    def worker(self) -> str:
        """The worker's proof, sent in its JoinRequest."""
        return self._mac("worker")

    def reply(self, reply: JoinAccepted | JoinRefused) -> str:
        """The proof of a reply to the JoinRequest: over all its other fields."""
        unsigned = dataclasses.replace(reply, proof="")
        return self._mac("reply", unsigned.encode().decode())

    def sign(self, reply: JoinAccepted | JoinRefused) -> JoinAccepted | JoinRefused:
        """Return the reply carrying its proof."""
        return dataclasses.replace(reply, proof=self.reply(reply))
