"""dane_hook.dns.lookup against real servers: Knot (signed zones, two authoritative servers) and
validating Unbound, started once per session by tests/infra. No mocks."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import pytest

from dane_hook.dns.lookup import (
    AuthoritativeView,
    InsecureCause,
    Resolver,
    ServerAnswer,
    Status,
    authoritative_view,
    find_zone,
    lookup_tlsa,
    serial_newer,
)
from dane_hook.errors import LookupFailure, UsageError
from dane_hook.tlsa.record import TLSARecord
from tests.infra.lab import (
    BASELINE_OWNER,
    BASELINE_RECORD,
    EXAMPLE,
    OTHER,
    PRIMARY_ADDRESS,
    SECONDARY_ADDRESS,
    UNSIGNED,
    DnsLab,
)

slow = pytest.mark.slow
Owner = Callable[..., str]
Add = Callable[[str, int, list[str]], int]


def digest(seed: str, size: int = 32) -> str:
    """A stable fake digest, distinct per seed."""
    return hashlib.sha512(seed.encode()).hexdigest()[: size * 2]


def records(*texts: str) -> tuple[TLSARecord, ...]:
    return tuple(sorted(TLSARecord.from_text(text) for text in texts))


# -- resolver addresses (no servers needed) -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address", "port"),
    [
        ("127.0.0.1", "127.0.0.1", 53),
        ("127.0.0.1:5301", "127.0.0.1", 5301),
        (" 192.0.2.1:53 ", "192.0.2.1", 53),
        ("::1", "::1", 53),
        ("2001:db8::53", "2001:db8::53", 53),
        ("[::1]", "::1", 53),
        ("[::1]:5301", "::1", 5301),
    ],
)
def test_resolver_parse(text: str, address: str, port: int) -> None:
    resolver = Resolver.parse(text)
    assert (resolver.address, resolver.port) == (address, port)
    assert Resolver.parse(str(resolver)) == resolver


@pytest.mark.parametrize(
    "text", ["resolver.example", "127.0.0.1:0", "127.0.0.1:65536", "[::1", "[::1]5301", "1.2.3:x"]
)
def test_resolver_parse_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        Resolver.parse(text)


def test_resolver_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example.test\nnameserver not-an-ip\nnameserver ::1\n")
    assert Resolver.from_resolv_conf(conf) == Resolver("::1", 53)
    conf.write_text("options edns0\n")
    with pytest.raises(LookupFailure, match="no usable nameserver"):
        Resolver.from_resolv_conf(conf)
    with pytest.raises(LookupFailure, match="cannot read"):
        Resolver.from_resolv_conf(tmp_path / "missing")


def test_serial_arithmetic() -> None:
    # RFC 1982 §3.2: comparison wraps around 2**32.
    assert serial_newer(2, 1)
    assert not serial_newer(1, 2)
    assert not serial_newer(7, 7)
    assert serial_newer(3, 2**32 - 5)
    assert not serial_newer(2**32 - 5, 3)


def test_view_published_needs_every_server() -> None:
    old, new = records("3 1 1 " + digest("old"), "3 1 1 " + digest("new"))
    ns1 = ServerAnswer("ns1.", "192.0.2.1", 53, 8, (old, new), 300, None, None)
    ns2 = ServerAnswer("ns2.", "192.0.2.2", 53, 7, (old,), 300, None, None)
    down = ServerAnswer("ns3.", "192.0.2.3", 53, None, (), None, None, "no answer")
    view = AuthoritativeView("_25._tcp.mx.example.", "example.", (ns1, ns2))
    assert view.published == {old}
    assert view.lagging == (ns2,)
    assert view.missing(ns2) == {new}
    assert view.newest_serial == 8
    assert not view.in_sync
    assert AuthoritativeView("x.", "example.", (ns1, down)).published == frozenset()


# -- through the validating resolver --------------------------------------------------------


@slow
def test_lab_comes_up_quickly(dns_lab: DnsLab) -> None:
    assert dns_lab.startup_seconds < 5.0, f"lab startup took {dns_lab.startup_seconds:.2f} s"


@slow
def test_secure_records_equal_what_was_added(
    lab_resolver: Resolver, add_records: Add, fresh_owner: Owner
) -> None:
    owner = fresh_owner()
    added = ["3 1 1 " + digest(owner), "2 1 1 " + digest(owner + "ta")]
    add_records(owner, 120, added)

    answer = lookup_tlsa(owner, lab_resolver)

    assert answer.status is Status.SECURE
    assert answer.secure
    assert answer.records == records(*added)
    assert answer.signed_ttl == 120
    assert answer.ttl is not None and 110 <= answer.ttl <= 120
    assert answer.cname_chain == ()
    assert answer.target == owner
    assert answer.rcode == "NOERROR"
    assert not answer.via_tcp
    assert answer.insecure_cause is None
    assert "2 TLSA records" in answer.reason and "validated" in answer.reason


@slow
def test_record_from_the_zone_file_is_secure(lab_resolver: Resolver) -> None:
    answer = lookup_tlsa(BASELINE_OWNER, lab_resolver)
    assert answer.status is Status.SECURE
    assert answer.records == records(BASELINE_RECORD)
    assert answer.signed_ttl == 300


@slow
def test_secure_nxdomain_is_no_dane(lab_resolver: Resolver, fresh_owner: Owner) -> None:
    answer = lookup_tlsa(fresh_owner(), lab_resolver)
    assert answer.status is Status.NO_DANE
    assert answer.secure
    assert answer.rcode == "NXDOMAIN"
    assert answer.records == ()
    # RFC 2308 §5: negative TTL = min(SOA TTL, SOA MINIMUM) = 60 in the lab zones.
    assert answer.signed_ttl == 60
    assert answer.ttl is not None and 0 < answer.ttl <= 60
    assert "NXDOMAIN" in answer.reason


@slow
def test_secure_nodata_is_no_dane(
    dns_lab: DnsLab, lab_resolver: Resolver, fresh_owner: Owner
) -> None:
    owner = fresh_owner()
    dns_lab.update(owner, add=[(300, "TXT", '"not a TLSA record"')])
    answer = lookup_tlsa(owner, lab_resolver)
    assert answer.status is Status.NO_DANE
    assert answer.rcode == "NOERROR"
    assert answer.records == ()
    assert "NODATA" in answer.reason


@slow
def test_record_deleted_becomes_no_dane(
    lab_resolver: Resolver, add_records: Add, delete_records: Callable[..., int], fresh_owner: Owner
) -> None:
    owner = fresh_owner()
    keep, drop = "3 1 1 " + digest(owner), "3 1 1 " + digest(owner + "x")
    add_records(owner, 300, [keep, drop])
    delete_records(owner, [drop])
    assert lookup_tlsa(owner, lab_resolver).records == records(keep)
    delete_records(owner)
    assert lookup_tlsa(owner, lab_resolver).status is Status.NO_DANE


@slow
def test_unsigned_zone_is_insecure(
    lab_resolver: Resolver, add_records: Add, fresh_owner: Owner
) -> None:
    owner = fresh_owner(UNSIGNED)
    added = ["3 1 1 " + digest(owner)]
    add_records(owner, 300, added)

    answer = lookup_tlsa(owner, lab_resolver)

    assert answer.status is Status.INSECURE
    assert not answer.secure
    assert answer.insecure_cause is InsecureCause.UNSIGNED
    assert answer.records == records(*added)
    assert answer.signed_ttl is None  # no RRSIG came back
    assert "no DNSSEC chain of trust" in answer.reason


@slow
def test_unsigned_zone_denial_is_insecure(lab_resolver: Resolver, fresh_owner: Owner) -> None:
    answer = lookup_tlsa(fresh_owner(UNSIGNED), lab_resolver)
    assert answer.status is Status.INSECURE
    assert answer.insecure_cause is InsecureCause.UNSIGNED
    assert answer.records == ()
    assert answer.rcode == "NXDOMAIN"


@slow
def test_resolver_that_does_not_validate(plain_resolver: Resolver) -> None:
    answer = lookup_tlsa(BASELINE_OWNER, plain_resolver)
    assert answer.status is Status.INSECURE
    assert answer.insecure_cause is InsecureCause.RESOLVER_NOT_VALIDATING
    assert answer.records == records(BASELINE_RECORD)  # the data are there, just not validated
    assert "does not validate" in answer.reason


@slow
def test_forged_answer_is_bogus_with_ede_6(
    dns_lab: DnsLab, tamper_resolver: Resolver, lab_resolver: Resolver
) -> None:
    proxy, _ = dns_lab.tamper_resolver()
    forged_before = proxy.forged

    answer = lookup_tlsa(BASELINE_OWNER, tamper_resolver)

    assert answer.status is Status.BOGUS
    assert answer.rcode == "SERVFAIL"
    assert 6 in [ede.code for ede in answer.extended_errors]  # RFC 8914 §4.7 DNSSEC Bogus
    assert answer.records == ()
    assert answer.ttl is None
    assert "EDE 6 (DNSSEC Bogus)" in answer.reason
    assert proxy.forged > forged_before  # the proxy really forged something
    # The same name through the honest path validates.
    assert lookup_tlsa(BASELINE_OWNER, lab_resolver).status is Status.SECURE


@slow
def test_forged_denial_path_is_left_alone(tamper_resolver: Resolver, fresh_owner: Owner) -> None:
    # Only TLSA rdata is forged: a denial through the proxy still validates.
    assert lookup_tlsa(fresh_owner(), tamper_resolver).status is Status.NO_DANE


@slow
def test_cname_into_other_zone_is_followed_with_smallest_ttl(
    dns_lab: DnsLab, lab_resolver: Resolver, add_records: Add, fresh_owner: Owner, auth_port: int
) -> None:
    target = fresh_owner(OTHER)
    owner = fresh_owner()
    added = ["3 1 1 " + digest(target)]
    add_records(target, 300, added)
    dns_lab.update(owner, add=[(60, "CNAME", target)])

    answer = lookup_tlsa(owner, lab_resolver)

    assert answer.status is Status.SECURE
    assert answer.cname_chain == (target,)
    assert answer.target == target
    assert answer.records == records(*added)
    assert answer.signed_ttl == 60  # the CNAME's, smaller than the TLSA RRset's 300
    assert answer.ttl is not None and 50 <= answer.ttl <= 60
    assert f"CNAME to {target}" in answer.reason

    view = authoritative_view(answer.target, lab_resolver, auth_port=auth_port)
    assert view.zone == OTHER
    assert view.published == set(records(*added))
    owner_view = authoritative_view(owner, lab_resolver, auth_port=auth_port)
    assert owner_view.zone == EXAMPLE
    assert {server.cname for server in owner_view.servers} == {target}


@slow
def test_cname_into_unsigned_zone_is_insecure(
    dns_lab: DnsLab, lab_resolver: Resolver, add_records: Add, fresh_owner: Owner
) -> None:
    target = fresh_owner(UNSIGNED)
    owner = fresh_owner()
    add_records(target, 300, ["3 1 1 " + digest(target)])
    dns_lab.update(owner, add=[(300, "CNAME", target)])

    answer = lookup_tlsa(owner, lab_resolver)

    # RFC 7671 §7: one insecure step makes the whole chain insecure.
    assert answer.status is Status.INSECURE
    assert answer.insecure_cause is InsecureCause.UNSIGNED
    assert answer.cname_chain == (target,)


@slow
def test_truncated_answer_is_retried_over_tcp(
    lab_resolver: Resolver, add_records: Add, fresh_owner: Owner, auth_port: int
) -> None:
    owner = fresh_owner()
    added = [f"3 1 2 {digest(f'{owner}{n}', 64)}" for n in range(40)]
    add_records(owner, 300, added)
    # The premise: over UDP with a 1232-byte buffer the answer does not fit (40 x 79 bytes).
    probe = dns.message.make_query(owner, "TLSA", want_dnssec=True, payload=1232)
    udp = dns.query.udp(probe, lab_resolver.address, port=lab_resolver.port, timeout=2)
    assert udp.flags & dns.flags.TC

    answer = lookup_tlsa(owner, lab_resolver)

    assert answer.via_tcp
    assert answer.status is Status.SECURE
    assert answer.records == records(*added)
    view = authoritative_view(owner, lab_resolver, auth_port=auth_port)
    assert view.published == set(records(*added))


# -- the authoritative view -----------------------------------------------------------------


@slow
def test_zone_cut_is_found(lab_resolver: Resolver, fresh_owner: Owner) -> None:
    assert find_zone(fresh_owner(), lab_resolver) == EXAMPLE
    assert find_zone(EXAMPLE, lab_resolver) == EXAMPLE
    assert find_zone(fresh_owner(UNSIGNED), lab_resolver) == UNSIGNED


@slow
def test_lagging_secondary_then_caught_up(
    dns_lab: DnsLab, lab_resolver: Resolver, add_records: Add, fresh_owner: Owner, auth_port: int
) -> None:
    owner = fresh_owner()
    old = "3 1 1 " + digest(owner)
    new = "3 1 1 " + digest(owner + "new")
    add_records(owner, 300, [old])

    with dns_lab.secondary_held():
        serial = add_records(owner, 300, [new])
        view = authoritative_view(owner, lab_resolver, auth_port=auth_port)

        assert view.zone == EXAMPLE
        by_address = {server.address: server for server in view.servers}
        assert set(by_address) == {PRIMARY_ADDRESS, SECONDARY_ADDRESS}
        primary, secondary = by_address[PRIMARY_ADDRESS], by_address[SECONDARY_ADDRESS]
        assert primary.nameserver == f"ns1.{EXAMPLE}" and secondary.nameserver == f"ns2.{EXAMPLE}"
        assert primary.records == records(old, new)
        assert secondary.records == records(old)
        assert primary.serial == serial
        assert secondary.serial is not None and serial_newer(serial, secondary.serial)
        assert view.published == set(records(old))
        assert view.lagging == (secondary,)
        assert view.missing(secondary) == set(records(new))
        # The resolver already sees the new record: seen is not the same as published.
        assert lookup_tlsa(owner, lab_resolver).records == records(old, new)

    caught_up = authoritative_view(owner, lab_resolver, auth_port=auth_port)
    assert caught_up.published == set(records(old, new))
    assert caught_up.in_sync
    assert {server.serial for server in caught_up.servers} == {serial}
    assert all(server.ttl == 300 and server.ok for server in caught_up.servers)


@slow
def test_unreachable_authoritative_servers_publish_nothing(
    lab_resolver: Resolver, dead_resolver: Resolver
) -> None:
    view = authoritative_view(BASELINE_OWNER, lab_resolver, auth_port=dead_resolver.port)
    assert len(view.servers) == 2
    assert all(not server.ok and "refused" in (server.error or "") for server in view.servers)
    assert view.published == frozenset()
    assert len(view.lagging) == 2


# -- failures: bounded and quick ------------------------------------------------------------


@slow
def test_resolver_down_fails_fast(dead_resolver: Resolver) -> None:
    start = time.monotonic()
    answer = lookup_tlsa(BASELINE_OWNER, dead_resolver, timeout=2.0, tries=3)
    elapsed = time.monotonic() - start
    assert answer.status is Status.FAILED
    assert "refused" in answer.reason
    assert answer.records == () and answer.ttl is None and answer.rcode is None
    assert elapsed < 0.5
    with pytest.raises(LookupFailure, match="refused"):
        authoritative_view(BASELINE_OWNER, dead_resolver)


@slow
def test_silent_resolver_times_out_within_the_bound(silent_resolver: Resolver) -> None:
    start = time.monotonic()
    answer = lookup_tlsa(BASELINE_OWNER, silent_resolver, timeout=0.2, tries=2)
    elapsed = time.monotonic() - start
    assert answer.status is Status.TIMEOUT
    assert "2 x 0.2 s" in answer.reason
    assert 0.35 <= elapsed < 1.0
    start = time.monotonic()
    capped = lookup_tlsa(BASELINE_OWNER, silent_resolver, timeout=0.5, tries=5, lifetime=0.3)
    assert capped.status is Status.TIMEOUT
    assert time.monotonic() - start < 0.6
