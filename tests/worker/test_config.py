"""The worker's controller addresses: one, as ever, or an active controller and its standbys."""

from __future__ import annotations

import pytest

from worker.config import WorkerConfig, parse_controllers


@pytest.mark.parametrize(
    ("text", "addresses"),
    [
        ("127.0.0.1:40899", (("127.0.0.1", 40899),)),
        ("10.0.0.3:40899,10.0.0.4:40899", (("10.0.0.3", 40899), ("10.0.0.4", 40899))),
        (" a.example:1 , b.example:65535 ", (("a.example", 1), ("b.example", 65535))),
        ("[::1]:40899", (("[::1]", 40899),)),
    ],
)
def test_addresses_are_read_in_order(text: str, addresses: tuple) -> None:
    assert parse_controllers(text) == addresses


@pytest.mark.parametrize(
    "text", ["", "host", ":40899", "host:", "host:port", "host:0", "host:65536", "a:1,", "a:1,,b:2"]
)
def test_a_malformed_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_controllers(text)


def test_the_first_address_is_tried_first() -> None:
    config = WorkerConfig("10.0.0.3", 1, "w", "token", other_controllers=(("10.0.0.4", 2),))
    assert config.controllers == (("10.0.0.3", 1), ("10.0.0.4", 2))
