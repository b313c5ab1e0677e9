"""Outstanding join challenges: answered once, forgotten when old, bounded in count."""

from __future__ import annotations

from controller.join_challenges import JoinChallenges
from protocol import JoinProofs, is_nonce, proves

TOKEN = "join-token"
WORKER_NONCE = "a" * 32


def test_a_challenge_carries_the_controllers_proof_and_is_answered_once() -> None:
    challenges = JoinChallenges(TOKEN, max_outstanding=4, ttl_s=10.0)
    challenge = challenges.issue(WORKER_NONCE, now=0.0)
    assert is_nonce(challenge.controller_nonce)
    expected = JoinProofs(TOKEN, WORKER_NONCE, challenge.controller_nonce).controller()
    assert proves(expected, challenge.controller_proof)
    proofs = challenges.take(challenge.controller_nonce, now=1.0)
    assert proofs == JoinProofs(TOKEN, WORKER_NONCE, challenge.controller_nonce)
    assert challenges.take(challenge.controller_nonce, now=1.0) is None  # no replay


def test_nonces_are_fresh() -> None:
    challenges = JoinChallenges(TOKEN, max_outstanding=100, ttl_s=10.0)
    nonces = {challenges.issue(WORKER_NONCE, 0.0).controller_nonce for _ in range(50)}
    assert len(nonces) == 50


def test_an_old_challenge_is_forgotten() -> None:
    challenges = JoinChallenges(TOKEN, max_outstanding=4, ttl_s=10.0)
    challenge = challenges.issue(WORKER_NONCE, now=0.0)
    assert challenges.take(challenge.controller_nonce, now=10.0) is None


def test_past_the_bound_the_oldest_challenge_goes_first() -> None:
    challenges = JoinChallenges(TOKEN, max_outstanding=2, ttl_s=10.0)
    first, second, third = (challenges.issue(WORKER_NONCE, now=0.0) for _ in range(3))
    assert challenges.take(first.controller_nonce, now=0.0) is None
    assert challenges.take(second.controller_nonce, now=0.0) is not None
    assert challenges.take(third.controller_nonce, now=0.0) is not None


def test_an_unknown_nonce_finds_nothing() -> None:
    challenges = JoinChallenges(TOKEN, max_outstanding=2, ttl_s=10.0)
    assert challenges.take("\ud800" * 1000, now=0.0) is None
