"""The join challenges the controller handed out and that no JoinRequest answered yet.

They are state a peer makes the controller keep before it proved anything, so they are
bounded in count (the oldest goes first) and in age, and each is answered at most once
(a replayed JoinRequest finds nothing).
"""

from __future__ import annotations

from collections import OrderedDict

from protocol import JoinChallenge, JoinProofs, new_nonce


class JoinChallenges:
    """Outstanding challenges, by controller nonce: the worker nonce each one answered."""

    def __init__(self, join_token: str, max_outstanding: int, ttl_s: float) -> None:
        self._join_token = join_token
        self._max_outstanding = max_outstanding
        self._ttl_s = ttl_s
        self._outstanding: OrderedDict[str, tuple[str, float]] = OrderedDict()  # nonce, at

    def issue(self, worker_nonce: str, now: float) -> JoinChallenge:
        """Answer a JoinHello: a fresh nonce, and the controller's proof over both."""
        self._expire(now)
        while len(self._outstanding) >= self._max_outstanding:
            self._outstanding.popitem(last=False)
        controller_nonce = new_nonce()
        self._outstanding[controller_nonce] = (worker_nonce, now)
        proofs = JoinProofs(self._join_token, worker_nonce, controller_nonce)
        return JoinChallenge(controller_nonce, proofs.controller())

    def take(self, controller_nonce: str, now: float) -> JoinProofs | None:
        """The proofs of the challenge a JoinRequest answers; None if unknown, used or old."""
        self._expire(now)
        issued = self._outstanding.pop(controller_nonce, None)
        if issued is None:
            return None
        return JoinProofs(self._join_token, issued[0], controller_nonce)

    def _expire(self, now: float) -> None:
        while self._outstanding:
            _, issued_at = next(iter(self._outstanding.values()))
            if now - issued_at < self._ttl_s:
                return
            self._outstanding.popitem(last=False)
