"""The one error base of dane-hook: every failure says what went wrong and what to do."""

from __future__ import annotations


class Error(Exception):
    """Something dane-hook could not do; the CLI prints `diagnostics()` as one line."""

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def diagnostics(self) -> str:
        text = str(self)
        return f"{text}; {self.hint}" if self.hint else text


class BadInput(Error):
    """A file, a key or a record text that cannot be used (exit 3)."""


class UsageError(Error):
    """Arguments that do not fit together (exit 2)."""


class LookupFailure(Error):
    """DNS could not answer the question at all: no resolver, no zone, no name servers (exit 4)."""
