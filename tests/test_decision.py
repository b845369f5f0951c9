"""The decision and the plan as tables of named situations (pure: the clock is a parameter)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from dane_hook.certs.chain import ServedChain, build_chain
from dane_hook.render.check import PLAN_RENDERERS, PlanFormat, PlanReport
from dane_hook.rollover.assess import EnrolledInUse, in_use_at
from dane_hook.rollover.decision import Publication, Published, Verdict, decide, decide_endpoint
from dane_hook.rollover.plan import MAX_RRSET_RECORDS, EndpointPlan, make_plan
from dane_hook.tlsa.generate import certificate_record
from dane_hook.tlsa.record import TLSARecord
from tests import pki

NOW = pki.NOW
TTL = 300
ENDPOINT = "_25._tcp.mx.example.test."
HOST = "mx.example.test"

ROOT = pki.root("decision root")
OLD_CA = pki.intermediate("decision R1", ROOT)
NEW_CA = pki.intermediate("decision R2", ROOT)
OLD = pki.leaf(OLD_CA, label="decision old key")
SAME_KEY_NEW_CA = pki.leaf(NEW_CA, label="decision old key")
NEW_KEY_SAME_CA = pki.leaf(OLD_CA, label="decision new key")
NEW_KEY_NEW_CA = pki.leaf(NEW_CA, label="decision new key")


def chain(leaf: pki.Issued, issuer: pki.Issued) -> ServedChain:
    return build_chain([leaf.certificate, issuer.certificate], now=NOW)


def ee(leaf: pki.Issued) -> TLSARecord:
    return certificate_record(leaf.certificate, 3, 1, 1)


def ta(issuer: pki.Issued) -> TLSARecord:
    return certificate_record(issuer.certificate, 2, 1, 1)


LONG_AGO = NOW - timedelta(days=30)
JUST_NOW = NOW - timedelta(seconds=60)


@dataclass(frozen=True)
class Case:
    candidate: tuple[pki.Issued, pki.Issued]
    records: Mapping[TLSARecord, datetime | None]
    """Each published record and its first-seen time (None: not yet on every server)."""
    expected: Verdict
    current: tuple[pki.Issued, pki.Issued] | None = (OLD, OLD_CA)
    status: Publication = Publication.SECURE
    strict: bool = False
    earliest: datetime | None = None
    lower_bound: bool = False


CASES: dict[str, Case] = {
    "new key, its 3 1 1 published long ago": Case(
        (NEW_KEY_SAME_CA, OLD_CA), {ee(OLD): LONG_AGO, ee(NEW_KEY_SAME_CA): LONG_AGO}, Verdict.SAFE
    ),
    "new key, its 3 1 1 published a minute ago": Case(
        (NEW_KEY_SAME_CA, OLD_CA),
        {ee(OLD): LONG_AGO, ee(NEW_KEY_SAME_CA): JUST_NOW},
        Verdict.WAIT,
        earliest=JUST_NOW + timedelta(seconds=2 * TTL),
    ),
    "new key, its 3 1 1 not yet on every authoritative server": Case(
        (NEW_KEY_SAME_CA, OLD_CA),
        {ee(OLD): LONG_AGO, ee(NEW_KEY_SAME_CA): None},
        Verdict.WAIT,
        earliest=NOW + timedelta(seconds=2 * TTL),
        lower_bound=True,
    ),
    "reused key, unchanged 3 1 1 first seen just now": Case(
        (SAME_KEY_NEW_CA, NEW_CA), {ee(OLD): JUST_NOW}, Verdict.SAFE
    ),
    "new key, issuer unchanged, 2 1 1 published": Case(
        (NEW_KEY_SAME_CA, OLD_CA), {ta(OLD_CA): LONG_AGO}, Verdict.SAFE
    ),
    "new key and new intermediate, only the old 3 1 1 and 2 1 1": Case(
        (NEW_KEY_NEW_CA, NEW_CA), {ee(OLD): LONG_AGO, ta(OLD_CA): LONG_AGO}, Verdict.UNSAFE
    ),
    "3 1 1 and 2 1 1 published, only the 2 1 1 matches": Case(
        (NEW_KEY_SAME_CA, OLD_CA), {ee(OLD): LONG_AGO, ta(OLD_CA): LONG_AGO}, Verdict.INCOMPLETE
    ),
    "only the 2 1 1 matches, strict": Case(
        (NEW_KEY_SAME_CA, OLD_CA),
        {ee(OLD): LONG_AGO, ta(OLD_CA): LONG_AGO},
        Verdict.UNSAFE,
        strict=True,
    ),
    "first deployment, nothing served, 3 1 1 young": Case(
        (NEW_KEY_SAME_CA, OLD_CA),
        {ee(NEW_KEY_SAME_CA): JUST_NOW},
        Verdict.WAIT,
        current=None,
        earliest=JUST_NOW + timedelta(seconds=2 * TTL),
    ),
    "new 2 1 1 young, old 3 1 1 of the reused key still there": Case(
        (SAME_KEY_NEW_CA, NEW_CA), {ee(OLD): LONG_AGO, ta(NEW_CA): JUST_NOW}, Verdict.SAFE
    ),
    "secure denial: no DANE": Case(
        (NEW_KEY_NEW_CA, NEW_CA), {}, Verdict.NO_DANE, status=Publication.NO_DANE
    ),
    "records not signed": Case(
        (NEW_KEY_NEW_CA, NEW_CA), {ee(OLD): LONG_AGO}, Verdict.INSECURE, status=Publication.INSECURE
    ),
    "bogus answer": Case((NEW_KEY_SAME_CA, OLD_CA), {}, Verdict.UNKNOWN, status=Publication.BOGUS),
    "lookup failed": Case(
        (NEW_KEY_SAME_CA, OLD_CA), {}, Verdict.UNKNOWN, status=Publication.FAILED
    ),
}


def published(case: Case, endpoint: str = ENDPOINT) -> Published:
    return Published(
        endpoint,
        case.status,
        tuple(case.records),
        TTL,
        {r: t for r, t in case.records.items() if t is not None},
    )


@pytest.mark.parametrize("name", list(CASES))
def test_decision(name: str) -> None:
    case = CASES[name]
    current = chain(*case.current) if case.current else None
    result = decide_endpoint(
        chain(*case.candidate), current, published(case), NOW, strict=case.strict, host=HOST
    )
    assert result.verdict is case.expected, result.reason
    assert result.earliest == case.earliest
    assert result.lower_bound is case.lower_bound


def test_wait_picks_the_earliest_record_that_suffices() -> None:
    later = NOW - timedelta(seconds=30)
    records = {ee(OLD): LONG_AGO, ee(NEW_KEY_NEW_CA): JUST_NOW, ta(NEW_CA): later}
    result = decide_endpoint(
        chain(NEW_KEY_NEW_CA, NEW_CA),
        chain(OLD, OLD_CA),
        Published(ENDPOINT, Publication.SECURE, tuple(records), TTL, records),
        NOW,
    )
    assert result.verdict is Verdict.WAIT
    assert result.earliest == JUST_NOW + timedelta(seconds=2 * TTL)
    # At that moment the decision flips to safe.
    after = decide_endpoint(
        chain(NEW_KEY_NEW_CA, NEW_CA),
        chain(OLD, OLD_CA),
        Published(ENDPOINT, Publication.SECURE, tuple(records), TTL, records),
        JUST_NOW + timedelta(seconds=2 * TTL),
    )
    assert after.verdict is Verdict.SAFE


ENDPOINT_STATES: dict[str, tuple[Publication, Mapping[TLSARecord, datetime]]] = {
    "safe": (Publication.SECURE, {ee(NEW_KEY_SAME_CA): LONG_AGO}),
    "wait": (Publication.SECURE, {ee(NEW_KEY_SAME_CA): JUST_NOW}),
    "unsafe": (Publication.SECURE, {ee(OLD): LONG_AGO}),
    "unknown": (Publication.BOGUS, {}),
    "insecure": (Publication.INSECURE, {ee(OLD): LONG_AGO}),
    "no-dane": (Publication.NO_DANE, {}),
}


@pytest.mark.parametrize(
    ("first", "second", "worst"),
    [
        ("safe", "wait", Verdict.WAIT),
        ("wait", "unsafe", Verdict.UNSAFE),
        ("unknown", "safe", Verdict.UNKNOWN),
        ("unknown", "unsafe", Verdict.UNSAFE),
        ("insecure", "no-dane", Verdict.INSECURE),
        ("safe", "no-dane", Verdict.SAFE),
    ],
)
def test_certificate_verdict_is_the_worst_endpoint(first: str, second: str, worst: Verdict) -> None:
    endpoints = []
    for number, state in enumerate((first, second)):
        status, records = ENDPOINT_STATES[state]
        endpoint = f"_25._tcp.mx{number}.example.test."
        endpoints.append(Published(endpoint, status, tuple(records), TTL, records))
    decision = decide(chain(NEW_KEY_SAME_CA, OLD_CA), chain(OLD, OLD_CA), endpoints, NOW)
    assert [d.verdict.value for d in decision.endpoints] == [first, second]
    assert decision.verdict is worst
    assert (decision.earliest is not None) is (worst is Verdict.WAIT)


def test_plan_for_new_key_and_new_intermediate() -> None:
    records = {ee(OLD): LONG_AGO, ta(OLD_CA): LONG_AGO}
    p = Published(ENDPOINT, Publication.SECURE, tuple(records), TTL, records)
    candidate = chain(NEW_KEY_NEW_CA, NEW_CA)
    decision = decide(candidate, chain(OLD, OLD_CA), [p], NOW)
    plan = make_plan(candidate, [], [p], decision, NOW)
    (endpoint,) = plan.endpoints
    assert endpoint.add == (ee(NEW_KEY_NEW_CA), ta(NEW_CA))
    assert set(endpoint.remove) == {ee(OLD), ta(OLD_CA)}
    assert not plan.serve_now


def test_plan_never_removes_what_another_served_chain_uses() -> None:
    rsa_leaf = pki.leaf(OLD_CA, label="decision rsa", key_type=pki.KeyType.RSA_2048)
    records = {ee(OLD): LONG_AGO, ee(rsa_leaf): LONG_AGO, ee(NEW_KEY_SAME_CA): LONG_AGO}
    p = Published(ENDPOINT, Publication.SECURE, tuple(records), TTL, records)
    candidate = chain(NEW_KEY_SAME_CA, OLD_CA)
    decision = decide(candidate, chain(OLD, OLD_CA), [p], NOW)
    plan = make_plan(candidate, [chain(rsa_leaf, OLD_CA)], [p], decision, NOW)
    (endpoint,) = plan.endpoints
    assert decision.verdict is Verdict.SAFE and plan.serve_now
    assert endpoint.add == ()
    assert endpoint.remove == (ee(OLD),)
    assert set(endpoint.keep) == {ee(rsa_leaf), ee(NEW_KEY_SAME_CA)}


def test_plan_ca_pinning_endpoint_needs_nothing_new() -> None:
    records = {ta(OLD_CA): LONG_AGO}
    p = Published(ENDPOINT, Publication.SECURE, tuple(records), TTL, records)
    candidate = chain(NEW_KEY_SAME_CA, OLD_CA)
    plan = make_plan(candidate, [], [p], decide(candidate, None, [p], NOW), NOW)
    assert plan.endpoints[0].add == () and plan.endpoints[0].remove == ()


def test_plan_covers_every_combination_in_use() -> None:
    full_cert = certificate_record(OLD.certificate, 3, 0, 1)
    records = {ee(OLD): LONG_AGO, full_cert: LONG_AGO}
    p = Published(ENDPOINT, Publication.SECURE, tuple(records), TTL, records)
    candidate = chain(NEW_KEY_SAME_CA, OLD_CA)
    plan = make_plan(candidate, [], [p], decide(candidate, None, [p], NOW), NOW)
    assert plan.endpoints[0].add == (
        ee(NEW_KEY_SAME_CA),
        certificate_record(NEW_KEY_SAME_CA.certificate, 3, 0, 1),
    )


def test_plan_warns_about_large_rrsets() -> None:
    filler = {TLSARecord(3, 1, 1, bytes([i]) * 32): LONG_AGO for i in range(MAX_RRSET_RECORDS)}
    p = Published(ENDPOINT, Publication.SECURE, tuple(filler), TTL, filler)
    candidate = chain(NEW_KEY_SAME_CA, OLD_CA)
    plan = make_plan(candidate, [], [p], decide(candidate, None, [p], NOW), NOW)
    (warning,) = plan.endpoints[0].warnings
    assert f"{MAX_RRSET_RECORDS + 1} TLSA records" in warning


# -- issue 15: what enrolled lineages have in use, and the served chain's own verdict ---------


STAGED = pki.leaf(OLD_CA, label="decision staged next key")
STRAY = pki.leaf(OLD_CA, label="decision nobody's key")


def enrolled(
    served: ServedChain | None, held: ServedChain | None, next_key: TLSARecord | None
) -> EnrolledInUse:
    return EnrolledInUse("mx", "acme.sh", (ENDPOINT,), served, held, next_key)


def _plan_with(
    candidate: ServedChain, lineage: EnrolledInUse, replacing: str | None = None
) -> EndpointPlan:
    records = {ee(OLD): LONG_AGO, ee(NEW_KEY_SAME_CA): LONG_AGO, ee(STAGED): LONG_AGO}
    records[ee(STRAY)] = LONG_AGO
    p = Published(ENDPOINT, Publication.SECURE, tuple(records), TTL, records)
    decision = decide(candidate, lineage.served, [p], NOW)
    in_use = in_use_at(candidate, [ENDPOINT], [lineage], replacing=replacing)
    (endpoint,) = make_plan(candidate, [], [p], decision, NOW, in_use=in_use).endpoints
    return endpoint


def test_plan_of_the_served_chain_keeps_the_held_chain_and_the_staged_next_key() -> None:
    served, held = chain(OLD, OLD_CA), chain(NEW_KEY_SAME_CA, OLD_CA)
    endpoint = _plan_with(served, enrolled(served, held, ee(STAGED)))
    assert endpoint.remove == (ee(STRAY),)
    assert set(endpoint.keep) == {ee(OLD), ee(NEW_KEY_SAME_CA), ee(STAGED)}


def test_plan_of_the_held_chain_removes_the_served_ones_keeps_the_staged_next_key() -> None:
    served, held = chain(OLD, OLD_CA), chain(NEW_KEY_SAME_CA, OLD_CA)
    endpoint = _plan_with(held, enrolled(served, held, ee(STAGED)))
    assert set(endpoint.remove) == {ee(OLD), ee(STRAY)}  # step 3: the replaced chain's record
    assert ee(STAGED) in endpoint.keep


def test_plan_of_a_renewal_replaces_the_lineages_served_and_held_chains() -> None:
    served, held = chain(OLD, OLD_CA), chain(STRAY, OLD_CA)
    endpoint = _plan_with(
        chain(NEW_KEY_SAME_CA, OLD_CA), enrolled(served, held, ee(STAGED)), replacing="mx"
    )
    assert set(endpoint.remove) == {ee(OLD), ee(STRAY)}
    assert ee(STAGED) in endpoint.keep


def test_plan_counts_only_the_lineages_at_the_endpoint() -> None:
    served = chain(OLD, OLD_CA)
    elsewhere = EnrolledInUse(
        "other", "certbot", ("_25._tcp.other.example.test.",), None, None, ee(STAGED)
    )
    assert in_use_at(served, [ENDPOINT], [elsewhere]) == {}


def test_the_served_chain_judged_by_itself_is_not_called_new() -> None:
    served = chain(OLD, OLD_CA)
    records = {ee(STRAY): LONG_AGO}
    p = Published(ENDPOINT, Publication.SECURE, tuple(records), TTL, records)
    own = decide_endpoint(served, served, p, NOW)
    assert own.verdict is Verdict.UNSAFE and own.reason.startswith("the served chain fails")
    renewal = decide_endpoint(chain(NEW_KEY_SAME_CA, OLD_CA), served, p, NOW)
    assert renewal.reason.startswith("the new chain would fail")


def test_a_promoted_plan_says_remove_now() -> None:
    records = {ee(OLD): LONG_AGO, ee(NEW_KEY_SAME_CA): LONG_AGO}
    p = Published(ENDPOINT, Publication.SECURE, tuple(records), TTL, records)
    candidate = chain(NEW_KEY_SAME_CA, OLD_CA)
    decision = decide(candidate, chain(OLD, OLD_CA), [p], NOW)
    plan = make_plan(candidate, [], [p], decision, NOW)
    zone = PLAN_RENDERERS[PlanFormat.ZONE]
    before = zone(PlanReport([("mx", decision, plan)], NOW))
    after = zone(PlanReport([("mx", decision, plan)], NOW, frozenset({"mx"})))
    assert "once the new chain is served, remove" in before and "remove now" not in before
    assert "remove now" in after and "once the new chain is served" not in after
    assert ee(OLD).to_text() in after
