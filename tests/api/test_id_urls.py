"""Ids in URLs: a number above 2^62 matches no route, so it answers 404 like a missing id,
whatever the method (once 405 where the URL had a rule for another method)."""

from __future__ import annotations

import random
import re

import pytest
from flask import Flask

from api import ApiConfig, create_app
from api.inputs import ID_CONVERTER, MAX_ID, numbers_up_to

TOO_LARGE_IDS = [str(MAX_ID + 1), "9" * 19, "9" * 30, "0" * 5 + str(MAX_ID + 1)]


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Flask:
    root = tmp_path_factory.mktemp("api")
    return create_app(ApiConfig(root, root / "images", "a-test-secret-" * 4))


@pytest.mark.parametrize("limit", [0, 7, 10, 99, 100, 1009, 2020])
def test_the_pattern_matches_exactly_the_numbers_up_to_its_limit(limit: int) -> None:
    pattern = re.compile(numbers_up_to(limit))
    for number in range(0, 2 * limit + 12):
        for text in (str(number), f"00{number}"):
            assert bool(pattern.fullmatch(text)) == (number <= limit), text


def test_the_id_pattern_around_2_62() -> None:
    pattern = re.compile(numbers_up_to(MAX_ID))
    rng = random.Random(62)
    near = [MAX_ID + rng.randrange(-(10**digits), 10**digits) for digits in range(1, 19)]
    for number in [0, 10**18 - 1, 10**18, MAX_ID - 1, MAX_ID, MAX_ID + 1, 10**19, *near]:
        assert bool(pattern.fullmatch(str(number))) == (number <= MAX_ID), number
    assert not pattern.fullmatch("1_0") and not pattern.fullmatch("\u0661")


def test_ids_above_2_62_answer_404_for_every_method(app: Flask) -> None:
    client = app.test_client()
    id_rules = [rule for rule in app.url_map.iter_rules() if f"<{ID_CONVERTER}:" in rule.rule]
    assert len(id_rules) >= 5
    for rule in id_rules:
        for method in sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"}):
            for value in TOO_LARGE_IDS:
                url = re.sub(r"<[^>]+>", value, rule.rule)
                response = client.open(url, method=method)
                assert response.status_code == 404, (method, url, response.status_code)
                assert response.get_json()["error"] == "not_found"
