"""The click command class of the commands that call the API: what each of them does at
its edge, so the commands themselves hold only their steps.

- Failures of the client, of DPIP and of local files end the command once, as
  `CommandFailed` (`dpip: <message>`, exit status 1); with `--json` the failure is also
  printed as `{"error", "message"}` on stdout, so a script always gets its one document.
- Log lines below WARNING (the client's retries) are not shown unless `DPIP_LOG_LEVEL`
  asks for them: a person's terminal gets the outcome, not the attempts.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from client import ClientError
from dpip.exits import failure_of
from dpip.output import print_json
from foundation.errors import DPIPError


class RemoteCommand(click.Command):
    """A command that calls the API: quiet logs, and its failures as `CommandFailed`."""

    def invoke(self, ctx: click.Context) -> Any:
        if "DPIP_LOG_LEVEL" not in os.environ:
            logging.getLogger().setLevel(logging.WARNING)
        try:
            return super().invoke(ctx)
        except (ClientError, DPIPError, OSError) as e:
            failure = failure_of(e)
            if ctx.params.get("as_json"):
                print_json({"error": failure.error, "message": failure.message})
            raise failure from e
