"""Settings that `DPIP_*` environment variables override: dataclass fields that know their
default (in `defaults.py`) and their variable, read in one place for every configuration."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import field, fields
from typing import Any, TypeVar

from foundation import defaults

ENV_KEY = "env"  # where a setting's field keeps its variable's name
T = TypeVar("T")


def setting(default_name: str, env_name: str | None = None) -> Any:
    """A field defaulting to `defaults.<default_name>`, overridden by `DPIP_<env_name>`
    (by default `DPIP_<default_name>`)."""
    return field(
        default=getattr(defaults, default_name),
        metadata={ENV_KEY: f"DPIP_{env_name or default_name}"},
    )


def from_env(cls: type[T], environ: Mapping[str, str], **given: Any) -> T:
    """`cls(**given)`, each setting not given read from its variable where that is set,
    as the field's type says (`int("2.5")` fails: a wrong value stops the start)."""
    hints = typing.get_type_hints(cls)
    read = {
        f.name: hints[f.name](environ[f.metadata[ENV_KEY]])
        for f in fields(cls)
        if ENV_KEY in f.metadata and f.name not in given and f.metadata[ENV_KEY] in environ
    }
    return cls(**given, **read)
