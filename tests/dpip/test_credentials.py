"""The stored login: where it lives, who may read it, and how DPIP_URL and DPIP_TOKEN
override it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dpip.credentials import (
    Credentials,
    CredentialsError,
    NotLoggedIn,
    credentials_path,
    current_credentials,
    read_stored,
    remove_credentials,
    save_credentials,
)

URL = "http://10.0.0.1:8080"


@pytest.mark.parametrize("config_home", [None, "", "relative/dir"])
def test_without_an_absolute_xdg_config_home_the_file_is_under_dot_config(
    config_home, monkeypatch, tmp_path
):
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {} if config_home is None else {"XDG_CONFIG_HOME": config_home}
    assert credentials_path(env) == tmp_path / ".config" / "dpip" / "credentials.json"


def test_the_file_is_0600_in_a_0700_directory_whatever_the_umask(tmp_path):
    path = credentials_path({"XDG_CONFIG_HOME": str(tmp_path)})
    path.parent.mkdir(mode=0o755)
    old_umask = os.umask(0)
    try:
        save_credentials(path, Credentials(URL, "token-1"))
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert [entry.name for entry in path.parent.iterdir()] == ["credentials.json"]
    save_credentials(path, Credentials(URL, "token-2"))  # replaced whole
    assert read_stored(path) == Credentials(URL, "token-2")
    assert remove_credentials(path) and not remove_credentials(path)


def stored_at(tmp_path: Path, credentials: Credentials) -> dict[str, str]:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    save_credentials(credentials_path(env), credentials)
    return env


def test_the_environment_overrides_the_file(tmp_path):
    env = stored_at(tmp_path, Credentials(URL, "stored"))
    assert current_credentials(env) == Credentials(URL, "stored")
    assert current_credentials({**env, "DPIP_TOKEN": "t"}) == Credentials(URL, "t")
    other = "http://10.0.0.2:8080"
    assert current_credentials({**env, "DPIP_URL": other, "DPIP_TOKEN": "t"}) == Credentials(
        other, "t"
    )
    assert current_credentials({**env, "DPIP_URL": URL + "/"}).token == "stored"


def test_the_stored_token_goes_only_to_the_url_it_came_from(tmp_path):
    env = stored_at(tmp_path, Credentials(URL, "stored"))
    with pytest.raises(NotLoggedIn) as raised:
        current_credentials({**env, "DPIP_URL": "http://10.0.0.2:8080"})
    assert str(raised.value).startswith("not logged in to http://10.0.0.2:8080")


def test_without_a_file_or_variables_nobody_is_logged_in(tmp_path):
    with pytest.raises(NotLoggedIn, match="run `dpip login URL`"):
        current_credentials({"XDG_CONFIG_HOME": str(tmp_path)})


def test_a_damaged_file_says_to_log_in_again(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    credentials_path(env).parent.mkdir()
    credentials_path(env).write_text('{"url": "http://x"')
    with pytest.raises(CredentialsError, match="cannot be read"):
        current_credentials(env)
