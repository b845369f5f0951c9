"""The `exec` publisher: a command of the administrator's, run once per change.

The command gets the change in its environment and exit status 0 means "done":

    DANE_HOOK_ACTION  add | remove
    DANE_HOOK_OWNER   _25._tcp.mail.example.com.
    DANE_HOOK_TTL     TTL for a new RRset (an existing RRset keeps its own, RFC 2181 §5.2)
    DANE_HOOK_RDATA   3 1 1 <hex>
    DANE_HOOK_ZONE    the zone, when the `zone` setting gives it

It runs without a shell, with no standard input, in its own process group (killed as a whole
at the timeout). Its standard output is dropped; the last line of its standard error, shortened
and with long base64-like words cut out, goes into the error message.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence

import dns.name

from dane_hook.dns.publish.base import (
    Change,
    Outcome,
    Publisher,
    PublishError,
    RRsetView,
    Settings,
)

DEFAULT_TIMEOUT = 30.0
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{20,}")


class CommandPublisher(Publisher):
    """Runs `command` (an argv list) once per change, in order; stops at the first failure."""

    kind = "exec"

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        zone: dns.name.Name | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        environment: Mapping[str, str] | None = None,
        ttl: int | None = None,
    ) -> None:
        """`environment`: the base environment of the command (default: this process's)."""
        super().__init__(name, ttl)
        if not command:
            raise ValueError("an exec publisher needs a command")
        self.command = tuple(command)
        self.zone = zone
        self.timeout = timeout
        self.environment = dict(environment) if environment is not None else None

    @classmethod
    def from_table(cls, settings: Settings) -> CommandPublisher:
        value = settings.table.get("command")
        settings.used.add("command")
        if isinstance(value, str) and value.strip():
            command = shlex.split(value)
        elif (
            isinstance(value, list)
            and value
            and all(isinstance(part, str) and part for part in value)
        ):
            command = list(value)
        else:
            raise settings.fail("command", "a command line or a list of strings (argv)")
        zone = settings.zone()
        timeout = settings.seconds("timeout", DEFAULT_TIMEOUT)
        ttl = settings.integer("ttl", 0, 2**31 - 1)
        settings.finish()
        return cls(settings.name, command, zone=zone, timeout=timeout, ttl=ttl)

    def read(self, owner: dns.name.Name | str) -> RRsetView | None:
        """A command cannot be asked what is published: look at the authoritative servers."""
        return None

    def apply(self, changes: Sequence[Change]) -> Outcome:
        for change in changes:
            self._run(change)
        return Outcome(tuple(changes))

    def _run(self, change: Change) -> None:
        env = dict(self.environment if self.environment is not None else os.environ)
        env.update(
            DANE_HOOK_ACTION=change.action,
            DANE_HOOK_OWNER=change.owner.to_text(),
            DANE_HOOK_TTL=str(change.ttl),
            DANE_HOOK_RDATA=change.rdata,
        )
        env.pop("DANE_HOOK_ZONE", None)
        if self.zone is not None:
            env["DANE_HOOK_ZONE"] = self.zone.to_text()
        program = self.command[0]
        try:
            process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group: the timeout ends all of it
            )
        except OSError as error:
            raise self._failure(change, f"cannot run {program}: {error.strerror}", False) from None
        try:
            _, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate(timeout=5)
            raise self._failure(
                change, f"{program} did not finish within {self.timeout:g} s (killed)", True
            ) from None
        status = process.returncode
        if status == 0:
            return
        said = _last_line(stderr)
        if status < 0:
            reason = f"{program} was killed by signal {-status}"
        else:
            reason = f"{program} exited with status {status}"
        raise self._failure(change, reason + (f": {said}" if said else ""), False)

    def _failure(self, change: Change, reason: str, transient: bool) -> PublishError:
        zone = self.zone.to_text() if self.zone is not None else ""
        where = f" in zone {zone}" if zone else ""
        return PublishError(
            f"publisher {self.name} (exec){where}: {change.action} {change.owner} TLSA "
            f"{change.rdata}: {reason}",
            transient=transient,
            zone=zone,
            server=self.command[0],
        )


def _last_line(stderr: bytes) -> str:
    """The command's last words, shortened; long base64-like runs (secrets?) are cut out."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    said = next((line for line in reversed(lines) if line), "")
    said = _BASE64_RUN.sub(_cut_secret_like, said)
    return said[:160] + ("…" if len(said) > 160 else "")


def _cut_secret_like(match: re.Match[str]) -> str:
    """A long run with digits and both cases looks like a key (a path or a word does not)."""
    word = match.group(0)
    mixed = any(c.isdigit() for c in word) and word.lower() != word and word.upper() != word
    return "[…]" if mixed else word
