"""Settings read from DPIP_* variables: typed by their field, given values first."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from foundation import defaults
from foundation.settings import from_env, setting


@dataclass(frozen=True)
class Example:
    name: str
    max_upload_bytes: int = setting("MAX_UPLOAD_BYTES")
    window_s: float = setting("LOGIN_WINDOW_S", "WINDOW")
    plain: int = 7  # not a setting: no variable reaches it


def test_unset_variables_leave_the_defaults():
    config = from_env(Example, {}, name="a")
    assert config == Example("a", defaults.MAX_UPLOAD_BYTES, defaults.LOGIN_WINDOW_S, 7)


def test_each_variable_is_read_as_its_field_type():
    environ = {"DPIP_MAX_UPLOAD_BYTES": "1024", "DPIP_WINDOW": "2.5", "DPIP_PLAIN": "9"}
    config = from_env(Example, environ, name="a")
    assert (config.max_upload_bytes, config.window_s, config.plain) == (1024, 2.5, 7)
    assert type(config.max_upload_bytes) is int


def test_a_given_value_wins_over_the_variable():
    config = from_env(Example, {"DPIP_MAX_UPLOAD_BYTES": "1024"}, name="a", max_upload_bytes=5)
    assert config.max_upload_bytes == 5


def test_a_malformed_value_stops_the_start():
    with pytest.raises(ValueError):
        from_env(Example, {"DPIP_MAX_UPLOAD_BYTES": "2.5"}, name="a")
