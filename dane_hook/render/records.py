"""Output formats as data: one enum per kind of result, one renderer per format."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only types: `records` must not pay for importing the matcher
    from dane_hook.tlsa.generate import RecordSource
    from dane_hook.tlsa.matching import MatchResult

SCHEMA_VERSION = 1
"""Version of every JSON document dane-hook prints; raised when a field changes meaning."""


class RecordsFormat(str, Enum):
    ZONE = "zone"
    RDATA = "rdata"
    NSUPDATE = "nsupdate"
    JSON = "json"


class MatchFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


@dataclass(frozen=True)
class RecordsOutput:
    records: Sequence[RecordSource]
    owners: Sequence[str]
    ttl: int


def _zone(out: RecordsOutput) -> str:
    # "owner TTL IN TLSA U S M HEX": exact, so it can be pasted into a zone or nsupdate.
    lines = [
        f"{owner} {out.ttl} IN TLSA {source.record.to_text()}"
        for owner in out.owners
        for source in out.records
    ]
    return "\n".join(lines) + "\n"


def _nsupdate(out: RecordsOutput) -> str:
    """An nsupdate(1) script that adds the records next to what is there (RFC 2136)."""
    lines = [
        f"update add {owner} {out.ttl} IN TLSA {source.record.to_text()}"
        for owner in out.owners
        for source in out.records
    ]
    return "\n".join([*lines, "send"]) + "\n"


def _rdata(out: RecordsOutput) -> str:
    return "".join(f"{source.record.to_text()}\n" for source in out.records)


def _records_json(out: RecordsOutput) -> str:
    import json  # only for this format: `records` starts faster without it

    document = {
        "schema_version": SCHEMA_VERSION,
        "owners": list(out.owners),
        "ttl": out.ttl,
        "records": [
            {
                "usage": s.record.usage,
                "selector": s.record.selector,
                "matching_type": s.record.mtype,
                "data": s.record.data.hex(),
                "rdata": s.record.to_text(),
                "role": s.role,
                "depth": s.depth,
                "subject": s.subject,
            }
            for s in out.records
        ],
    }
    return json.dumps(document, indent=2) + "\n"


RECORDS_RENDERERS: dict[RecordsFormat, Callable[[RecordsOutput], str]] = {
    RecordsFormat.ZONE: _zone,
    RecordsFormat.RDATA: _rdata,
    RecordsFormat.NSUPDATE: _nsupdate,
    RecordsFormat.JSON: _records_json,
}


def _match_text(result: MatchResult) -> str:
    verdict = "authenticated" if result.authenticated else "NOT authenticated"
    lines = [f"{verdict}: {result.reason}"]
    for v in result.records:
        lines.append(f"  {v.record.short():<30} {v.status.value:<12} {v.reason}")
    for usage, selector, mtype in result.incomplete:
        lines.append(
            f"warning: no record of the {usage} {selector} {mtype} combination matches this chain; "
            "clients that use it will fail (RFC 7671 §8): replace it or remove it"
        )
    return "\n".join(lines) + "\n"


def _match_json(result: MatchResult) -> str:
    import json

    document = {
        "schema_version": SCHEMA_VERSION,
        "authenticated": result.authenticated,
        "reason": result.reason,
        "matched_by": result.by.to_text() if result.by else None,
        "depth": result.depth,
        "records": [
            {
                "rdata": v.record.to_text(),
                "status": v.status.value,
                "usable": v.status.value != "unusable",
                "depth": v.depth,
                "reason": v.reason,
            }
            for v in result.records
        ],
        "incomplete": [f"{u} {s} {m}" for u, s, m in result.incomplete],
    }
    return json.dumps(document, indent=2) + "\n"


MATCH_RENDERERS: dict[MatchFormat, Callable[[MatchResult], str]] = {
    MatchFormat.TEXT: _match_text,
    MatchFormat.JSON: _match_json,
}
