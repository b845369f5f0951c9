"""The state store: since when every authoritative server serves each record, kept on disk.

Writes are atomic (temporary file, fsync, rename, fsync of the directory) under an exclusive
lock, so a concurrent run waits and a crash leaves either the old or the new state. A state
that cannot be read is moved aside and every first-seen restarts from now: that errs on waiting
longer, never on serving early.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dane_hook.storage import (
    DEFAULT_STATE_DIR,
    LOCK_FILE,
    LineageNameError,
    StateError,
    check_lineage_name,
    write_atomically,
)
from dane_hook.tlsa.record import TLSARecord

STATE_FILE = "state.json"
SCHEMA_VERSION = 1


# The state keeps records as TLSARecord.to_text() writes them: "U S M lowercase-hex". A cheap
# check here; the full parse (dnspython) happens only for the records a run needs.
_RECORD_TEXT = re.compile(r"^\d{1,3} \d{1,3} \d{1,3} (?:[0-9a-f]{2})*$")


@dataclass(frozen=True)
class Enrollment:
    """A lineage whose served view dane-hook owns."""

    source: str
    """"certbot" or "acme.sh"."""
    served_dir: str
    endpoints: tuple[str, ...] = ()
    reload: tuple[tuple[str, ...], ...] = ()
    """Commands (argv) run after a promotion; acme.sh's wrapped --reloadcmd goes here."""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "served_dir": self.served_dir,
            "endpoints": list(self.endpoints),
            "reload": [list(c) for c in self.reload],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Enrollment:
        return cls(
            str(document["source"]),
            str(document["served_dir"]),
            tuple(str(e) for e in document.get("endpoints", [])),
            tuple(tuple(str(a) for a in c) for c in document.get("reload", [])),
        )


@dataclass(frozen=True)
class Held:
    """A candidate chain kept back from the served view."""

    version: str
    """Id of the candidate's copy under the state directory (candidates/NAME/<version>/)."""
    since: datetime
    verdict: str
    reason: str
    earliest: datetime | None = None
    reload: tuple[tuple[str, ...], ...] = ()
    """Commands to run once it is promoted (acme.sh: the wrapped reload command)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "since": self.since.isoformat(),
            "verdict": self.verdict,
            "reason": self.reason,
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "reload": [list(c) for c in self.reload],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Held:
        earliest = document.get("earliest")
        return cls(
            str(document["version"]),
            _aware(document["since"]),
            str(document["verdict"]),
            str(document["reason"]),
            _aware(earliest) if earliest else None,
            tuple(tuple(str(a) for a in c) for c in document.get("reload", [])),
        )


def _aware(text: object) -> datetime:
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"time without zone: {text!r}")
    return moment


@dataclass
class State:
    first_seen: dict[str, dict[str, datetime]] = field(default_factory=dict)
    """endpoint -> record text ("U S M HEX") -> when every authoritative server served it."""
    enrolled: dict[str, Enrollment] = field(default_factory=dict)
    held: dict[str, Held] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What happened while loading (a corrupt file moved aside), for the caller to show."""
    last_success: datetime | None = None
    """When a release, deploy or status run last observed its lineages without a lookup
    failure (monitoring's dane_hook_last_success_seconds)."""

    def observe(
        self, endpoint: str, published_everywhere: Iterable[TLSARecord], now: datetime
    ) -> dict[TLSARecord, datetime]:
        """Record which records every authoritative server serves now; return their first-seen.

        A record no longer served everywhere is forgotten: if it comes back, its clock
        restarts (RFC 7671 §8.1 counts from when every server serves it).
        """
        known = self.first_seen.get(endpoint, {})
        current: dict[str, datetime] = {}
        result: dict[TLSARecord, datetime] = {}
        for record in published_everywhere:
            text = record.to_text()
            seen = known.get(text, now)
            current[text] = seen
            result[record] = seen
        if current:
            self.first_seen[endpoint] = current
        else:
            self.first_seen.pop(endpoint, None)
        return result

    def known(self, endpoint: str) -> dict[TLSARecord, datetime]:
        """The first-seen times recorded for an endpoint, without changing them."""
        return {
            TLSARecord.from_text(text): when
            for text, when in self.first_seen.get(endpoint, {}).items()
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "first_seen": {
                endpoint: {text: when.isoformat() for text, when in sorted(records.items())}
                for endpoint, records in sorted(self.first_seen.items())
            },
            "enrolled": {name: e.to_json() for name, e in sorted(self.enrolled.items())},
            "held": {name: h.to_json() for name, h in sorted(self.held.items())},
            "last_success": self.last_success.isoformat() if self.last_success else None,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> State:
        if document.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"schema_version {document.get('schema_version')!r}")
        first_seen: dict[str, dict[str, datetime]] = {}
        for endpoint, records in dict(document.get("first_seen", {})).items():
            parsed = {}
            for text, when in dict(records).items():
                if not _RECORD_TEXT.match(str(text)):
                    raise ValueError(f"not a TLSA record: {text!r}")
                parsed[str(text)] = _aware(when)
            first_seen[str(endpoint)] = parsed
        enrolled = {
            _name(n): Enrollment.from_json(e) for n, e in dict(document.get("enrolled", {})).items()
        }
        held = {_name(n): Held.from_json(h) for n, h in dict(document.get("held", {})).items()}
        for name, candidate in held.items():
            _name(candidate.version, f"held version of {name}")  # candidates/NAME/VERSION
        success = document.get("last_success")
        return cls(first_seen, enrolled, held, last_success=_aware(success) if success else None)


def _name(name: object, source: str = "lineage name") -> str:
    """A lineage name (or version id) of the state file: it is joined into paths later."""
    try:
        return check_lineage_name(str(name), source)
    except LineageNameError as exc:
        raise ValueError(exc.diagnostics()) from exc


class StateStore:
    def __init__(self, directory: Path | str = DEFAULT_STATE_DIR) -> None:
        self.directory = Path(directory)

    @property
    def path(self) -> Path:
        return self.directory / STATE_FILE

    def _prepare(self) -> None:
        try:
            self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"state directory {self.directory}: cannot be created ({exc.strerror or exc})",
                "give a writable --state-dir",
            ) from exc

    @contextlib.contextmanager
    def locked(self, now: datetime | None = None) -> Iterator[State]:
        """The state under an exclusive lock; saved atomically when the block ends normally."""
        self._prepare()
        try:
            lock = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            raise StateError(
                f"state directory {self.directory}: cannot open the lock ({exc.strerror or exc})",
                "give a writable --state-dir",
            ) from exc
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent run waits here
            state = self._load(now or datetime.now(timezone.utc))
            yield state
            self._save(state)
        finally:
            os.close(lock)

    @contextlib.contextmanager
    def for_question(self, now: datetime | None = None) -> Iterator[State]:
        """`locked` where the state directory can be written; else the state as read, unsaved.

        For questions that change nothing (`check`, `plan`): they keep first-seen times where
        they can, but need not. Without a writable state directory they answer from the state
        file when it is readable, else without first-seen times (every record counts as first
        seen now, which errs on waiting: RFC 7671 §8.1); one warning in `warnings` says so.
        """
        problem = self._unwritable()
        entered = False
        if problem is None:
            try:
                with self.locked(now) as state:
                    entered = True
                    yield state
                return
            except StateError as exc:
                if entered:
                    raise
                problem = str(exc)
        state = self.read()
        known = "the saved first-seen times" if state.first_seen else "no first-seen times"
        state.warnings.append(f"{problem}; answered with {known} (nothing saved)")
        yield state

    def _unwritable(self) -> str | None:
        """Why the state directory cannot take a new file, or None (a real try, not access(2),
        which says yes to root on a read-only mount)."""
        try:
            self._prepare()
            fd, probe = tempfile.mkstemp(prefix=".probe.", dir=self.directory)
        except StateError as exc:
            return str(exc)
        except OSError as exc:
            return f"state directory {self.directory}: not writable ({exc.strerror or exc})"
        os.close(fd)
        os.unlink(probe)
        return None

    def read(self) -> State:
        """The state without taking the lock for writing (for status displays)."""
        if not self.path.exists():
            return State()
        try:
            return State.from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            return State(warnings=[f"{self.path}: unreadable"])

    def _load(self, now: datetime) -> State:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return State()
        except OSError as exc:
            return self._set_aside(now, f"cannot be read ({exc.strerror or exc})")
        try:
            return State.from_json(json.loads(data.decode("utf-8")))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            return self._set_aside(now, f"is corrupt ({exc})")

    def _set_aside(self, now: datetime, why: str) -> State:
        aside = self.path.with_name(f"{STATE_FILE}.corrupt-{now:%Y%m%dT%H%M%SZ}")
        try:
            os.replace(self.path, aside)
            where = f"moved to {aside}"
        except OSError:
            where = "left in place"
        return State(
            warnings=[
                f"state file {self.path} {why}; {where}; every first-seen time restarts now, "
                "so new records wait a full 2 x TTL again"
            ]
        )

    def _save(self, state: State) -> None:
        data = json.dumps(state.to_json(), indent=2, sort_keys=True).encode() + b"\n"
        try:
            write_atomically(self.path, data, mode=0o640)
        except OSError as exc:
            raise StateError(
                f"state file {self.path}: cannot be written ({exc.strerror or exc})",
                "give a writable --state-dir",
            ) from exc
