"""Exit statuses of every dane-hook command, one enum, documented in the README."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """Match, safe: the chain is authenticated by what is published."""
    UNSAFE = 1
    """No usable record authenticates the chain: serving it would break delivery."""
    USAGE = 2
    """Arguments that do not fit together."""
    BAD_INPUT = 3
    """A file, key or record text that cannot be used."""
    UNKNOWN = 4
    """A lookup failed or was bogus: dane-hook cannot decide, so it does not serve."""
    WAIT = 5
    """Safe later: the records are published but younger than 2 x TTL."""
    PUBLISH_FAILED = 6
    """A DNS update was refused or could not be sent: nothing removed, held chains stay held."""
