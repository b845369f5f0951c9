"""Where files live by default, and how dane-hook replaces its own: atomically, under one lock.

Every file dane-hook writes (state, catalog overlay, served view, held candidates) is replaced so
that a reader sees the old or the new content, never a part of it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from dane_hook.errors import BadInput, shown

DEFAULT_STATE_DIR = Path("/var/lib/dane-hook")
DEFAULT_SERVED_DIR = Path("/etc/dane-hook/served")
DEFAULT_CERTBOT_DIR = Path("/etc/letsencrypt")
"""certbot's --config-dir default (certbot/_internal/constants.py)."""
LOCK_FILE = "state.lock"
"""The state directory's lock: every writer of the state or the overlay holds it."""


class StateError(BadInput):
    """The state directory cannot be created, locked, read or written (exit 3).

    A file, permission or lock problem is the administrator's to fix, like any bad input; exit
    4 stays for "a lookup failed: cannot decide", which monitoring reads differently.
    """


class LineageNameError(BadInput):
    """A lineage name that cannot become a path component (exit 3)."""


def check_lineage_name(name: str, source: str = "lineage name") -> str:
    """The name, when it can be joined into a path as one component; else LineageNameError.

    certbot refuses a certificate name with a path separator (certbot/_internal/client.py
    `_is_valid_lineagename`: `os.path.sep not in name`, and the --cert-name help). A name joined
    under live/, archive/, renewal/, the served views and the state directory must also not
    climb out of them ('..') or hide there (a leading '.', which also covers '.' and '..').
    """
    if not name or "/" in name or "\x00" in name or ".." in name or name.startswith("."):
        raise LineageNameError(
            f"{source} {shown(name)}: not a certificate name",
            "a lineage name has no '/', no '..' and does not start with '.'",
        )
    return name


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
