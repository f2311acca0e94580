"""Where the CLI finds Moorage's state."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_data_dir"]


def default_data_dir() -> Path:
    """/var/lib/moorage as root, else $XDG_DATA_HOME/moorage (~/.local/share/moorage)."""
    if os.geteuid() == 0:
        return Path("/var/lib/moorage")
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "moorage"
