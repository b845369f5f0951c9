"""The ledger: every TLSA record dane-hook added or adopted, so that it retires only its own.

It lives beside the state (`ledger.json` in the state directory) and is written atomically
while the caller holds the state directory's lock (dane_hook.storage.LOCK_FILE). Before an
update is sent, its intent is written as `pending`; a run killed between the update and the
ledger write (kill -9) leaves that intent, and the next run reads the RRset to settle it: a
record that is there is recognised as dane-hook's and not added twice. No secret is stored:
only record texts, owner names, publisher names and times.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from dane_hook.storage import StateError, write_atomically

LEDGER_FILE = "ledger.json"
SCHEMA_VERSION = 1

Pending = Literal["add", "remove"]


def _time(value: object) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"time without zone: {value!r}")
    return moment


def _text(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True)
class Entry:
    """One record at one owner that dane-hook added (or adopted) for a lineage."""

    lineage: str
    owner: str
    """Absolute TLSA owner name, e.g. `_25._tcp.mail.example.com.`."""
    record: str
    """Canonical record text, "3 1 1 hex"."""
    publisher: str
    """The `[publisher.NAME]` it was (or is to be) published with."""
    added: datetime | None = None
    """When the add took effect; None while only pending."""
    removed: datetime | None = None
    """When dane-hook removed it again; the entry is kept as history."""
    adopted: bool = False
    """Published by someone else before enrollment, made dane-hook's (`enroll --adopt`)."""
    unused_since: datetime | None = None
    """Since when it matches nothing in use (served, held, next key, CA coverage)."""
    pending: Pending | None = None
    """An update about to be sent: settled by reading the RRset on the next run."""
    pending_since: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.lineage, self.owner, self.record)

    @property
    def owned(self) -> bool:
        """dane-hook may remove it: added or adopted, and not removed since."""
        return self.added is not None and self.removed is None

    def to_json(self) -> dict[str, Any]:
        return {
            "lineage": self.lineage,
            "owner": self.owner,
            "record": self.record,
            "publisher": self.publisher,
            "added": _text(self.added),
            "removed": _text(self.removed),
            "adopted": self.adopted,
            "unused_since": _text(self.unused_since),
            "pending": self.pending,
            "pending_since": _text(self.pending_since),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Entry:
        pending = document.get("pending")
        if pending not in (None, "add", "remove"):
            raise ValueError(f"pending {pending!r}")
        return cls(
            str(document["lineage"]),
            str(document["owner"]),
            str(document["record"]),
            str(document["publisher"]),
            _time(document.get("added")),
            _time(document.get("removed")),
            bool(document.get("adopted", False)),
            _time(document.get("unused_since")),
            pending,
            _time(document.get("pending_since")),
        )


@dataclass(frozen=True)
class ServedSince:
    """The version a lineage's served view serves, and since when dane-hook saw it served."""

    version: str
    since: datetime


@dataclass
class Ledger:
    entries: dict[tuple[str, str, str], Entry] = field(default_factory=dict)
    served: dict[str, ServedSince] = field(default_factory=dict)
    """Lineage -> its served version and since when (the clock of `retire_after`)."""
    next_keys: dict[str, str] = field(default_factory=dict)
    """Lineage -> the 3 1 1 of the key acme.sh staged for the next issuance (in use)."""
    adopted: set[str] = field(default_factory=set)
    """Lineages whose records in use were adopted once (`adopt = true` runs only once)."""
    observed: datetime | None = None
    """When the timer last observed every enrolled lineage (its quiet runs look nothing up)."""
    observed_lineages: set[str] = field(default_factory=set)
    """The lineages that observation covered: one enrolled since is looked at on the next run."""

    def of(self, lineage: str) -> Iterator[Entry]:
        return (e for e in self.entries.values() if e.lineage == lineage)

    def get(self, lineage: str, owner: str, record: str) -> Entry | None:
        return self.entries.get((lineage, owner, record))

    def owns(self, owner: str, record: str) -> bool:
        """Does any lineage own this record at this owner?"""
        return any(
            e.owned and e.owner == owner and e.record == record for e in self.entries.values()
        )

    def put(self, entry: Entry) -> None:
        self.entries[entry.key] = entry

    def update(self, entry: Entry, **changes: Any) -> Entry:
        changed = replace(entry, **changes)
        self.put(changed)
        return changed

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "entries": [e.to_json() for _, e in sorted(self.entries.items())],
            "served": {
                n: {"version": s.version, "since": s.since.isoformat()}
                for n, s in sorted(self.served.items())
            },
            "next_keys": dict(sorted(self.next_keys.items())),
            "adopted": sorted(self.adopted),
            "observed": _text(self.observed),
            "observed_lineages": sorted(self.observed_lineages),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Ledger:
        if document.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"schema_version {document.get('schema_version')!r}")
        entries = [Entry.from_json(e) for e in document.get("entries", [])]
        served = {}
        for name, value in dict(document.get("served", {})).items():
            since = _time(value["since"])
            assert since is not None
            served[str(name)] = ServedSince(str(value["version"]), since)
        return cls(
            {e.key: e for e in entries},
            served,
            {str(k): str(v) for k, v in dict(document.get("next_keys", {})).items()},
            {str(n) for n in document.get("adopted", [])},
            _time(document.get("observed")),
            {str(n) for n in document.get("observed_lineages", [])},
        )


def ledger_path(state_dir: Path) -> Path:
    return state_dir / LEDGER_FILE


def load_ledger(state_dir: Path) -> Ledger:
    """The ledger (empty when there is none). The caller holds the state lock.

    A ledger that cannot be read is an error, not an empty ledger: forgetting what dane-hook
    owns would stop retirements silently, and guessing would remove someone else's record.
    """
    path = ledger_path(state_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Ledger()
    except OSError as exc:
        raise StateError(f"ledger {path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return Ledger.from_json(json.loads(data.decode("utf-8")))
    except (ValueError, TypeError, KeyError, AttributeError, AssertionError) as exc:
        raise StateError(
            f"ledger {path}: is corrupt ({exc})",
            "restore it from a backup, or move it aside: dane-hook then owns no record",
        ) from None


def save_ledger(state_dir: Path, ledger: Ledger) -> None:
    """Write the ledger atomically (the caller holds the state lock)."""
    path = ledger_path(state_dir)
    data = json.dumps(ledger.to_json(), indent=2, sort_keys=True).encode() + b"\n"
    try:
        state_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        write_atomically(path, data, mode=0o640)
    except OSError as exc:
        raise StateError(f"ledger {path}: cannot be written ({exc.strerror or exc})") from exc
