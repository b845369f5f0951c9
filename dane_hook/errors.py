"""The one error base of dane-hook: every failure says what went wrong and what to do."""

from __future__ import annotations

import os


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


# -- quoting input in messages -----------------------------------------------------------------
#
# Every message that quotes what a user gave (a file's line, an option's value, an environment
# variable, a configuration value) goes through `shown()`: a wrong input is often a pasted key
# or certificate (issue 15: a PEM body without its armour given as a TLSA file), and an error
# line ends up in logs and mail. The rule: quote only short printable text that does not look
# like encoded data, and never more than a short prefix of it.

SHOWN_LIMIT = 48
"""At most this many characters of an input are quoted (a TLSA record's fields and the start
of its data, or a host name)."""

_ENCODED_RUN = 16
"""A run of this many base64 characters with upper case, lower case and digits in it is taken
for encoded data (a 64-character PEM line has all three with near certainty; host names, hex
digests and numbers do not)."""


def _looks_encoded(text: str, alphabet_extra: str = "+/=") -> bool:
    run: list[str] = []
    for char in f"{text}\0":
        if char.isascii() and (char.isalnum() or char in alphabet_extra):
            run.append(char)
            continue
        if len(run) >= _ENCODED_RUN:
            seen = "".join(run)
            if (
                any(c.isupper() for c in seen)
                and any(c.islower() for c in seen)
                and any(c.isdigit() for c in seen)
            ):
                return True
        run = []
    return False


def shown(value: str | bytes, limit: int = SHOWN_LIMIT) -> str:
    """`value` as a message may quote it: in quotes, cut to `limit` characters; or, for
    binary, non-printable or encoded-looking input, a description that quotes none of it."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return "(binary data, not shown)"
    text = value.strip()
    # str.isprintable() is False for control characters and for the surrogates that stand for
    # undecodable bytes (PEP 383), so binary input never reaches the quote.
    if not text.isprintable():
        return "(not printable text, not shown)"
    if _looks_encoded(text):
        return "(looks like base64 data, perhaps a key: not shown)"
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def shown_path(path: str | bytes | os.PathLike[str]) -> str:
    """A file name as every message shows it: bytes that are not UTF-8 as \\xNN (the name
    is what the file system holds, PEP 383), and never a component that looks like encoded
    data (a name built from a pasted key)."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    if _looks_encoded(text, alphabet_extra="+="):
        return "(a file name that looks like base64 data, not shown)"
    return text
