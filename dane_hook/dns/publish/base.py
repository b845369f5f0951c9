"""What every publisher offers: single-record changes, the authoritative RRset, one error type."""

from __future__ import annotations

import math
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from dane_hook.errors import BadInput, Error

Action = Literal["add", "remove"]
ACTIONS: tuple[Action, ...] = ("add", "remove")
MAX_TTL = 2**31 - 1  # RFC 2181 §8: a TTL is an unsigned 31-bit number


def owner_name(owner: dns.name.Name | str) -> dns.name.Name:
    """`owner` as an absolute name; a relative one is refused (it would land in the wrong zone)."""
    if isinstance(owner, dns.name.Name):
        name = owner
    else:
        if not owner.endswith("."):
            raise BadInput(f"owner {owner!r}: expected an absolute name ending in a dot")
        try:
            name = dns.name.from_text(owner)
        except dns.exception.DNSException as error:
            raise BadInput(f"owner {owner!r}: not a DNS name ({error})") from None
    if not name.is_absolute():
        raise BadInput(f"owner {name}: expected an absolute name")
    return name


def tlsa_text(rdata: str) -> str:
    """The canonical text of one TLSA record ("3 1 1 hex", hex in lower case)."""
    try:
        parsed = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, rdata)
    except (dns.exception.DNSException, ValueError) as error:
        raise BadInput(
            f"TLSA record {rdata!r}: expected 'usage selector mtype hex' ({error})"
        ) from None
    return parsed.to_text()


@dataclass(frozen=True)
class Change:
    """One record dane-hook adds to or removes from an RRset; nothing else is ever touched."""

    action: Action
    owner: dns.name.Name
    """Absolute owner name, e.g. `_25._tcp.mail.example.com.`."""
    ttl: int
    """TTL for a new RRset; an existing RRset keeps its own (RFC 2181 §5.2). Unused by removals."""
    rdata: str
    """TLSA record data in presentation form, "3 1 1 hex" (normalised: lower-case hex)."""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise BadInput(f"change action {self.action!r}: expected 'add' or 'remove'")
        object.__setattr__(self, "owner", owner_name(self.owner))
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int):
            raise BadInput(f"change TTL {self.ttl!r}: expected an integer")
        if not 0 <= self.ttl <= MAX_TTL:
            raise BadInput(f"change TTL {self.ttl}: expected 0 to {MAX_TTL}")
        object.__setattr__(self, "rdata", tlsa_text(self.rdata))

    @classmethod
    def add(cls, owner: dns.name.Name | str, ttl: int, rdata: str) -> Change:
        return cls("add", owner_name(owner), ttl, rdata)

    @classmethod
    def remove(cls, owner: dns.name.Name | str, rdata: str) -> Change:
        return cls("remove", owner_name(owner), 0, rdata)

    def __str__(self) -> str:
        sign = "+" if self.action == "add" else "-"
        return f"{sign} {self.owner} TLSA {self.rdata}"


@dataclass(frozen=True)
class RRsetView:
    """The TLSA RRset at one owner as the publishing side serves it right now."""

    owner: dns.name.Name
    ttl: int | None
    """The RRset's TTL; None when there is no TLSA RRset at the owner."""
    records: tuple[str, ...] = ()
    """Canonical record texts, sorted."""


@dataclass(frozen=True)
class Outcome:
    """What `apply` did: the changes that are now in effect, and what the caller should hear."""

    applied: tuple[Change, ...]
    warnings: tuple[str, ...] = ()
    """One line each, e.g. a record of someone else's that vanished and was put back."""


class PublishError(Error):
    """An update was refused or could not be sent; names zone, server and key, never a secret.

    `transient` is True when trying again later may work (timeout, unreachable server, HTTP 5xx)
    and False when someone must change something (REFUSED, NOTAUTH, BADKEY, BADSIG, HTTP 401).
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        zone: str = "",
        server: str = "",
        key_name: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(" ".join(message.split()), hint)
        self.transient = transient
        self.zone = zone
        self.server = server
        self.key_name = key_name


class Publisher(ABC):
    """A way to change records at a DNS provider: add and remove single TLSA records."""

    kind: str = ""
    """The `type` of its `[publisher.NAME]` table: "rfc2136", "powerdns" or "exec"."""

    def __init__(self, name: str, ttl: int | None = None) -> None:
        self.name = name
        self.ttl = ttl
        """The publisher's `ttl` setting: TTL for records of a new RRset (None: the caller's)."""

    @abstractmethod
    def read(self, owner: dns.name.Name | str) -> RRsetView | None:
        """The TLSA RRset at `owner` from the publishing side itself (primary server, API).

        None when this publisher cannot read (exec): ask the authoritative servers instead.
        """

    @abstractmethod
    def apply(self, changes: Sequence[Change]) -> Outcome:
        """Make every change take effect, or raise PublishError.

        Adding a record that is there and removing one that is not are no-ops, so a run that
        was killed after sending can simply be repeated.
        """


def by_owner(changes: Sequence[Change]) -> dict[dns.name.Name, list[Change]]:
    """The changes grouped per owner, in the order given."""
    grouped: dict[dns.name.Name, list[Change]] = {}
    for change in changes:
        grouped.setdefault(change.owner, []).append(change)
    return grouped


# -- secret files -----------------------------------------------------------------------------


def read_private_file(path: Path, what: str) -> str:
    """The text of a file holding a secret, refused when group or others may read it.

    As ssh refuses a private key whose "permissions are too open": a secret the whole machine
    can read is not a secret, and publishing with it would hide that.
    """
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & 0o077:
                raise BadInput(
                    f"{path}: permissions {stat.S_IMODE(mode):04o} are too open for {what}",
                    f"make it readable by its owner only: chmod 600 {path}",
                )
            data = handle.read(1_000_000)
    except OSError as error:
        raise BadInput(f"{path}: cannot read {what}: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: {what} is not UTF-8 text") from None


# -- settings tables ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """One `[publisher.NAME]` table being read: every value checked, errors name the key."""

    name: str
    table: Mapping[str, Any]
    source: Path | None = None
    """The file the table came from; relative paths in it are relative to its directory."""
    used: set[str] = field(default_factory=set, compare=False)

    def _where(self, key: str) -> str:
        prefix = f"{self.source}: " if self.source is not None else ""
        return f"{prefix}publisher.{self.name}.{key}"

    def fail(self, key: str, expected: str) -> BadInput:
        return BadInput(f"{self._where(key)}: expected {expected}")

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.table.get(key)

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string")
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int | None:
        value = self._get(key)
        if value is None:
            return default
        # TOML `true` is a Python bool, and bool is an int: refuse it explicitly.
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"an integer from {low} to {high}")
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, "a number of seconds")
        if not math.isfinite(value) or not 0 < value <= 3600:
            raise self.fail(key, "a number of seconds above 0 and at most 3600")
        return float(value)

    def path(self, key: str, *, required: bool = False) -> Path | None:
        text = self.string(key, required=required)
        if text is None:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path

    def zone(self, key: str = "zone") -> dns.name.Name | None:
        text = self.string(key)
        if text is None:
            return None
        try:
            return dns.name.from_text(text)  # relative text is made absolute: "example.com"
        except dns.exception.DNSException:
            raise self.fail(key, "a DNS zone name") from None

    def finish(self) -> None:
        """Refuse keys nobody read: a typo must not silently fall back to a default."""
        extra = sorted(set(self.table) - self.used - {"type"})
        if extra:
            raise BadInput(
                f"{self._where(extra[0])}: unknown key",
                f"known keys: {', '.join(sorted(self.used | {'type'}))}",
            )
