"""May the candidate chain be served now? A pure function of chains, published records and time.

RFC 7671 §8.1 and RFC 6698 appendix A.4: records for a new key or chain are published next to
the old ones, and the new chain is served only once every cache that may hold the old RRset has
expired it: at least 2 x TTL after every authoritative server serves the new records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from dane_hook.certs.chain import ServedChain
from dane_hook.tlsa.matching import MatchResult, authenticate
from dane_hook.tlsa.record import TLSARecord


class Publication(str, Enum):
    """What a validating resolver said about an endpoint's TLSA RRset."""

    SECURE = "secure"
    INSECURE = "insecure"
    NO_DANE = "no-dane"
    """A secure NXDOMAIN or NODATA: the endpoint does not use DANE."""
    BOGUS = "bogus"
    FAILED = "failed"


class Verdict(str, Enum):
    SAFE = "safe"
    NO_DANE = "no-dane"
    INSECURE = "insecure"
    INCOMPLETE = "incomplete"
    WAIT = "wait"
    UNKNOWN = "unknown"
    UNSAFE = "unsafe"


# The verdict of a certificate is the worst of its endpoints, in this order. Unsafe is worst:
# it is a definite "this breaks delivery", where unknown only means "could not decide";
# both hold the candidate back.
SEVERITY = {
    Verdict.SAFE: 0,
    Verdict.NO_DANE: 0,
    Verdict.INSECURE: 1,
    Verdict.INCOMPLETE: 2,
    Verdict.WAIT: 3,
    Verdict.UNKNOWN: 4,
    Verdict.UNSAFE: 5,
}

# Verdicts under which the candidate may be served (incomplete only when not strict).
SERVABLE = {Verdict.SAFE, Verdict.NO_DANE, Verdict.INSECURE, Verdict.INCOMPLETE}


@dataclass(frozen=True)
class Published:
    """An endpoint's TLSA RRset as the world sees it."""

    endpoint: str
    status: Publication
    records: tuple[TLSARecord, ...] = ()
    ttl: int = 0
    """The RRset's TTL as the authoritative servers give it (not a cache's remaining TTL)."""
    first_seen: Mapping[TLSARecord, datetime] = field(default_factory=dict)
    """When every authoritative server was first seen serving each record; absent: not yet."""
    reason: str = ""


@dataclass(frozen=True)
class EndpointDecision:
    endpoint: str
    verdict: Verdict
    reason: str
    earliest: datetime | None = None
    """For WAIT: the earliest time the candidate may be served."""
    match: MatchResult | None = None
    lower_bound: bool = False
    """True when `earliest` assumes records not yet on every authoritative server appear now."""


def _matures_at(record: TLSARecord, published: Published, now: datetime) -> datetime:
    """When every cache holding an RRset without this record has expired it (RFC 7671 §8.1)."""
    wait = timedelta(seconds=2 * published.ttl)
    seen = published.first_seen.get(record)
    return (seen if seen is not None else now) + wait


def same_chain(one: ServedChain, other: ServedChain | None) -> bool:
    """The same leaf and issuers (two reads of one version are equal, not identical)."""
    return other is not None and (
        one is other or (one.leaf == other.leaf and one.issuers == other.issuers)
    )


def decide_endpoint(
    candidate: ServedChain,
    current: ServedChain | None,
    published: Published,
    now: datetime,
    *,
    strict: bool = False,
    host: str | None = None,
) -> EndpointDecision:
    """The verdict for serving `candidate` at one endpoint at time `now`."""
    endpoint = published.endpoint
    if published.status is Publication.NO_DANE:
        return EndpointDecision(endpoint, Verdict.NO_DANE, "no TLSA records (securely denied)")
    if published.status is Publication.INSECURE:
        return EndpointDecision(
            endpoint,
            Verdict.INSECURE,
            "TLSA records are not DNSSEC-signed: DANE clients ignore them, they protect nothing"
            + (f" ({published.reason})" if published.reason else ""),
        )
    if published.status is not Publication.SECURE:
        why = published.reason or published.status.value
        return EndpointDecision(endpoint, Verdict.UNKNOWN, f"cannot decide: {why}")

    records = list(published.records)
    full = authenticate(candidate, records, host=host, now=now)
    if not full.authenticated:
        # The chain served now judged against itself (preflight, status with nothing held) is
        # no "new" chain: it fails already, DANE senders defer mail to it today.
        served = same_chain(candidate, current)
        what = "the served chain fails" if served else "the new chain would fail"
        return EndpointDecision(endpoint, Verdict.UNSAFE, f"{what}: {full.reason}", match=full)

    # Records that every cache already holds, or that authenticate the chain served now
    # (an unchanged 3 1 1 under reuse_key is safe at once).
    def mature(record: TLSARecord, moment: datetime) -> bool:
        if _matures_at(record, published, now) <= moment:
            return True
        return (
            current is not None
            and authenticate(current, [record], host=host, now=now).authenticated
        )

    if authenticate(
        candidate, [r for r in records if mature(r, now)], host=host, now=now
    ).authenticated:
        if full.incomplete:
            missing = ", ".join(f"{u} {s} {m}" for u, s, m in full.incomplete)
            verdict = Verdict.UNSAFE if strict else Verdict.INCOMPLETE
            return EndpointDecision(
                endpoint,
                verdict,
                f"authenticated, but no record of {missing} matches (RFC 7671 §8)",
                match=full,
            )
        return EndpointDecision(endpoint, Verdict.SAFE, full.reason, match=full)

    # The earliest moment at which the records mature enough to authenticate the candidate.
    moments = sorted({_matures_at(r, published, now) for r in records if not mature(r, now)})
    for moment in moments:
        ready = [r for r in records if mature(r, moment)]
        if authenticate(candidate, ready, host=host, now=moment).authenticated:
            unseen = any(r not in published.first_seen for r in records if not mature(r, now))
            return EndpointDecision(
                endpoint,
                Verdict.WAIT,
                "the records for the new chain are younger than 2 x TTL "
                f"({published.ttl} s): senders may still hold the old RRset",
                earliest=moment,
                match=full,
                lower_bound=unseen,
            )
    return EndpointDecision(
        endpoint,
        Verdict.UNSAFE,
        "the new chain is authenticated now but not by records that stay valid",
        match=full,
    )


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    endpoints: tuple[EndpointDecision, ...]
    earliest: datetime | None = None

    @property
    def servable(self) -> bool:
        return self.verdict in SERVABLE


def decide(
    candidate: ServedChain,
    current: ServedChain | None,
    published: Sequence[Published],
    now: datetime,
    *,
    strict: bool = False,
    host_of: Mapping[str, str] | None = None,
) -> Decision:
    """The verdict for a certificate: the worst of its endpoints."""
    decisions = tuple(
        decide_endpoint(
            candidate,
            current,
            p,
            now,
            strict=strict,
            host=(host_of or {}).get(p.endpoint),
        )
        for p in published
    )
    if not decisions:
        return Decision(Verdict.NO_DANE, ())
    worst = max(decisions, key=lambda d: SEVERITY[d.verdict]).verdict
    times = [d.earliest for d in decisions if d.earliest is not None]
    earliest = max(times) if worst is Verdict.WAIT and times else None
    return Decision(worst, decisions, earliest)
