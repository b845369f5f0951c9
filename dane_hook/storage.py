"""Where files live by default, and how dane-hook replaces its own: atomically, under one lock.

Every file dane-hook writes (state, catalog overlay, served view, held candidates) is replaced so
that a reader sees the old or the new content, never a part of it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from dane_hook.errors import Error

DEFAULT_STATE_DIR = Path("/var/lib/dane-hook")
DEFAULT_SERVED_DIR = Path("/etc/dane-hook/served")
DEFAULT_CERTBOT_DIR = Path("/etc/letsencrypt")
"""certbot's --config-dir default (certbot/_internal/constants.py)."""
LOCK_FILE = "state.lock"
"""The state directory's lock: every writer of the state or the overlay holds it."""


class StateError(Error):
    """The state directory cannot be used (exit 4: dane-hook cannot decide without it)."""


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace path with data so that a reader sees the old or the new file, never a part."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
