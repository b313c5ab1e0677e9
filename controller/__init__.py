"""The controller: the nng hub workers join and report to, hosting the scheduler."""

from controller.config import ControllerConfig
from controller.hub import Controller

__all__ = ["Controller", "ControllerConfig"]
