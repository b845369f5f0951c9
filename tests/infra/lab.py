"""The DNS lab: a signed `test.` parent, its children, two authoritative servers, resolvers.

    test.            signed; trust anchor of every validating resolver (its DS)
    ├ example.test.  signed, secure delegation (DS in test.), NS ns1 + ns2: Knot primary on
    │                127.0.0.2 and a Knot secondary on 127.0.0.3, both on `auth_port`
    ├ other.test.    signed, secure delegation; a CNAME target zone (primary only)
    ├ unsigned.test. not signed, insecure delegation (NSEC proves there is no DS)
    └ extra zones    optional (`extra_zones`), served like example.test.: signed, secure
                     delegation, on both servers (the bench puts thousands of records there)

Everything listens on loopback only, on ports picked at run time. Every daemon is stopped by
its PID in `close()`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import dns.name

from tests.infra.knot import KnotPrimary, KnotSecondary, Zone
from tests.infra.procs import LabError, free_port, wait_until
from tests.infra.tamper import TamperProxy
from tests.infra.unbound import Unbound
from tests.infra.wire import Updater, ds_texts

PRIMARY_ADDRESS = "127.0.0.2"
SECONDARY_ADDRESS = "127.0.0.3"
PARENT = "test."
EXAMPLE = "example.test."
OTHER = "other.test."
UNSIGNED = "unsigned.test."

# A record that is in example.test. from the start: `_25._tcp.mail.example.test. TLSA`.
BASELINE_OWNER = "_25._tcp.mail.example.test."
BASELINE_RECORD = "3 1 1 " + "5a" * 32

_SOA_TIMERS = "1 3600 900 604800 60"  # negative TTL 60 s (RFC 2308 §5)


def _zone_texts(extra_zones: Mapping[str, str]) -> dict[str, str]:
    delegations = "".join(
        f"{label} NS ns1.example\n{label} NS ns2.example\n"
        for label in map(_relative_to_parent, extra_zones)
    )
    extra = {
        name: f"""$ORIGIN {name}
$TTL 300
@    SOA ns1.example.test. hostmaster {_SOA_TIMERS}
@    NS  ns1.example.test.
@    NS  ns2.example.test.
{records}"""
        for name, records in extra_zones.items()
    }
    return {
        PARENT: f"""$ORIGIN test.
$TTL 300
@           SOA  ns hostmaster {_SOA_TIMERS}
@           NS   ns
ns          A    {PRIMARY_ADDRESS}
example     NS   ns1.example
example     NS   ns2.example
ns1.example A    {PRIMARY_ADDRESS}
ns2.example A    {SECONDARY_ADDRESS}
other       NS   ns1.example
unsigned    NS   ns1.example
{delegations}""",
        EXAMPLE: f"""$ORIGIN example.test.
$TTL 300
@             SOA  ns1 hostmaster {_SOA_TIMERS}
@             NS   ns1
@             NS   ns2
ns1           A    {PRIMARY_ADDRESS}
ns2           A    {SECONDARY_ADDRESS}
mail          A    127.0.0.1
_25._tcp.mail TLSA {BASELINE_RECORD}
""",
        OTHER: f"""$ORIGIN other.test.
$TTL 300
@    SOA ns1.example.test. hostmaster {_SOA_TIMERS}
@    NS  ns1.example.test.
mx   A   127.0.0.1
""",
        UNSIGNED: f"""$ORIGIN unsigned.test.
$TTL 300
@    SOA ns1.example.test. hostmaster {_SOA_TIMERS}
@    NS  ns1.example.test.
mail A   127.0.0.1
""",
        **extra,
    }


def _relative_to_parent(zone: str) -> str:
    """The label of a child of `test.` (`bench.test.` -> `bench`); deeper names are refused."""
    name = dns.name.from_text(zone)
    if len(name) != 3 or not name.is_subdomain(dns.name.from_text(PARENT)):
        raise LabError(f"extra zone {zone!r}: give an absolute child of {PARENT}, e.g. bench.test.")
    return name.labels[0].decode()


class DnsLab:
    """The authoritative side (primary + secondary) and the validating resolver.

    Optional parts (the resolver behind the tamper proxy, a non-validating resolver) are
    started on first use by `tamper_resolver()` / `plain_resolver()` and stopped with the lab.
    """

    def __init__(self, home: Path, extra_zones: Mapping[str, str] | None = None) -> None:
        """`extra_zones`: zone name (a child of `test.`) -> its records, in zone file syntax
        relative to the zone; the lab adds SOA, NS and the secure delegation."""
        self.home = home
        self.auth_port = free_port(PRIMARY_ADDRESS, SECONDARY_ADDRESS)
        extra = dict(extra_zones or {})
        texts = _zone_texts(extra)
        self.zones = [
            Zone(PARENT, texts[PARENT], signed=True),
            Zone(EXAMPLE, texts[EXAMPLE], signed=True, replicated=True),
            Zone(OTHER, texts[OTHER], signed=True),
            Zone(UNSIGNED, texts[UNSIGNED], signed=False),
            *(Zone(name, texts[name], signed=True, replicated=True) for name in extra),
        ]
        self.primary = KnotPrimary(
            home / "primary", PRIMARY_ADDRESS, self.auth_port, self.zones, SECONDARY_ADDRESS
        )
        self.secondary = KnotSecondary(
            home / "secondary",
            SECONDARY_ADDRESS,
            self.auth_port,
            [zone.name for zone in self.zones if zone.replicated],
            PRIMARY_ADDRESS,
        )
        self.updater = Updater(
            PRIMARY_ADDRESS, self.auth_port, KnotPrimary.KEY_NAME, self.primary.tsig_secret
        )
        self.resolver: Unbound | None = None
        self._tamper: tuple[TamperProxy, Unbound] | None = None
        self._plain: Unbound | None = None
        self._held: set[str] = set()
        self.startup_seconds = 0.0

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        begin = time.monotonic()
        try:
            self.primary.start()
            self.primary.wait_ready()
            self.secondary.start()  # transfers while the parent gets its DS records
            self._delegate_securely()
            self.resolver = self._unbound("unbound", self.primary_upstream, self.trust_anchors())
            self.resolver.start()
            for zone in self.zones:
                if zone.replicated:
                    self.wait_secondary_synced(zone.name)
            self.resolver.wait_ready(EXAMPLE)
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - begin

    def close(self) -> None:
        """Stop everything this lab started, each by its PID; safe to call twice."""
        if self._tamper is not None:
            proxy, behind_proxy = self._tamper
            behind_proxy.stop()
            proxy.stop()
            self._tamper = None
        for unbound in (self._plain, self.resolver):
            if unbound is not None:
                unbound.stop()
        self._plain = None
        self.resolver = None
        self.secondary.stop()
        self.primary.stop()

    @property
    def primary_upstream(self) -> tuple[str, int]:
        return (PRIMARY_ADDRESS, self.auth_port)

    def _delegate_securely(self) -> None:
        """Put the DS of each signed child into `test.` (RFC 4035 §2.4), as a registrar would."""
        adds = [
            (zone.name, 300, "DS", ds)
            for zone in self.zones
            if zone.signed and zone.name != PARENT
            for ds in ds_texts(PRIMARY_ADDRESS, self.auth_port, zone.name)
        ]
        self.updater.send(PARENT, add=adds)

    def trust_anchors(self) -> list[str]:
        """`test. DS ...` lines: the lab's only trust anchor (RFC 4033 §2, `trust-anchor-file`)."""
        return [f"{PARENT} IN DS {ds}" for ds in ds_texts(PRIMARY_ADDRESS, self.auth_port, PARENT)]

    def _unbound(
        self, name: str, upstream: tuple[str, int], anchors: Sequence[str] | None
    ) -> Unbound:
        return Unbound(
            name,
            self.home / name,
            free_port(),
            upstream,
            [zone.name for zone in self.zones],
            anchors,
        )

    def _resolvers(self) -> list[Unbound]:
        found = [self.resolver, self._plain, self._tamper[1] if self._tamper else None]
        return [unbound for unbound in found if unbound is not None]

    def tamper_resolver(self) -> tuple[TamperProxy, Unbound]:
        """A validating unbound that reaches the primary only through the tamper proxy."""
        if self._tamper is None:
            proxy = TamperProxy(free_port(), self.primary_upstream)
            proxy.start()
            unbound = self._unbound(
                "unbound-tamper", (proxy.address, proxy.port), self.trust_anchors()
            )
            self._tamper = (proxy, unbound)
            unbound.start()
            unbound.wait_ready(EXAMPLE)
        return self._tamper

    def plain_resolver(self) -> Unbound:
        """An unbound that resolves but does not validate: it never sets AD."""
        if self._plain is None:
            self._plain = self._unbound("unbound-plain", self.primary_upstream, None)
            self._plain.start()
            self._plain.wait_ready(EXAMPLE)
        return self._plain

    # -- changing the zones -----------------------------------------------------------------

    def zone_of(self, owner: str) -> str:
        """The lab zone that holds `owner` (the longest zone name it ends with)."""
        name = dns.name.from_text(owner)
        candidates = [z.name for z in self.zones if name.is_subdomain(dns.name.from_text(z.name))]
        if not candidates:
            raise LabError(f"{owner} is in none of the lab's zones")
        return max(candidates, key=len)

    def update(
        self,
        owner: str,
        *,
        add: Sequence[tuple[int, str, str]] = (),
        delete: Sequence[tuple[str, str | None]] = (),
    ) -> int:
        """One RFC 2136 update at `owner`; waits until it is served, flushes resolver caches.

        Returns the zone's new SOA serial on the primary. When the zone is replicated and the
        secondary is not held, this also waits until the secondary serves that serial.
        """
        zone = self.zone_of(owner)
        before = self.primary.serial(zone) or 0
        self.updater.send(
            zone,
            add=[(owner, ttl, rdtype, rdata) for ttl, rdtype, rdata in add],
            delete=[(owner, rdtype, rdata) for rdtype, rdata in delete],
        )
        wait_until(
            lambda: (self.primary.serial(zone) or 0) != before,
            f"the primary to serve the update of {zone}",
            5.0,
        )
        self.primary.run_pending_notify(zone)
        serial = self.primary.serial(zone) or 0
        if any(z.name == zone and z.replicated for z in self.zones) and zone not in self._held:
            # Knot sends its NOTIFY about a second after an update; pull at once instead.
            self.secondary.refresh(zone)
            self.wait_secondary_synced(zone)
        self.flush(zone)
        return serial

    def add_records(self, owner: str, ttl: int, records: Sequence[str]) -> int:
        """Add TLSA records ("3 1 1 hex") at `owner`; returns the new serial."""
        return self.update(owner, add=[(ttl, "TLSA", record) for record in records])

    def delete_records(self, owner: str, records: Sequence[str] | None = None) -> int:
        """Delete these TLSA records at `owner`, or the whole TLSA RRset when `records` is None."""
        if records is None:
            return self.update(owner, delete=[("TLSA", None)])
        return self.update(owner, delete=[("TLSA", record) for record in records])

    def flush(self, zone: str = PARENT) -> None:
        """Empty every running resolver's cache at and below `zone`."""
        for unbound in self._resolvers():
            unbound.flush_zone(zone)

    # -- the secondary ----------------------------------------------------------------------

    def wait_secondary_synced(self, zone: str = EXAMPLE, timeout: float = 10.0) -> None:
        def synced() -> bool:
            want = self.primary.serial(zone)
            return want is not None and self.secondary.serial(zone) == want

        wait_until(
            synced, f"the secondary to serve {zone}", timeout, self.secondary.daemon.check_alive
        )

    @contextlib.contextmanager
    def secondary_held(self, zone: str = EXAMPLE) -> Iterator[None]:
        """Inside: updates of `zone` reach the primary only. After: the secondary catches up."""
        self.secondary.hold(zone)
        self._held.add(zone)
        try:
            yield
        finally:
            self._held.discard(zone)
            self.secondary.release(zone)
            self.wait_secondary_synced(zone)
