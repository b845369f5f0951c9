"""The rollover plan: add records now, serve the new chain later, remove old records last.

RFC 7671 §8.1 and RFC 6698 appendix A.4: publish the new records next to the old ones; switch
the chain once 2 x TTL have passed since every authoritative server serves them; then remove
the records that match nothing still served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from dane_hook.certs.chain import ServedChain
from dane_hook.rollover.decision import Decision, Publication, Published
from dane_hook.tlsa.generate import certificate_record
from dane_hook.tlsa.matching import authenticate
from dane_hook.tlsa.record import TLSARecord, Usage, unusable_reason

if TYPE_CHECKING:  # only a type here: the catalog loads only where DANE-TA records are in use
    from dane_hook.catalog.coverage import Coverage

# Large senders have been seen failing on TLSA RRsets of more than about 12 records.
MAX_RRSET_RECORDS = 12


@dataclass(frozen=True)
class EndpointPlan:
    endpoint: str
    ttl: int
    add: tuple[TLSARecord, ...]
    """Step 1: publish these now, next to the existing records."""
    remove: tuple[TLSARecord, ...]
    """Step 3: remove these once the new chain is served."""
    keep: tuple[TLSARecord, ...]
    warnings: tuple[str, ...] = ()
    later: tuple[TLSARecord, ...] = ()
    """Records that pin only retired intermediates but still authenticate a chain to serve:
    remove them once no served chain is issued by those intermediates."""
    notes: tuple[str, ...] = ()
    """What the CA catalog says about the intermediates (coverage of the next renewal)."""
    smallest: tuple[TLSARecord, ...] = ()
    """When the RRset would grow past MAX_RRSET_RECORDS: the smallest set that still covers
    the current and next key and the CA's intermediates of the key type in use."""


@dataclass(frozen=True)
class InUse:
    """What else is in use at one endpoint, whatever the plan's candidate: the chains of
    enrolled lineages (served, held) and records that authenticate nothing yet but must stay
    (the 3 1 1 of the key acme.sh staged for the next issuance, "current + next")."""

    chains: tuple[ServedChain, ...] = ()
    records: tuple[TLSARecord, ...] = ()


@dataclass(frozen=True)
class Plan:
    endpoints: tuple[EndpointPlan, ...]
    serve_from: datetime | None
    """Step 2: the earliest time the new chain may be served (None: not yet known)."""
    serve_now: bool
    serve_from_is_lower_bound: bool = False


def _authenticates(record: TLSARecord, chain: ServedChain, host: str | None, now: datetime) -> bool:
    return authenticate(chain, [record], host=host, now=now).authenticated


def _pins_issuer(record: TLSARecord, chain: ServedChain) -> bool:
    """Does this DANE-TA record pin the chain's issuing intermediate?"""
    if record.usage != Usage.DANE_TA or not chain.issuers:
        return False
    return certificate_record(chain.issuers[0], *record.params) == record


def _records_to_add(
    candidate: ServedChain, published: Published, host: str | None, now: datetime
) -> list[TLSARecord]:
    present = set(published.records)
    usable = [r for r in published.records if unusable_reason(r) is None]
    in_use = {r.params for r in usable}
    uses_ta = any(r.usage == Usage.DANE_TA for r in usable)
    wanted: list[tuple[int, int, int]] = [(3, 1, 1)]
    if uses_ta and candidate.issuers:
        wanted.append((2, 1, 1))
    # RFC 7671 §8: every combination in use needs a record that matches the new chain.
    for params in sorted(in_use, reverse=True):
        if params not in wanted and (params[0] == Usage.DANE_EE or candidate.issuers):
            covered = any(
                r.params == params and _authenticates(r, candidate, host, now) for r in usable
            )
            if not covered:
                wanted.append(params)
    # A CA-pinning endpoint whose 2 x x records already authenticate the new chain needs
    # no per-key record.
    only_ta = uses_ta and not any(r.usage == Usage.DANE_EE for r in usable)
    if only_ta and any(_authenticates(r, candidate, host, now) for r in usable):
        wanted = [p for p in wanted if p[0] != Usage.DANE_EE]
    add: list[TLSARecord] = []
    for usage, selector, mtype in wanted:
        certificate = candidate.leaf if usage == Usage.DANE_EE else candidate.issuers[0]
        record = certificate_record(certificate, usage, selector, mtype)
        if record not in present and record not in add:
            add.append(record)
    return add


def smallest_set(
    chains: Sequence[ServedChain], published: Published, coverage: Coverage | None
) -> list[TLSARecord]:
    """The fewest records that still cover every chain's key (3 1 1, where DANE-EE is in use)
    and every chain's issuer plus the CA's intermediates of its key type (2 1 1, where
    DANE-TA is in use): one combination each, RFC 7671 §8 needs no more."""
    usable = [r for r in published.records if unusable_reason(r) is None]
    uses_ta = any(r.usage == Usage.DANE_TA for r in usable)
    uses_ee = any(r.usage == Usage.DANE_EE for r in usable) or not uses_ta
    out: list[TLSARecord] = []
    if uses_ee:
        out += [certificate_record(c.leaf, 3, 1, 1) for c in chains]
    if uses_ta:
        if coverage is not None and coverage.issuers.checkable:
            out += [k.records(2, 1, 1)[0] for k in coverage.issuers.expected]
        out += [certificate_record(c.issuers[0], 2, 1, 1) for c in chains if c.issuers]
    return list(dict.fromkeys(out))


def make_plan(
    candidate: ServedChain,
    served: Sequence[ServedChain],
    published: Sequence[Published],
    decision: Decision,
    now: datetime,
    *,
    host_of: dict[str, str] | None = None,
    coverage: Mapping[str, Coverage] | None = None,
    current: ServedChain | None = None,
    in_use: Mapping[str, InUse] | None = None,
) -> Plan:
    """What to publish, when to serve the candidate, and what to remove afterwards.

    `served` are the chains still served at these endpoints once the candidate is (other
    lineages sharing the name, e.g. an RSA next to an ECDSA certificate); a record that
    authenticates any of them, or the candidate, is never proposed for removal.
    `coverage` (per endpoint, from the CA catalog) adds the records of the intermediates the
    CA may issue the next certificate from and keeps them; `current` is the chain served now,
    counted only for the smallest set proposed when the RRset grows too large. `in_use` (per
    endpoint) adds what enrolled lineages serve, hold or have staged there: never removed.
    """
    plans: list[EndpointPlan] = []
    for p in published:
        if p.status is not Publication.SECURE:
            continue
        host = (host_of or {}).get(p.endpoint)
        covered = (coverage or {}).get(p.endpoint)
        add = _records_to_add(candidate, p, host, now)
        if covered is not None and covered.issuers.checkable:
            present = set(p.records)
            add += [r for r in covered.to_add if r not in present and r not in add]
        expected = covered.issuers.expected if covered is not None else ()
        also = (in_use or {}).get(p.endpoint, InUse())
        chains = (candidate, *served, *also.chains)
        keep: list[TLSARecord] = []
        remove: list[TLSARecord] = []
        for record in p.records:
            if (
                record in also.records
                or any(_authenticates(record, chain, host, now) for chain in chains)
                or any(key.matches(record) for key in expected if record.usage == Usage.DANE_TA)
            ):
                keep.append(record)
            else:
                remove.append(record)
        later: list[TLSARecord] = []
        notes: list[str] = []
        if covered is not None and covered.applies:
            # A pin of a retired intermediate stays while a chain to serve is issued by it,
            # as the catalog's note says, even where it authenticates nothing today (a DANE-TA
            # name mismatch): it goes "later" (remove_later), not in step 3.
            for retired in covered.retired:
                issuing = retired.serves_chain or any(
                    _pins_issuer(retired.record, c) for c in chains
                )
                if retired.record in remove and issuing:
                    remove.remove(retired.record)
                    keep.append(retired.record)
                if retired.record in keep:
                    later.append(retired.record)
            notes = [covered.summary(), *covered.notes()]
        warnings: list[str] = []
        smallest: list[TLSARecord] = []
        peak = len(p.records) + len(add)
        if peak > MAX_RRSET_RECORDS:
            chains_now = [c for c in (current, *chains) if c is not None]
            smallest = smallest_set(chains_now, p, covered)
            smallest += [r for r in also.records if r not in smallest]
            what = "the current and next key"
            if covered is not None and covered.applies and covered.issuers.checkable:
                what += f" and {covered.issuers.describe()}"
            warning = (
                f"{p.endpoint} would hold {peak} TLSA records during the rollover; large "
                f"senders have failed above {MAX_RRSET_RECORDS}: remove unused records first; "
                f"the smallest set that still covers {what} has {len(smallest)} records"
            )
            if len(smallest) > MAX_RRSET_RECORDS:
                warning += f", itself more than {MAX_RRSET_RECORDS}: serve fewer chains here"
            warnings.append(warning)
        plans.append(
            EndpointPlan(
                p.endpoint,
                p.ttl,
                tuple(add),
                tuple(remove),
                tuple(keep),
                tuple(warnings),
                tuple(later),
                tuple(notes),
                tuple(smallest),
            )
        )
    return Plan(
        tuple(plans),
        decision.earliest,
        decision.servable,
        any(d.lower_bound for d in decision.endpoints),
    )
