"""Workload request validation: pure functions raising 400 APIErrors, no Flask app needed."""

from __future__ import annotations

import math
import re

import flask
import pytest

from api.errors import APIError
from api.validation import (
    WorkloadSpec,
    generated_workload_name,
    validate_tags,
    validate_workload_name,
    validate_workload_request,
)
from foundation import defaults

GENERATED_NAME = re.compile(r"^workload-\d{8}-\d{6}-[0-9a-f]{6}$")


def rejected(fields: dict) -> APIError:
    with pytest.raises(APIError) as caught:
        validate_workload_request(fields)
    assert caught.value.status == 400
    return caught.value


def test_no_app_context_is_needed() -> None:
    assert not flask.has_app_context()
    assert not flask.has_request_context()
    error = rejected({"workload_name": "a/b"})
    assert error.code == "invalid_workload_name"
    assert validate_workload_request({}).filter_name == "grayscale"


def test_defaults() -> None:
    spec = validate_workload_request({})
    assert isinstance(spec, WorkloadSpec)
    assert spec.filter_name == defaults.DEFAULT_FILTER == "grayscale"
    assert spec.params == {}
    assert spec.tags == []
    assert GENERATED_NAME.match(spec.name), spec.name


def test_generated_names_are_unique_and_valid() -> None:
    names = {generated_workload_name() for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert GENERATED_NAME.match(name)
        assert validate_workload_name(name) == name


def test_blur_gets_the_default_radius() -> None:
    spec = validate_workload_request({"filter": "blur", "workload_name": "soft"})
    assert spec == WorkloadSpec("soft", "blur", {"radius": 2.0}, [])


def test_full_request() -> None:
    spec = validate_workload_request(
        {"workload_name": " holiday ", "filter": "blur", "radius": "4.5", "tags": "gpu, big"}
    )
    assert spec == WorkloadSpec("holiday", "blur", {"radius": 4.5}, ["big", "gpu"])


def test_grayscale_ignores_radius() -> None:
    spec = validate_workload_request({"filter": "grayscale", "radius": "not a number"})
    assert spec.params == {}


@pytest.mark.parametrize(
    "name",
    [
        "../etc",
        "..",
        "a..b",
        "a/b",
        "/abs",
        "a\\b",
        "..\\..\\windows",
        "a\x00b",
        "\x00",
        "line\nbreak",
        "tab\there",
        "bell\x07",
        "del\x7f",
        "zero\u200bwidth",
        "rtl\u202eoverride",
        "x" * 10_000,
        "x" * (defaults.MAX_WORKLOAD_NAME_CHARS + 1),
        "",
        " ",
        "     ",
        "\u3000",
        5,
        1.5,
        True,
        ["a"],
        {"a": 1},
    ],
    ids=repr,
)
def test_bad_workload_names(name: object) -> None:
    error = rejected({"workload_name": name})
    assert error.code == "invalid_workload_name"
    assert "workload_name" in error.message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("holiday photos", "holiday photos"),
        ("  padded  ", "padded"),
        ("café", "café"),
        ("日本語のワークロード", "日本語のワークロード"),
        ("Ωμέγα-1", "Ωμέγα-1"),
        ("party 🎉", "party 🎉"),
        ("a.b", "a.b"),
        (".hidden", ".hidden"),
        ("x" * defaults.MAX_WORKLOAD_NAME_CHARS, "x" * defaults.MAX_WORKLOAD_NAME_CHARS),
    ],
)
def test_good_workload_names(name: str, expected: str) -> None:
    assert validate_workload_request({"workload_name": name}).name == expected


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (None, []),
        ("", []),
        ([], []),
        (["gpu"], ["gpu"]),
        (["ssd", "gpu", "gpu"], ["gpu", "ssd"]),
        ("gpu", ["gpu"]),
        ("gpu,ssd", ["gpu", "ssd"]),
        (" ssd , gpu ,, ", ["gpu", "ssd"]),
        (",,,", []),
        (["v1.2", "big_mem", "x-86"], ["big_mem", "v1.2", "x-86"]),
        (["ünïcode"], ["ünïcode"]),
        (["t" * defaults.MAX_TAG_CHARS], ["t" * defaults.MAX_TAG_CHARS]),
        ([f"t{i}" for i in range(defaults.MAX_TAGS)], sorted(f"t{i}" for i in range(16))),
    ],
    ids=repr,
)
def test_good_tags(tags: object, expected: list[str]) -> None:
    assert validate_tags(tags) == expected
    assert validate_workload_request({"tags": tags}).tags == expected


@pytest.mark.parametrize(
    "tags",
    [
        5,
        True,
        {"gpu": True},
        ("gpu",),
        [f"t{i}" for i in range(defaults.MAX_TAGS + 1)],
        ",".join(f"t{i}" for i in range(defaults.MAX_TAGS + 1)),
        ["t" * (defaults.MAX_TAG_CHARS + 1)],
        "t" * (defaults.MAX_TAG_CHARS + 1),
        [""],
        ["a b"],
        "a b",
        ["gpu/1"],
        ["../x"],
        ["tag!"],
        ["a,b"],
        ["new\nline"],
        [1],
        [None],
        [["nested"]],
    ],
    ids=repr,
)
def test_bad_tags(tags: object) -> None:
    error = rejected({"tags": tags})
    assert error.code == "invalid_tags"
    assert "tag" in error.message


@pytest.mark.parametrize("filter_name", ["sharpen", "", "Blur", "grayscale ", 5, None, ["blur"]])
def test_unknown_filter(filter_name: object) -> None:
    error = rejected({"filter": filter_name})
    assert error.code == "unknown_filter"
    assert "filter" in error.message


@pytest.mark.parametrize(
    "radius",
    [-1, "-0.5", 100.5, "1e9", math.nan, "nan", math.inf, "inf", "abc", [], {}, True],
    ids=repr,
)
def test_invalid_radius(radius: object) -> None:
    error = rejected({"filter": "blur", "radius": radius})
    assert error.code == "invalid_parameter"
    assert "radius" in error.message


def test_huge_integer_radius_is_invalid_parameter() -> None:
    assert rejected({"filter": "blur", "radius": 10**400}).code == "invalid_parameter"


def test_name_is_checked_before_filter() -> None:
    error = rejected({"workload_name": "a/b", "filter": "sharpen", "tags": 5})
    assert error.code == "invalid_workload_name"


def test_filter_is_checked_before_tags() -> None:
    error = rejected({"filter": "blur", "radius": -1, "tags": 5})
    assert error.code == "invalid_parameter"
