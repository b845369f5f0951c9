"""Renderers of `check` and `plan`: text for people, zone lines, nsupdate scripts, JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from dane_hook.render.records import SCHEMA_VERSION
from dane_hook.rollover.decision import Decision, EndpointDecision, Verdict
from dane_hook.rollover.observe import Observation
from dane_hook.rollover.plan import Plan
from dane_hook.tlsa.record import TLSARecord

if TYPE_CHECKING:
    from dane_hook.catalog.coverage import Coverage


class CheckFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


class PlanFormat(str, Enum):
    ZONE = "zone"
    NSUPDATE_ADD = "nsupdate-add"
    NSUPDATE_REMOVE = "nsupdate-remove"
    JSON = "json"


@dataclass(frozen=True)
class CheckReport:
    checked: Sequence[tuple[str, Decision, Sequence[Observation]]]
    """(label of the chain, its decision, the observations of its endpoints)."""
    now: datetime
    coverage: Mapping[tuple[str, str], Coverage] = field(default_factory=dict)
    """(label, endpoint) -> how its DANE-TA records cover the CA's intermediates."""


@dataclass(frozen=True)
class PlanReport:
    plans: Sequence[tuple[str, Decision, Plan]]
    now: datetime
    served: frozenset[str] = frozenset()
    """Labels whose chain is served already (just promoted): step 3 is due now."""


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "unknown"


def _headline(label: str, decision: Decision) -> str:
    verdict = decision.verdict.value.upper()
    if decision.verdict is Verdict.WAIT:
        return f"{label}: {verdict}: may be served from {when(decision.earliest)}"
    meaning = {
        Verdict.SAFE: "may be served now",
        Verdict.NO_DANE: "may be served now (no DANE records)",
        Verdict.INSECURE: "may be served, but the TLSA records are not DNSSEC-signed",
        Verdict.INCOMPLETE: "may be served, but some published records match nothing",
        Verdict.UNKNOWN: "cannot decide; do not serve it",
        Verdict.UNSAFE: "serving it would break DANE delivery",
    }[decision.verdict]
    return f"{label}: {verdict}: {meaning}"


def _servers(observation: Observation) -> list[str]:
    lines = []
    view = observation.view
    if observation.view_error:
        lines.append(f"    authoritative servers: not asked ({observation.view_error})")
    if view is None:
        return lines
    serial = view.newest_serial
    state = "in sync" if view.in_sync else "NOT in sync"
    lines.append(
        f"    authoritative servers of {view.zone}: {len(view.servers)}, {state}"
        + (f" (serial {serial})" if serial is not None else "")
    )
    for server in view.lagging:
        missing = ", ".join(r.short() for r in sorted(view.missing(server)))
        problem = server.error or (f"missing {missing}" if missing else "older serial")
        lines.append(
            f"    lagging: {server.nameserver} {server.address} serial {server.serial}: {problem}"
        )
    return lines


def _records(decision: EndpointDecision, observation: Observation) -> list[str]:
    first_seen = observation.published.first_seen
    lines = []
    statuses = {}
    if decision.match is not None:
        statuses = {v.record: v.status.value for v in decision.match.records}
    for record in observation.published.records:
        seen = first_seen.get(record)
        age = f"on every server since {when(seen)}" if seen else "not yet on every server"
        lines.append(f"    {record.short():<30} {statuses.get(record, ''):<12} {age}")
    return lines


def _coverage(coverage: Coverage | None) -> list[str]:
    if coverage is None or not coverage.applies:
        return []
    lines = [f"    CA catalog: {coverage.summary()}"]
    lines += [f"      {note}" for note in coverage.notes()]
    return lines


def coverage_json(coverage: Coverage | None) -> dict[str, Any] | None:
    if coverage is None:
        return None
    issuers = coverage.issuers
    return {
        "applies": coverage.applies,
        "checkable": issuers.checkable,
        "covered": coverage.covered,
        "summary": coverage.summary(),
        "ca": issuers.ca,
        "key_family": issuers.family.value if issuers.family else None,
        "issuer": issuers.issuer.name if issuers.issuer else None,
        "fallback": issuers.fallback,
        "in_use": [" ".join(map(str, p)) for p in coverage.in_use],
        "expected": [
            {"name": k.name, "status": k.status.value, "spki_sha256": k.spki_sha256.hex()}
            for k in issuers.expected
        ],
        "missing": [
            {
                "name": m.key.name,
                "status": m.key.status.value,
                "params": " ".join(map(str, m.params)),
                "add": [r.to_text() for r in m.records],
                "message": m.message(),
            }
            for m in coverage.missing
        ],
        "retired": [
            {
                "rdata": r.record.to_text(),
                "intermediates": [k.name for k in r.keys],
                "serves_chain": r.serves_chain,
                "message": r.message(),
            }
            for r in coverage.retired
        ],
    }


def _check_text(report: CheckReport) -> Iterator[str]:
    for label, decision, observations in report.checked:
        lines = [_headline(label, decision)]
        for endpoint, observation in zip(decision.endpoints, observations, strict=True):
            lines.append(f"  {endpoint.endpoint} {endpoint.verdict.value}: {endpoint.reason}")
            answer = observation.answer
            ttl = observation.published.ttl
            lines.append(f"    resolver: {answer.reason}" + (f" (TTL {ttl} s)" if ttl else ""))
            lines += _servers(observation)
            lines += _records(endpoint, observation)
            lines += _coverage(report.coverage.get((label, endpoint.endpoint)))
        if not decision.endpoints:
            lines.append("  no endpoint: give --endpoint, or a certificate with DNS names")
        yield "\n".join(lines) + "\n"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _endpoint_json(
    decision: EndpointDecision, observation: Observation, coverage: Coverage | None
) -> dict[str, Any]:
    view = observation.view
    statuses = {}
    if decision.match is not None:
        statuses = {v.record: v.status.value for v in decision.match.records}
    return {
        "endpoint": decision.endpoint,
        "verdict": decision.verdict.value,
        "reason": decision.reason,
        "earliest": _iso(decision.earliest),
        "publication": observation.published.status.value,
        "ttl": observation.published.ttl,
        "cname_chain": list(observation.answer.cname_chain),
        "extended_errors": [str(e) for e in observation.answer.extended_errors],
        "records": [
            {
                "rdata": r.to_text(),
                "match": statuses.get(r),
                "first_seen": _iso(observation.published.first_seen.get(r)),
            }
            for r in observation.published.records
        ],
        "servers": [
            {
                "nameserver": s.nameserver,
                "address": s.address,
                "serial": s.serial,
                "records": [r.to_text() for r in s.records],
                "error": s.error,
            }
            for s in (view.servers if view else ())
        ],
        "servers_error": observation.view_error,
        "catalog": coverage_json(coverage),
    }


def _check_json(report: CheckReport) -> Iterator[str]:
    """The document in pieces, one chain at a time: a check of thousands of lineages never
    holds the whole document in memory."""
    head = {"schema_version": SCHEMA_VERSION, "now": report.now.isoformat()}
    yield json.dumps(head, indent=2)[:-2] + ',\n  "chains": ['
    for number, (label, decision, observations) in enumerate(report.checked):
        chain = {
            "chain": label,
            "verdict": decision.verdict.value,
            "earliest": _iso(decision.earliest),
            "endpoints": [
                _endpoint_json(d, o, report.coverage.get((label, d.endpoint)))
                for d, o in zip(decision.endpoints, observations, strict=True)
            ],
        }
        text = json.dumps(chain, indent=2).replace("\n", "\n    ")
        yield ("," if number else "") + "\n    " + text
    yield "\n  ]\n}\n"


CHECK_RENDERERS: dict[CheckFormat, Callable[[CheckReport], Iterable[str]]] = {
    CheckFormat.TEXT: _check_text,
    CheckFormat.JSON: _check_json,
}


def _zone_line(endpoint: str, ttl: int, record: TLSARecord) -> str:
    return f"{endpoint} {ttl} IN TLSA {record.to_text()}"


def _plan_zone(report: PlanReport) -> str:
    # Pasting the whole output into a zone is safe: only step 1 is live, the rest are comments.
    lines: list[str] = []
    for label, decision, plan in report.plans:
        lines.append(f"; dane-hook plan for {label}: {decision.verdict.value}")
        lines.append("; step 1: add now, next to the existing records")
        for endpoint in plan.endpoints:
            lines += [_zone_line(endpoint.endpoint, endpoint.ttl, r) for r in endpoint.add]
        if not any(e.add for e in plan.endpoints):
            lines.append(";   nothing to add")
        for endpoint in plan.endpoints:
            lines += [f"; {endpoint.endpoint} CA catalog: {note}" for note in endpoint.notes[:1]]
            lines += [f";   {note}" for note in endpoint.notes[1:]]
        served = label in report.served
        if served:
            lines.append("; step 2: done: the new chain is served")
        elif plan.serve_now:
            lines.append("; step 2: the new chain may be served now")
        elif plan.serve_from is not None:
            bound = " at the earliest" if plan.serve_from_is_lower_bound else ""
            lines.append(
                f"; step 2: serve the new chain from {when(plan.serve_from)}{bound} "
                "(2 x TTL after every authoritative server serves step 1)"
            )
        else:
            lines.append(
                "; step 2: serve the new chain 2 x TTL after every authoritative server "
                "serves step 1: dane-hook release (the timer runs it) serves a held chain then"
            )
        if served:
            lines.append("; step 3: the new chain is served: remove now:")
        else:
            lines.append("; step 3: once the new chain is served, remove:")
        for endpoint in plan.endpoints:
            lines += [
                f";   {_zone_line(endpoint.endpoint, endpoint.ttl, r)}" for r in endpoint.remove
            ]
        if not any(e.remove for e in plan.endpoints):
            lines.append(";   nothing to remove")
        if any(e.later for e in plan.endpoints):
            lines.append(
                "; later, once no served chain is issued by a retired intermediate, remove:"
            )
        for endpoint in plan.endpoints:
            lines += [
                f";   {_zone_line(endpoint.endpoint, endpoint.ttl, r)}" for r in endpoint.later
            ]
        for endpoint in plan.endpoints:
            lines += [f"; warning: {w}" for w in endpoint.warnings]
            if endpoint.smallest:
                lines.append(f"; the smallest set for {endpoint.endpoint}:")
                lines += [
                    f";   {_zone_line(endpoint.endpoint, endpoint.ttl, r)}"
                    for r in endpoint.smallest
                ]
    return "\n".join(lines) + "\n"


def _nsupdate(report: PlanReport, removing: bool) -> str:
    lines: list[str] = []
    for _, _, plan in report.plans:
        for endpoint in plan.endpoints:
            for record in endpoint.remove if removing else endpoint.add:
                verb = "update delete" if removing else "update add"
                ttl = "" if removing else f" {endpoint.ttl}"
                lines.append(f"{verb} {endpoint.endpoint}{ttl} IN TLSA {record.to_text()}")
    if not lines:
        return ""
    return "\n".join([*lines, "send"]) + "\n"


def _plan_json(report: PlanReport) -> str:
    document = {
        "schema_version": SCHEMA_VERSION,
        "now": report.now.isoformat(),
        "plans": [
            {
                "chain": label,
                "verdict": decision.verdict.value,
                "serve_now": plan.serve_now,
                "serve_from": _iso(plan.serve_from),
                "serve_from_is_lower_bound": plan.serve_from_is_lower_bound,
                "endpoints": [
                    {
                        "endpoint": e.endpoint,
                        "ttl": e.ttl,
                        "add": [r.to_text() for r in e.add],
                        "remove": [r.to_text() for r in e.remove],
                        "keep": [r.to_text() for r in e.keep],
                        "remove_later": [r.to_text() for r in e.later],
                        "catalog": list(e.notes),
                        "smallest_set": [r.to_text() for r in e.smallest],
                        "warnings": list(e.warnings),
                    }
                    for e in plan.endpoints
                ],
            }
            for label, decision, plan in report.plans
        ],
    }
    return json.dumps(document, indent=2) + "\n"


PLAN_RENDERERS: dict[PlanFormat, Callable[[PlanReport], str]] = {
    PlanFormat.ZONE: _plan_zone,
    PlanFormat.NSUPDATE_ADD: lambda report: _nsupdate(report, removing=False),
    PlanFormat.NSUPDATE_REMOVE: lambda report: _nsupdate(report, removing=True),
    PlanFormat.JSON: _plan_json,
}
