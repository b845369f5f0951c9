"""Exit statuses of every dane-hook command, one enum; the README's table is `readme_table()`."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """Match, safe: the chain is authenticated by what is published."""
    UNSAFE = 1
    """No usable record authenticates the chain: serving it would break delivery."""
    USAGE = 2
    """Arguments that do not fit together."""
    BAD_INPUT = 3
    """A file, key, record text, configuration, directory or lock that cannot be used, a lineage
    dane-hook does not know, or a rollback with nothing to roll back to: the administrator's to
    fix (file, permission and lock problems are not "cannot decide")."""
    UNKNOWN = 4
    """A lookup failed or was bogus: dane-hook cannot decide, so it does not serve."""
    WAIT = 5
    """Safe later: the records are published but younger than 2 x TTL."""
    PUBLISH_FAILED = 6
    """A DNS update was refused or could not be sent: nothing removed, held chains stay held."""

    @property
    def meaning(self) -> str:
        """The README's line for this status: its name in words, then what it means."""
        return MEANINGS[self]


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "ok: safe (or promoted), authenticated (`match`), printed",
    ExitCode.UNSAFE: "unsafe: no usable record authenticates the chain; it is held",
    ExitCode.USAGE: "usage error: arguments that do not fit together",
    ExitCode.BAD_INPUT: "bad input: a file, key, record text or configuration that cannot be "
    "used; a state or served directory that cannot be created, locked, read or written; a "
    "lineage dane-hook does not know (`status`, `rollback`); `rollback` without a previous "
    "version",
    ExitCode.UNKNOWN: "unknown: a lookup failed or was bogus; dane-hook cannot decide, so it "
    "does not serve",
    ExitCode.WAIT: "wait: the records are published but younger than 2 x TTL; held until then",
    ExitCode.PUBLISH_FAILED: "publish failed: a DNS update was refused or not sent; nothing "
    "removed, held chains stay held, retried at the next timer run",
}


# Which status wins when one command reports several results (README, "Exit status").
_SEVERITY = [ExitCode.OK, ExitCode.WAIT, ExitCode.UNKNOWN, ExitCode.UNSAFE]


def worst_exit(codes: Sequence[ExitCode]) -> ExitCode:
    """The exit status of several results: unsafe over unknown over wait over ok."""
    return max(codes, key=_SEVERITY.index) if codes else ExitCode.OK


def readme_table() -> str:
    """The README's "Exit status" table (tests/test_cli.py checks that the README has it)."""
    rows = [f"| {int(code)} | {code.meaning} |" for code in ExitCode]
    return "\n".join(["| code | meaning |", "|---|---|", *rows]) + "\n"
