"""Published TLSA RRsets, as a validating resolver and as each authoritative server serves them.

The only module of dane-hook that does DNS I/O (dnspython). Nothing here prints or exits: a
lookup returns an answer with a status, and raises `LookupFailure` only when there is no status
to give (no resolver configured, no zone or name servers found for the authoritative view).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar, cast

import dns.edns
import dns.entropy
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.RRSIG import RRSIG
from dns.rdtypes.ANY.SOA import SOA

from dane_hook.errors import Error, LookupFailure, UsageError
from dane_hook.tlsa.record import TLSARecord

DEFAULT_TIMEOUT = 2.0
"""Seconds to wait for one answer to one try."""
DEFAULT_TRIES = 2
"""UDP tries per query before giving up (a truncated answer adds one TCP exchange)."""
EDNS_PAYLOAD = 1232
"""EDNS UDP payload we offer: DNS Flag Day 2020, fits any path without IP fragmentation."""
MAX_CNAME_HOPS = 8
"""Longest CNAME chain followed; longer ones are treated as a failed lookup (as resolvers do)."""

_IN = dns.rdataclass.IN
_OK_RCODES = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)


# -- the resolver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolver:
    """Where recursive queries go: an IP address and a port."""

    address: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Resolver:
        """`ADDR`, `ADDR:PORT`, `IPV6`, or `[IPV6]:PORT` (for example `[::1]:5301`)."""
        spec = text.strip()
        port_text: str | None = None
        if spec.startswith("["):
            host, closed, rest = spec[1:].partition("]")
            if not closed or (rest and not rest.startswith(":")):
                raise UsageError(f"resolver {text!r}: write an IPv6 address as [ADDR]:PORT")
            port_text = rest[1:] if rest else None
        elif spec.count(":") == 1:
            host, port_text = spec.split(":")
        else:
            host = spec
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError as exc:
            raise UsageError(
                f"resolver {text!r}: {host!r} is not an IP address",
                "give the resolver as ADDR[:PORT], for example 127.0.0.1:53 or [::1]:53",
            ) from exc
        if port_text is None:
            return cls(address)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"resolver {text!r}: port {port_text!r} is not between 1 and 65535")
        return cls(address, int(port_text))

    @classmethod
    def from_resolv_conf(cls, path: str | Path = "/etc/resolv.conf") -> Resolver:
        """The first `nameserver` of resolv.conf(5), on port 53."""
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError as exc:
            raise LookupFailure(
                f"cannot read {path}: {exc.strerror}",
                "give the resolver with --resolver ADDR[:PORT]",
            ) from exc
        for line in lines:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                try:
                    return cls(str(ipaddress.ip_address(fields[1])))
                except ValueError:
                    continue
        raise LookupFailure(
            f"no usable nameserver line in {path}", "give the resolver with --resolver ADDR[:PORT]"
        )


# -- what a lookup returns ------------------------------------------------------------------


class Status(Enum):
    """The DNSSEC status of a TLSA lookup, as DANE clients act on it (RFC 7672 §2.2)."""

    SECURE = "secure"
    """Records present and validated (AD): they constrain the certificate."""
    INSECURE = "insecure"
    """Answer without AD: DANE clients ignore the records (if any); they protect nothing."""
    NO_DANE = "no-dane"
    """Validated NXDOMAIN or NODATA: no TLSA records, DANE is not in use at the endpoint."""
    BOGUS = "bogus"
    """Validation failed (SERVFAIL): DANE clients defer delivery."""
    TIMEOUT = "timeout"
    """The resolver did not answer in time."""
    FAILED = "failed"
    """No usable answer: refused, unreachable, SERVFAIL without bad signatures, a CNAME loop."""


class InsecureCause(Enum):
    """Why an answer came without AD (only meaningful when the status is INSECURE)."""

    UNSIGNED = "unsigned"
    """The resolver validates, and there is no chain of trust to the zone: the zone is not
    signed or its parent has no DS for it (RFC 4035 §5.2, an insecure delegation)."""
    RESOLVER_NOT_VALIDATING = "resolver-not-validating"
    """The resolver set AD on nothing, not even a DNSKEY RRset above the name: it does not
    validate (or strips AD), so the missing AD tells nothing about the zone."""
    UNKNOWN = "unknown"
    """The queries that would tell got no answer."""


# RFC 8914 §4 (and the IANA registry) codes that say DNSSEC validation failed.
DNSSEC_EDE_CODES = frozenset({1, 2, 5, 6, 7, 8, 9, 10, 11, 12})
_EDE_NAMES = {
    0: "Other Error",
    1: "Unsupported DNSKEY Algorithm",
    2: "Unsupported DS Digest Type",
    3: "Stale Answer",
    4: "Forged Answer",
    5: "DNSSEC Indeterminate",
    6: "DNSSEC Bogus",
    7: "Signature Expired",
    8: "Signature Not Yet Valid",
    9: "DNSKEY Missing",
    10: "RRSIGs Missing",
    11: "No Zone Key Bit Set",
    12: "NSEC Missing",
    13: "Cached Error",
    14: "Not Ready",
    15: "Blocked",
    16: "Censored",
    17: "Filtered",
    18: "Prohibited",
    19: "Stale NXDomain Answer",
    20: "Not Authoritative",
    21: "Not Supported",
    22: "No Reachable Authority",
    23: "Network Error",
    24: "Invalid Data",
}


@dataclass(frozen=True)
class ExtendedError:
    """An Extended DNS Error option of the answer (RFC 8914)."""

    code: int
    text: str = ""

    def __str__(self) -> str:
        name = _EDE_NAMES.get(self.code, "Unknown")
        return f"EDE {self.code} ({name})" + (f": {self.text}" if self.text else "")


@dataclass(frozen=True)
class TLSAAnswer:
    """The TLSA RRset of one owner name as a validating resolver sees it."""

    owner: str
    """The name asked for, `_PORT._PROTO.HOST.` (absolute)."""
    status: Status
    records: tuple[TLSARecord, ...]
    """The RRset at the end of the CNAME chain, sorted; empty on denial or failure."""
    ttl: int | None
    """Smallest TTL on the way (CNAMEs included) as the resolver answered, i.e. what is left
    in its cache; for a denial, the negative TTL (RFC 2308 §5). None when nothing came back."""
    signed_ttl: int | None
    """Smallest original TTL in the RRSIGs on the way (RFC 4034 §3.1.4): the TTL the zone
    publishes, whatever the cache has left. None when no signatures came back."""
    cname_chain: tuple[str, ...]
    """Names the owner led to through CNAMEs (RFC 7671 §7), in order; empty without CNAME."""
    rcode: str | None
    """The resolver's final rcode (NOERROR, NXDOMAIN, SERVFAIL...), None without an answer."""
    extended_errors: tuple[ExtendedError, ...]
    insecure_cause: InsecureCause | None
    via_tcp: bool
    """Some answer came truncated over UDP and was asked again over TCP (RFC 7766 §5)."""
    resolver: Resolver
    reason: str
    """One line for people: what was found and what it means."""
    zone: str | None = None
    """The zone that holds the records: the signer's name of their RRSIG, which RFC 4035 §2.2
    makes the zone's apex. None without signed records (denial, failure, no signature)."""

    @property
    def target(self) -> str:
        """The name that holds the records: the end of the CNAME chain, or the owner."""
        return self.cname_chain[-1] if self.cname_chain else self.owner

    @property
    def secure(self) -> bool:
        """The answer was validated (records, or their absence, are DNSSEC-proven)."""
        return self.status in (Status.SECURE, Status.NO_DANE)


# -- sending queries ------------------------------------------------------------------------


class _Timeout(Exception):
    pass


class _Unreachable(Exception):
    pass


@dataclass
class _Budget:
    """Per-try timeout, tries per query, and a deadline for the whole lookup."""

    timeout: float
    tries: int
    deadline: float

    @classmethod
    def start(cls, timeout: float, tries: int, lifetime: float | None) -> _Budget:
        if timeout <= 0 or tries < 1:
            raise UsageError(f"timeout {timeout} and tries {tries} must be positive")
        total = lifetime if lifetime is not None else timeout * tries * 4
        return cls(timeout, tries, time.monotonic() + total)

    def next_timeout(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Timeout
        return min(self.timeout, left)


# RFC 1035 §4.1.1 header; §4.1.2 question tail (QTYPE, QCLASS); RFC 6891 §6.1.2 OPT RR with an
# empty owner name (the root), CLASS = UDP payload size, TTL = extended rcode, version, flags.
_HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_OPT_RR = struct.Struct("!BHHIH")
_QUERY_OPCODE = int(dns.opcode.QUERY)


@dataclass(frozen=True)
class _Query:
    """One question, in wire format and ready to send.

    The wire form is packed here rather than by dnspython's renderer: a check of thousands
    of endpoints sends three queries per endpoint, and rendering one (a Message, name
    compression, an rdata object for the OPT record) took 0.13 ms of CPU, half as much as
    parsing its answer; packing takes 0.005 ms. The bytes are those dnspython renders (same
    header, question and OPT RR). Answers are still parsed by dnspython, and `message()`
    gives the query as a dnspython Message, for TCP.
    """

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    flags: int
    dnssec: bool
    id: int
    wire: bytes

    def message(self) -> dns.message.Message:
        query = dns.message.make_query(
            self.name, self.rdtype, want_dnssec=self.dnssec, payload=EDNS_PAYLOAD
        )
        query.id = self.id
        query.flags = dns.flags.Flag(self.flags)
        return query

    def answered_by(self, reply: dns.message.Message) -> bool:
        """The reply answers this query: QR set, same ID and opcode, the same question
        (RFC 5452 §9.1); as dnspython's `is_response()`, an error may leave the question out."""
        if not reply.flags & dns.flags.QR or reply.id != self.id or reply.opcode() != _QUERY_OPCODE:
            return False
        if not reply.question:
            return reply.rcode() in _ERRORS_WITHOUT_QUESTION
        return len(reply.question) == 1 and (
            reply.question[0].name == self.name
            and reply.question[0].rdtype == self.rdtype
            and reply.question[0].rdclass == _IN
        )


_ERRORS_WITHOUT_QUESTION = frozenset(
    {dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED}
)


def _make_query(
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    *,
    recursion: bool,
    cd: bool = False,
    dnssec: bool = True,
) -> _Query:
    # DO (RFC 3225) asks for the RRSIGs; AD in the query (RFC 6840 §5.7) asks for the AD bit;
    # CD (RFC 4035 §3.2.2) has the resolver skip validation.
    flags = dns.flags.AD | (dns.flags.RD if recursion else 0) | (dns.flags.CD if cd else 0)
    query_id = dns.entropy.random_16()
    qname = name.to_wire()
    assert qname is not None  # an absolute name, so to_wire() returns its bytes
    wire = b"".join(
        (
            _HEADER.pack(query_id, flags, 1, 0, 0, 1),  # one question, one OPT RR
            qname,
            _QUESTION_TAIL.pack(rdtype, _IN),
            _OPT_RR.pack(0, dns.rdatatype.OPT, EDNS_PAYLOAD, dns.flags.DO if dnssec else 0, 0),
        )
    )
    return _Query(name, rdtype, int(flags), dnssec, query_id, wire)


class _TryTimedOut(Exception):
    pass


_Parsed = dict[bytes, dns.message.Message]
"""Answers read so far, by their bytes after the ID (see `_receive`)."""


def _exchange(
    query: _Query, address: str, port: int, budget: _Budget, parsed: _Parsed | None = None
) -> tuple[dns.message.Message, bool]:
    """UDP, retried up to `budget.tries` times; a truncated answer is asked again over TCP.

    Returns the answer and whether TCP was used. Raises _Timeout or _Unreachable.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for _ in range(budget.tries):
        deadline = time.monotonic() + budget.next_timeout()
        try:
            # A connected UDP socket hears ICMP "port unreachable", so a resolver that is
            # down fails in a millisecond instead of after every timeout.
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((address, port))
                sock.send(query.wire)
                return _receive(sock, query, deadline, parsed), False
        except dns.message.Truncated:
            # RFC 7766 §5 / RFC 1035 §4.2.2: TC set, ask the same question over TCP.
            return _exchange_tcp(query, address, port, budget), True
        except _TryTimedOut:
            continue
        except (OSError, dns.exception.DNSException) as exc:
            raise _Unreachable(_describe(exc)) from exc
    raise _Timeout


def _receive(
    sock: socket.socket, query: _Query, deadline: float, parsed: _Parsed | None = None
) -> dns.message.Message:
    """The answer to `query` on `sock`; a datagram with another ID or question is skipped.

    With `parsed`, an answer whose bytes after the ID are those of an answer read before is
    not parsed again: the message read before is returned (its `id` is the earlier one's).
    The servers of a zone mostly send the same bytes for one question, and parsing is the
    larger part of the CPU a lookup costs. Only for queries that differ in their ID alone.
    """
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _TryTimedOut
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except TimeoutError as exc:
            raise _TryTimedOut from exc
        if parsed is not None and data[:2] == query.wire[:2]:
            known = parsed.get(data[2:])
            if known is not None:
                return known
        # A truncated answer raises Truncated (retried over TCP), as dnspython's udp() does.
        reply = dns.message.from_wire(data, raise_on_truncation=True)
        if query.answered_by(reply):
            if parsed is not None:
                parsed[data[2:]] = reply
            return reply


def _exchange_tcp(query: _Query, address: str, port: int, budget: _Budget) -> dns.message.Message:
    # Imported here: dns.query (with ssl, zone transfers, DoH and DoQ) adds some 15 ms to the
    # start of every check, and TCP is the rare case; UDP needs only a socket.
    import dns.query

    try:
        return dns.query.tcp(query.message(), address, timeout=budget.next_timeout(), port=port)
    except dns.exception.Timeout as exc:
        raise _Timeout from exc
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        raise _Unreachable(f"over TCP: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _ask(
    resolver: Resolver,
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    budget: _Budget,
    *,
    cd: bool = False,
) -> tuple[dns.message.Message, bool]:
    return _exchange(
        _make_query(name, rdtype, recursion=True, cd=cd), resolver.address, resolver.port, budget
    )


# -- reading answers ------------------------------------------------------------------------


def _extended_errors(reply: dns.message.Message) -> tuple[ExtendedError, ...]:
    found = []
    for option in reply.options:
        if int(option.otype) != 15:  # RFC 8914 §2: EDNS option code 15
            continue
        if isinstance(option, dns.edns.EDEOption):
            found.append(ExtendedError(int(option.code), option.text or ""))
        elif isinstance(option, dns.edns.GenericOption) and len(option.data) >= 2:
            code = int.from_bytes(option.data[:2], "big")
            found.append(ExtendedError(code, option.data[2:].decode("utf-8", "replace")))
    return tuple(found)


def _rrset(
    section: Iterable[dns.rrset.RRset],
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    covers: dns.rdatatype.RdataType = dns.rdatatype.NONE,
) -> dns.rrset.RRset | None:
    for rrset in section:
        if (
            rrset.name == name
            and rrset.rdclass == _IN
            and rrset.rdtype == rdtype
            and rrset.covers == covers
        ):
            return rrset
    return None


def _negative_ttl(reply: dns.message.Message) -> tuple[int | None, int | None]:
    """(TTL as served, as signed) of a denial: min(SOA TTL, SOA MINIMUM), RFC 2308 §5."""
    for rrset in reply.authority:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.rdclass == _IN:
            soa = rrset[0]
            minimum = int(soa.minimum) if isinstance(soa, SOA) else int(rrset.ttl)
            signed = _original_ttl(
                _rrset(reply.authority, rrset.name, dns.rdatatype.RRSIG, dns.rdatatype.SOA)
            )
            return (
                min(int(rrset.ttl), minimum),
                min(signed, minimum) if signed is not None else None,
            )
    return None, None


def _original_ttl(sigs: dns.rrset.RRset | None) -> int | None:
    ttls = [int(sig.original_ttl) for sig in sigs or () if isinstance(sig, RRSIG)]
    return min(ttls) if ttls else None


def _signer(sigs: dns.rrset.RRset | None, owner: dns.name.Name) -> dns.name.Name | None:
    """The one signer's name of the RRSIGs over an RRset: the apex of its zone (RFC 4035 §2.2)."""
    signers = {sig.signer for sig in sigs or () if isinstance(sig, RRSIG)}
    if len(signers) != 1:
        return None
    (signer,) = signers
    return signer if owner.is_subdomain(signer) else None


def _min(values: Iterable[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _to_name(owner: str) -> dns.name.Name:
    try:
        return dns.name.from_text(owner.strip())
    except dns.exception.DNSException as exc:
        raise UsageError(f"not a DNS name: {owner!r} ({exc})") from exc


# -- the TLSA lookup ------------------------------------------------------------------------


def lookup_tlsa(
    owner: str,
    resolver: Resolver,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
    lifetime: float | None = None,
) -> TLSAAnswer:
    """The TLSA RRset at `owner` through `resolver`, with its DNSSEC status.

    Each query is tried `tries` times over UDP with `timeout` seconds each; the whole lookup
    (CNAME hops and the follow-up queries that explain a SERVFAIL or a missing AD included)
    ends after `lifetime` seconds, by default 4 x tries x timeout.
    """
    name = _to_name(owner)
    budget = _Budget.start(timeout, tries, lifetime)
    walk = _Walk(owner=name.to_text(), resolver=resolver)
    current = name
    seen = {name}
    reply: dns.message.Message | None = None
    try:
        for _ in range(MAX_CNAME_HOPS + 1):
            reply, tcp = _ask(resolver, current, dns.rdatatype.TLSA, budget)
            walk.via_tcp |= tcp
            walk.rcode = dns.rcode.to_text(reply.rcode())
            walk.extended_errors += _extended_errors(reply)
            if reply.rcode() == dns.rcode.SERVFAIL:
                return _servfail(walk, current, budget)
            if reply.rcode() not in _OK_RCODES:
                return walk.done(Status.FAILED, f"the resolver answered {walk.rcode}")
            # RFC 4035 §3.2.3: AD covers every RRset of the answer; one insecure step is enough
            # to make the whole chain insecure (RFC 7671 §7).
            walk.validated &= bool(reply.flags & dns.flags.AD)
            hop_started = len(walk.chain)
            # RFC 7671 §7: a CNAME at the TLSA owner is followed; the resolver usually hands
            # over the whole chain in one answer.
            while (cname := _rrset(reply.answer, current, dns.rdatatype.CNAME)) is not None:
                target = cname[0]
                assert isinstance(target, CNAME)
                walk.ttls.append(int(cname.ttl))
                walk.signed_ttls.append(
                    _original_ttl(
                        _rrset(reply.answer, current, dns.rdatatype.RRSIG, dns.rdatatype.CNAME)
                    )
                )
                current = target.target
                if current in seen or len(walk.chain) >= MAX_CNAME_HOPS:
                    return walk.done(
                        Status.FAILED,
                        f"CNAME loop or chain longer than {MAX_CNAME_HOPS} at {current}",
                    )
                seen.add(current)
                walk.chain.append(current.to_text())
            tlsa = _rrset(reply.answer, current, dns.rdatatype.TLSA)
            if tlsa is not None:
                walk.records = tuple(sorted(TLSARecord.from_rdata(rdata) for rdata in tlsa))
                walk.ttls.append(int(tlsa.ttl))
                sigs = _rrset(reply.answer, current, dns.rdatatype.RRSIG, dns.rdatatype.TLSA)
                walk.signed_ttls.append(_original_ttl(sigs))
                walk.signer = _signer(sigs, current)
                break
            negative, signed_negative = _negative_ttl(reply)
            chain_ended_open = len(walk.chain) > hop_started and negative is None
            if reply.rcode() == dns.rcode.NOERROR and chain_ended_open:
                continue  # the resolver stopped at a CNAME: ask for the target ourselves
            walk.denial = "NXDOMAIN" if reply.rcode() == dns.rcode.NXDOMAIN else "NODATA"
            walk.ttls.append(negative)
            walk.signed_ttls.append(signed_negative)
            break
        else:
            return walk.done(Status.FAILED, f"CNAME chain longer than {MAX_CNAME_HOPS}")
        if walk.validated:
            return walk.done(Status.SECURE if walk.records else Status.NO_DANE)
        walk.insecure_cause = _why_insecure(resolver, current, budget)
        return walk.done(Status.INSECURE)
    except _Timeout:
        return walk.done(
            Status.TIMEOUT, f"no answer from resolver {resolver} ({tries} x {timeout:g} s)"
        )
    except _Unreachable as exc:
        return walk.done(Status.FAILED, f"resolver {resolver}: {exc}")


@dataclass
class _Walk:
    """What a lookup has gathered so far (mutable; frozen into a TLSAAnswer at the end)."""

    owner: str
    resolver: Resolver
    validated: bool = True
    via_tcp: bool = False
    rcode: str | None = None
    denial: str | None = None
    insecure_cause: InsecureCause | None = None
    records: tuple[TLSARecord, ...] = ()
    extended_errors: tuple[ExtendedError, ...] = ()
    signer: dns.name.Name | None = None
    chain: list[str] = field(default_factory=list)
    ttls: list[int | None] = field(default_factory=list)
    signed_ttls: list[int | None] = field(default_factory=list)

    def done(self, status: Status, reason: str | None = None) -> TLSAAnswer:
        answered = status in (Status.SECURE, Status.INSECURE, Status.NO_DANE)
        return TLSAAnswer(
            owner=self.owner,
            status=status,
            records=self.records if answered else (),
            ttl=_min(self.ttls) if answered else None,
            signed_ttl=_min(self.signed_ttls) if answered else None,
            cname_chain=tuple(self.chain),
            rcode=self.rcode,
            extended_errors=self.extended_errors,
            insecure_cause=self.insecure_cause if status is Status.INSECURE else None,
            via_tcp=self.via_tcp,
            resolver=self.resolver,
            reason=reason or self._reason(status),
            zone=self.signer.to_text() if answered and self.signer is not None else None,
        )

    def _reason(self, status: Status) -> str:
        where = self.owner + (f" (CNAME to {self.chain[-1]})" if self.chain else "")
        count = f"{len(self.records)} TLSA record{'s' if len(self.records) != 1 else ''}"
        if status is Status.SECURE:
            return f"{count} at {where}, DNSSEC-validated"
        if status is Status.NO_DANE:
            return f"validated {self.denial}: no TLSA records at {where}, DANE is not in use"
        what = count if self.records else f"no TLSA records ({self.denial})"
        if self.insecure_cause is InsecureCause.RESOLVER_NOT_VALIDATING:
            return (
                f"{what} at {where}, not validated: resolver {self.resolver} does not validate "
                "DNSSEC (it set AD on nothing); use a validating resolver"
            )
        if self.insecure_cause is InsecureCause.UNSIGNED:
            return (
                f"{what} at {where}, insecure: no DNSSEC chain of trust to the zone (unsigned, "
                "or no DS at its parent); DANE clients ignore these records"
            )
        return f"{what} at {where}, not validated (no AD), and the cause could not be found"


def _servfail(walk: _Walk, name: dns.name.Name, budget: _Budget) -> TLSAAnswer:
    """BOGUS when the resolver says DNSSEC failed (EDE), or when it answers with CD set."""
    dnssec = [ede for ede in walk.extended_errors if ede.code in DNSSEC_EDE_CODES]
    detail = "; ".join(str(ede) for ede in walk.extended_errors)
    if dnssec:
        return walk.done(Status.BOGUS, f"DNSSEC validation failed at {name}: {detail}")
    # Without an EDE, ask again with checking disabled (RFC 4035 §3.2.2): an answer now means
    # the data are reachable but do not validate; a SERVFAIL again means they are unreachable.
    try:
        reply, _ = _ask(walk.resolver, name, dns.rdatatype.TLSA, budget, cd=True)
    except (_Timeout, _Unreachable):
        reply = None
    suffix = f" ({detail})" if detail else ""
    if reply is not None and reply.rcode() in _OK_RCODES:
        return walk.done(
            Status.BOGUS, f"DNSSEC validation failed at {name}: SERVFAIL, answered with CD{suffix}"
        )
    return walk.done(
        Status.FAILED,
        f"SERVFAIL for {name}, even with checking disabled: its servers are unreachable or "
        f"broken{suffix}",
    )


def _why_insecure(resolver: Resolver, name: dns.name.Name, budget: _Budget) -> InsecureCause:
    """Tell an unsigned zone from a resolver that does not validate.

    A validating resolver sets AD on the DNSKEY RRset of every zone it holds a chain of trust
    to (RFC 4035 §3.2.3, §5), in practice the root; in a lab, the zone of its trust anchor.
    So the ancestors of the name are asked for DNSKEY from the root down: if any answer comes
    with AD, the resolver validates, and the name lies below an insecure delegation
    (RFC 4035 §5.2). If none does, the resolver does not validate (or strips AD), and the
    missing AD on the TLSA answer says nothing about the zone.
    """
    ancestors = [name.split(depth)[1] for depth in range(1, len(name))]
    for ancestor in ancestors:
        try:
            reply, _ = _ask(resolver, ancestor, dns.rdatatype.DNSKEY, budget)
        except (_Timeout, _Unreachable):
            return InsecureCause.UNKNOWN
        if reply.rcode() in _OK_RCODES and reply.flags & dns.flags.AD:
            return InsecureCause.UNSIGNED
    return InsecureCause.RESOLVER_NOT_VALIDATING


# -- the authoritative view -----------------------------------------------------------------


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


def find_zone(
    owner: str,
    resolver: Resolver,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
) -> str:
    """The apex of the zone that holds `owner` (the zone cut above it), through the resolver."""
    return _find_zone(_to_name(owner), resolver, _Budget.start(timeout, tries, None)).to_text()


def _find_zone(name: dns.name.Name, resolver: Resolver, budget: _Budget) -> dns.name.Name:
    current = name
    while True:
        reply = _resolve(resolver, current, dns.rdatatype.SOA, budget)
        if _rrset(reply.answer, current, dns.rdatatype.SOA) is not None:
            return current
        if _rrset(reply.answer, current, dns.rdatatype.CNAME) is None:
            # RFC 2308 §3: a denial carries the SOA of the zone that holds the name.
            for rrset in reply.authority:
                if rrset.rdtype == dns.rdatatype.SOA and current.is_subdomain(rrset.name):
                    return rrset.name
        # A CNAME (the SOA would be the target's) or no SOA at all: try the parent.
        if current == dns.name.root:
            raise LookupFailure(f"no zone found for {name}", f"check resolver {resolver}")
        current = current.parent()


def _resolve(
    resolver: Resolver, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, budget: _Budget
) -> dns.message.Message:
    """A recursive query whose failure leaves the caller with nothing: LookupFailure."""
    what = f"{name} {dns.rdatatype.to_text(rdtype)}"
    hint = f"check that resolver {resolver} answers"
    try:
        reply, _ = _ask(resolver, name, rdtype, budget)
    except _Timeout as exc:
        raise LookupFailure(f"no answer from resolver {resolver} for {what}", hint) from exc
    except _Unreachable as exc:
        raise LookupFailure(f"resolver {resolver} for {what}: {exc}", hint) from exc
    if reply.rcode() not in _OK_RCODES:
        detail = "; ".join(str(ede) for ede in _extended_errors(reply))
        raise LookupFailure(
            f"resolver {resolver} answered {dns.rcode.to_text(reply.rcode())} for {what}"
            + (f" ({detail})" if detail else ""),
            hint,
        )
    return reply


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
        _Budget.start(timeout, tries, None)  # refuses a bad timeout or tries here, once
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

    def _budget(self) -> _Budget:
        return _Budget.start(self.timeout, self.tries, None)

    def view(self, owner: str, zone: str | None = None) -> AuthoritativeView:
        """The TLSA RRset of `owner` on every authoritative server of its zone.

        `zone` spares the search for the zone cut when it is known: `TLSAAnswer.zone`, the
        signer of the records' signatures, which RFC 4035 §2.2 makes the zone's apex.
        """
        name = _to_name(owner)
        apex = _to_name(zone) if zone is not None else None
        if apex is None or not name.is_subdomain(apex):
            apex = _find_zone(name, self.resolver, self._budget())
        parsed: _Parsed = {}  # the same question to each server: see _receive()
        answers = tuple(
            self._ask_server(nameserver, address, name, apex, parsed)
            for nameserver, address in self._servers(apex)
        )
        return AuthoritativeView(owner=name.to_text(), zone=apex.to_text(), servers=answers)

    def _servers(self, zone: dns.name.Name) -> tuple[tuple[str, str], ...]:
        """(NS name, address) of every name server of the zone, sorted."""
        return self._once(("servers", zone), lambda: self._find_servers(zone))

    def _find_servers(self, zone: dns.name.Name) -> tuple[tuple[str, str], ...]:
        resolver = self.resolver
        ns_reply = _resolve(resolver, zone, dns.rdatatype.NS, self._budget())
        ns_rrset = _rrset(ns_reply.answer, zone, dns.rdatatype.NS)
        nameservers = sorted({rd.target for rd in ns_rrset or () if isinstance(rd, NS)})
        if not nameservers:
            raise LookupFailure(f"no NS records for {zone}", f"check resolver {resolver}")
        targets = [
            (ns.to_text(), address)
            for ns in nameservers
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
            for address in self._addresses(ns, rdtype)
        ]
        if not targets:
            raise LookupFailure(
                f"no address for any name server of {zone}", f"check resolver {resolver}"
            )
        return tuple(sorted(targets))

    def _addresses(self, ns: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> tuple[str, ...]:
        def ask() -> tuple[str, ...]:
            reply = _resolve(self.resolver, ns, rdtype, self._budget())
            # Any CNAME on the way (RFC 2181 §10.3 forbids it, some do it) is just skipped.
            return tuple(
                rdata.to_text()
                for rrset in reply.answer
                if rrset.rdtype == rdtype
                for rdata in rrset
            )

        # One name server often serves many zones (ns1.example.test. serves three in the lab).
        return self._once(("addresses", ns, rdtype), ask)

    def _zone_on(self, address: str, zone: dns.name.Name) -> _ZoneOnServer:
        def ask() -> _ZoneOnServer:
            budget = self._budget()
            try:
                reply = _ask_direct(address, self.port, zone, dns.rdatatype.SOA, budget)
            except _Timeout:
                return _ZoneOnServer(None, _no_answer(budget))
            except _Unreachable as exc:
                return _ZoneOnServer(None, str(exc))
            soa = _rrset(reply.answer, zone, dns.rdatatype.SOA)
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
        parsed: _Parsed,
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
            query = _make_query(name, dns.rdatatype.TLSA, recursion=False, dnssec=False)
            reply, _ = _exchange(query, address, port, budget, parsed)
        except _Timeout:
            return failed(_no_answer(budget), serial)
        except _Unreachable as exc:
            return failed(str(exc), serial)
        problem = _not_authoritative(reply, zone)
        if problem:
            return failed(problem, serial)
        cname = _rrset(reply.answer, name, dns.rdatatype.CNAME)
        tlsa = _rrset(reply.answer, name, dns.rdatatype.TLSA)
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


def _no_answer(budget: _Budget) -> str:
    return f"no answer in {budget.tries} x {budget.timeout:g} s"


def _ask_direct(
    address: str, port: int, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, budget: _Budget
) -> dns.message.Message:
    reply, _ = _exchange(_make_query(name, rdtype, recursion=False), address, port, budget)
    return reply


def _not_authoritative(reply: dns.message.Message, zone: dns.name.Name) -> str | None:
    if reply.rcode() not in _OK_RCODES:
        return f"answered {dns.rcode.to_text(reply.rcode())} for {zone}"
    # RFC 1035 §4.1.1: only an answer with AA set comes from the zone itself (else: lame).
    if not reply.flags & dns.flags.AA:
        return f"not authoritative for {zone} (answer without AA: lame delegation)"
    return None
