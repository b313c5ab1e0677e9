"""The stored login of the `dpip` command line: the API's URL and a token, in one file.

The file is `$XDG_CONFIG_HOME/dpip/credentials.json` (`~/.config/dpip/...` when the
variable is unset or not an absolute path), mode 0600 in a 0700 directory, written beside
its name and renamed into place, so a reader never sees half of it. `DPIP_URL` and
`DPIP_TOKEN` override what it holds; its token is sent only to the URL it was issued by.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import DPIPError

CREDENTIALS_FILE = "credentials.json"
URL_VARIABLE = "DPIP_URL"
TOKEN_VARIABLE = "DPIP_TOKEN"


class CredentialsError(DPIPError):
    """Raised when the stored login cannot be read or written."""


class NotLoggedIn(CredentialsError):
    """Raised when there is no token for the API to call: run `dpip login`."""


@dataclass(frozen=True)
class Credentials:
    """Where the API is, and the token to send it (None: not logged in there)."""

    url: str
    token: str | None


def credentials_path(env: Mapping[str, str]) -> Path:
    """The credentials file, by the XDG base directory rules."""
    config_home = env.get("XDG_CONFIG_HOME", "")
    base = Path(config_home) if os.path.isabs(config_home) else Path.home() / ".config"
    return base / "dpip" / CREDENTIALS_FILE


def same_url(first: str, second: str) -> bool:
    return first.rstrip("/") == second.rstrip("/")


def read_stored(path: Path) -> Credentials | None:
    """The file's credentials; None when there is no file."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(str(body["url"]), str(body["token"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CredentialsError(f"{path} cannot be read ({e}): run `dpip login URL`") from e


def current_credentials(env: Mapping[str, str]) -> Credentials:
    """The URL and token to use: `DPIP_URL` and `DPIP_TOKEN`, else the file's. Raises
    NotLoggedIn when there is no URL, or no token for it."""
    stored = read_stored(credentials_path(env))
    url = env.get(URL_VARIABLE) or (stored.url if stored else None)
    if not url:
        raise NotLoggedIn("not logged in: run `dpip login URL`")
    token = env.get(TOKEN_VARIABLE) or None
    if token is None and stored is not None and same_url(stored.url, url):
        token = stored.token
    if token is None:
        raise NotLoggedIn(f"not logged in to {url}: run `dpip login {url}`")
    return Credentials(url, token)


def save_credentials(path: Path, credentials: Credentials) -> None:
    """Write the file, mode 0600, in its directory made (or made again) 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    text = json.dumps({"url": credentials.url, "token": credentials.token})
    part = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(part, path)
    except OSError as e:
        raise CredentialsError(f"{path} cannot be written: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)


def remove_credentials(path: Path) -> bool:
    """Delete the file; answer whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise CredentialsError(f"{path} cannot be removed: {e.strerror or e}") from e
    return True
