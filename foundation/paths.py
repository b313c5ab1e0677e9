"""Where the data dir and image store are when nobody says: DPIP_* variables, then defaults."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from foundation import defaults


def default_data_dir() -> Path:
    return Path(os.environ.get("DPIP_DATA_DIR", defaults.DATA_DIR)).resolve()


def default_images_dir() -> Path:
    return Path(os.environ.get("DPIP_IMAGES_DIR", defaults.IMAGES_DIR)).resolve()


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("DPIP_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
