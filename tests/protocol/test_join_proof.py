"""The join handshake's proofs: each side's proof needs the token, and binds its nonces."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import JoinAccepted, JoinProofs, JoinRefused, is_nonce, new_nonce, proves

TOKEN = "the-join-token"
PROOFS = JoinProofs(TOKEN, "a" * 32, "b" * 32)
ACCEPTED = JoinAccepted(1, "http://api", "jwt", "key", 1, 2, 1000, "instance", token_id="t")


def test_nonces_are_fresh_and_of_one_shape() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(is_nonce(nonce) for nonce in nonces)
    assert not any(is_nonce(bad) for bad in ("", "A" * 32, "a" * 31, "a" * 33, "g" * 32, "\ud800"))


def test_each_proof_needs_the_token_the_nonces_and_the_role() -> None:
    proofs = {PROOFS.controller(), PROOFS.worker(), PROOFS.reply(ACCEPTED)}
    assert len(proofs) == 3  # a controller proof never passes for a worker's, nor back
    for other in (
        JoinProofs(TOKEN + "x", "a" * 32, "b" * 32),
        JoinProofs(TOKEN, "c" * 32, "b" * 32),
        JoinProofs(TOKEN, "a" * 32, "c" * 32),
        JoinProofs(TOKEN, "b" * 32, "a" * 32),
    ):
        assert other.controller() != PROOFS.controller()
        assert other.worker() != PROOFS.worker()
    assert TOKEN not in "".join(proofs)


@pytest.mark.parametrize(
    "change",
    [
        {"api_url": "http://squatter"},
        {"worker_token": "forged"},
        {"rpc_key": "forged"},
        {"telemetry_port": 9},
        {"token_id": "other"},
    ],
)
def test_a_signed_reply_fails_its_check_once_any_field_changes(change: dict) -> None:
    signed = PROOFS.sign(ACCEPTED)
    assert proves(PROOFS.reply(signed), signed.proof)
    forged = dataclasses.replace(signed, **change)
    assert not proves(PROOFS.reply(forged), forged.proof)


def test_a_signed_refusal_checks_like_an_acceptance() -> None:
    signed = PROOFS.sign(JoinRefused("concurrency must be between 1 and 1024"))
    assert proves(PROOFS.reply(signed), signed.proof)
    assert not proves(PROOFS.reply(JoinRefused("other")), signed.proof)


@pytest.mark.parametrize("given", ["", "x", "\ud800", PROOFS.worker()])
def test_a_wrong_proof_is_refused_without_raising(given: str) -> None:
    assert not proves(PROOFS.controller(), given)
