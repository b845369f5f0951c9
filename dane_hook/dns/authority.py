"""The authoritative view: what every name server of the zone serves, its serial, who lags.

Records count as published only once every server serves them (RFC 7671 §8.1), so each server
is asked directly, without recursion; the zone, its NS set and their addresses come from the
resolver (dane_hook.dns.zones).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.SOA import SOA

from dane_hook.dns.exchange import (
    ANSWERED,
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    Budget,
    Parsed,
    Resolver,
    TimedOut,
    Unreachable,
    ask_direct,
    find_rrset,
    to_name,
)
from dane_hook.dns.zones import addresses, name_servers, zone_apex
from dane_hook.errors import Error, LookupFailure
from dane_hook.tlsa.record import TLSARecord


@dataclass(frozen=True)
class ServerAnswer:
    """What one authoritative server serves for the owner, asked directly (RD clear)."""

    nameserver: str
    """The NS name the address belongs to."""
    address: str
    port: int
    serial: int | None
    """SOA serial of the zone on this server; None when it did not say."""
    records: tuple[TLSARecord, ...]
    ttl: int | None
    """TTL of the TLSA RRset as the zone publishes it."""
    cname: str | None
    """The owner is a CNAME on this server, to this name (its records live there)."""
    error: str | None
    """Why this server gave no usable answer (timeout, REFUSED, not authoritative...)."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class AuthoritativeView:
    """The TLSA RRset of one owner on every authoritative server of its zone."""

    owner: str
    zone: str
    servers: tuple[ServerAnswer, ...]

    @property
    def published(self) -> frozenset[TLSARecord]:
        """Records served by every server: only these count as published (RFC 7671 §8.1).

        A server that failed to answer serves nothing as far as we know, so then nothing is
        published: it errs on waiting longer, never on serving early.
        """
        if not self.servers:
            return frozenset()
        served = [frozenset(server.records) for server in self.servers]
        return frozenset.intersection(*served)

    @property
    def served_somewhere(self) -> frozenset[TLSARecord]:
        """Records served by at least one server."""
        return frozenset(record for server in self.servers for record in server.records)

    @property
    def newest_serial(self) -> int | None:
        newest: int | None = None
        for server in self.servers:
            if server.serial is not None and (
                newest is None or serial_newer(server.serial, newest)
            ):
                newest = server.serial
        return newest

    def missing(self, server: ServerAnswer) -> frozenset[TLSARecord]:
        """Records some other server serves and this one does not."""
        return self.served_somewhere - frozenset(server.records)

    @property
    def lagging(self) -> tuple[ServerAnswer, ...]:
        """Servers behind the others: failed, missing records, or serving an older serial."""
        newest = self.newest_serial
        return tuple(
            server
            for server in self.servers
            if not server.ok
            or self.missing(server)
            or (
                newest is not None
                and (server.serial is None or serial_newer(newest, server.serial))
            )
        )

    @property
    def in_sync(self) -> bool:
        return bool(self.servers) and not self.lagging


def serial_newer(a: int, b: int) -> bool:
    """`a` is newer than `b` in serial number arithmetic (RFC 1982 §3.2)."""
    return a != b and ((a < b and b - a > 2**31) or (a > b and a - b < 2**31))


def authoritative_view(
    owner: str,
    resolver: Resolver,
    *,
    auth_port: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
) -> AuthoritativeView:
    """Ask every authoritative server of the owner's zone for the TLSA RRset directly.

    The zone cut, the NS set and the servers' addresses come from `resolver`; the servers are
    then asked without recursion on `auth_port` (53 unless a test says otherwise). For an
    owner that is a CNAME, pass `TLSAAnswer.target` to see the zone that holds the records.
    Raises LookupFailure when the zone, its NS set or every address cannot be found.
    To look at many owners, keep one `Authorities` and call its `view()`.
    """
    return Authorities(resolver, auth_port=auth_port, timeout=timeout, tries=tries).view(owner)


_T = TypeVar("_T")


@dataclass(frozen=True)
class _ZoneOnServer:
    """What one server says of the zone itself: its SOA serial, or why it is of no use."""

    serial: int | None
    problem: str | None


class Authorities:
    """The authoritative side as one run sees it: each zone's name servers, their addresses,
    and the SOA serial each serves, asked for once and shared by every owner of the zone.

    Many endpoints live in one zone; without this, each of them would ask the resolver for the
    zone's NS set and addresses, and each server for its SOA, again. A failure is kept too, so
    that a zone whose servers cannot be found costs one timeout, not one per endpoint. Safe to
    use from many threads: a question asked by two at once is sent once, and both wait for it.
    Keep one per run: a later run must see later serials.
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        auth_port: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tries: int = DEFAULT_TRIES,
    ) -> None:
        Budget.start(timeout, tries, None)  # refuses a bad timeout or tries here, once
        self.resolver = resolver
        self.port = 53 if auth_port is None else auth_port
        self.timeout = timeout
        self.tries = tries
        self._lock = threading.Lock()
        self._asked: dict[tuple[object, ...], Future[Any]] = {}

    def _once(self, key: tuple[object, ...], ask: Callable[[], _T]) -> _T:
        """`ask()` the first time `key` is wanted; its result (or its error) every time."""
        with self._lock:
            pending = self._asked.get(key)
            first = pending is None
            if pending is None:
                pending = self._asked[key] = Future()
        if first:
            try:
                pending.set_result(ask())
            except BaseException as exc:  # whatever it is, the threads waiting must hear of it
                pending.set_exception(exc)
        error = pending.exception()
        if error is None:
            return cast(_T, pending.result())
        if isinstance(error, Error):
            # A fresh exception per caller: threads must not share one traceback.
            raise type(error)(str(error), error.hint) from error
        raise error

    def _budget(self) -> Budget:
        return Budget.start(self.timeout, self.tries, None)

    def view(self, owner: str, zone: str | None = None) -> AuthoritativeView:
        """The TLSA RRset of `owner` on every authoritative server of its zone.

        `zone` spares the search for the zone cut when it is known: `TLSAAnswer.zone`, the
        signer of the records' signatures, which RFC 4035 §2.2 makes the zone's apex.
        """
        name = to_name(owner)
        apex = to_name(zone) if zone is not None else None
        if apex is None or not name.is_subdomain(apex):
            apex = zone_apex(name, self.resolver, self._budget())
        parsed: Parsed = {}  # the same question to each server: see exchange()
        answers = tuple(
            self._ask_server(nameserver, address, name, apex, parsed)
            for nameserver, address in self._servers(apex)
        )
        return AuthoritativeView(owner=name.to_text(), zone=apex.to_text(), servers=answers)

    def _servers(self, zone: dns.name.Name) -> tuple[tuple[str, str], ...]:
        """(NS name, address) of every name server of the zone, sorted."""
        return self._once(("servers", zone), lambda: self._find_servers(zone))

    def _find_servers(self, zone: dns.name.Name) -> tuple[tuple[str, str], ...]:
        targets = [
            (ns.to_text(), address)
            for ns in name_servers(zone, self.resolver, self._budget())
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
            for address in self._addresses(ns, rdtype)
        ]
        if not targets:
            raise LookupFailure(
                f"no address for any name server of {zone}", f"check resolver {self.resolver}"
            )
        return tuple(sorted(targets))

    def _addresses(self, ns: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> tuple[str, ...]:
        # One name server often serves many zones (ns1.example.test. serves three in the lab).
        return self._once(
            ("addresses", ns, rdtype),
            lambda: addresses(ns, rdtype, self.resolver, self._budget()),
        )

    def _zone_on(self, address: str, zone: dns.name.Name) -> _ZoneOnServer:
        def ask() -> _ZoneOnServer:
            budget = self._budget()
            try:
                reply = ask_direct(address, self.port, zone, dns.rdatatype.SOA, budget)
            except TimedOut:
                return _ZoneOnServer(None, budget.no_answer())
            except Unreachable as exc:
                return _ZoneOnServer(None, str(exc))
            soa = find_rrset(reply.answer, zone, dns.rdatatype.SOA)
            serial = int(soa[0].serial) if soa is not None and isinstance(soa[0], SOA) else None
            problem = _not_authoritative(reply, zone)
            return _ZoneOnServer(None if problem else serial, problem)

        return self._once(("soa", address, zone), ask)

    def _ask_server(
        self,
        nameserver: str,
        address: str,
        name: dns.name.Name,
        zone: dns.name.Name,
        parsed: Parsed,
    ) -> ServerAnswer:
        port = self.port

        def failed(error: str, serial: int | None = None) -> ServerAnswer:
            return ServerAnswer(nameserver, address, port, serial, (), None, None, error)

        on_server = self._zone_on(address, zone)
        if on_server.problem:
            return failed(on_server.problem)
        serial = on_server.serial
        budget = self._budget()
        try:
            # No DO bit: the signatures are the resolver's business; the smaller answer is
            # quicker to read, and no signature is looked at here.
            reply = ask_direct(
                address, port, name, dns.rdatatype.TLSA, budget, dnssec=False, parsed=parsed
            )
        except TimedOut:
            return failed(budget.no_answer(), serial)
        except Unreachable as exc:
            return failed(str(exc), serial)
        problem = _not_authoritative(reply, zone)
        if problem:
            return failed(problem, serial)
        cname = find_rrset(reply.answer, name, dns.rdatatype.CNAME)
        tlsa = find_rrset(reply.answer, name, dns.rdatatype.TLSA)
        target = cname[0] if cname is not None else None
        return ServerAnswer(
            nameserver=nameserver,
            address=address,
            port=port,
            serial=serial,
            records=tuple(sorted(TLSARecord.from_rdata(rdata) for rdata in tlsa or ())),
            ttl=int(tlsa.ttl) if tlsa is not None else None,
            cname=target.target.to_text() if isinstance(target, CNAME) else None,
            error=None,
        )


def _not_authoritative(reply: dns.message.Message, zone: dns.name.Name) -> str | None:
    if reply.rcode() not in ANSWERED:
        return f"answered {dns.rcode.to_text(reply.rcode())} for {zone}"
    # RFC 1035 §4.1.1: only an answer with AA set comes from the zone itself (else: lame).
    if not reply.flags & dns.flags.AA:
        return f"not authoritative for {zone} (answer without AA: lame delegation)"
    return None
