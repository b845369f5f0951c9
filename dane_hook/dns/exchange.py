"""One question to one server within a time budget: UDP, retried, TCP when the answer is truncated.

The only module of dane-hook that sends DNS queries. Answers are parsed by dnspython; UDP queries
go out as packed bytes over a connected socket (why: `exchange`), TCP through `dns.query.tcp`.
Also the resolver's address, and the few readers of an answer every lookup shares (an RRset of
a section, the Extended DNS Errors, a name from text).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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

from dane_hook.errors import LookupFailure, UsageError, shown

DEFAULT_TIMEOUT = 2.0
"""Seconds to wait for one answer to one try."""
DEFAULT_TRIES = 2
"""UDP tries per query before giving up (a truncated answer adds one TCP exchange)."""
EDNS_PAYLOAD = 1232
"""EDNS UDP payload we offer: DNS Flag Day 2020, fits any path without IP fragmentation."""

IN = dns.rdataclass.IN
ANSWERED = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
"""Rcodes that answer the question (with data or a denial), RFC 1035 §4.1.1, RFC 2308."""


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
                raise UsageError(f"resolver {shown(text)}: write an IPv6 address as [ADDR]:PORT")
            port_text = rest[1:] if rest else None
        elif spec.count(":") == 1:
            host, port_text = spec.split(":")
        else:
            host = spec
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError as exc:
            raise UsageError(
                f"resolver {shown(text)}: not an IP address",
                "give the resolver as ADDR[:PORT], for example 127.0.0.1:53 or [::1]:53",
            ) from exc
        if port_text is None:
            return cls(address)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"resolver {shown(text)}: the port is not between 1 and 65535")
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


# -- the time budget ------------------------------------------------------------------------


class TimedOut(Exception):
    """No answer in any try, or the lookup's deadline passed."""


class Unreachable(Exception):
    """The server cannot be asked or gave no usable message (refused, unreachable, malformed)."""


@dataclass
class Budget:
    """Per-try timeout, tries per query, and a deadline for the whole lookup."""

    timeout: float
    tries: int
    deadline: float

    @classmethod
    def start(cls, timeout: float, tries: int, lifetime: float | None) -> Budget:
        if timeout <= 0 or tries < 1:
            raise UsageError(f"timeout {timeout} and tries {tries} must be positive")
        total = lifetime if lifetime is not None else timeout * tries * 4
        return cls(timeout, tries, time.monotonic() + total)

    def next_timeout(self) -> float:
        """Seconds the next try may take: the per-try timeout, or what is left if less."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimedOut
        return min(self.timeout, left)

    def no_answer(self) -> str:
        return f"no answer in {self.tries} x {self.timeout:g} s"


# -- sending queries ------------------------------------------------------------------------


# RFC 1035 §4.1.1 header; §4.1.2 question tail (QTYPE, QCLASS); RFC 6891 §6.1.2 OPT RR with an
# empty owner name (the root), CLASS = UDP payload size, TTL = extended rcode, version, flags.
_HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_OPT_RR = struct.Struct("!BHHIH")
_QUERY_OPCODE = int(dns.opcode.QUERY)


@dataclass(frozen=True)
class Query:
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
            and reply.question[0].rdclass == IN
        )


_ERRORS_WITHOUT_QUESTION = frozenset(
    {dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED}
)


def make_query(
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    *,
    recursion: bool,
    cd: bool = False,
    dnssec: bool = True,
) -> Query:
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
            _QUESTION_TAIL.pack(rdtype, IN),
            _OPT_RR.pack(0, dns.rdatatype.OPT, EDNS_PAYLOAD, dns.flags.DO if dnssec else 0, 0),
        )
    )
    return Query(name, rdtype, int(flags), dnssec, query_id, wire)


class _TryTimedOut(Exception):
    pass


Parsed = dict[bytes, dns.message.Message]
"""Answers read so far, by their bytes after the ID (see `_receive`)."""


def exchange(
    query: Query, address: str, port: int, budget: Budget, parsed: Parsed | None = None
) -> tuple[dns.message.Message, bool]:
    """UDP, retried up to `budget.tries` times; a truncated answer is asked again over TCP.

    Returns the answer and whether TCP was used. Raises TimedOut or Unreachable. With
    `parsed`, an answer already read for the same question is not parsed again (`_receive`).

    Hand-written over a socket rather than dns.query.udp / udp_with_fallback, because the
    benchmark says so (bench/check_many.py, 2,000 lineages x 2 endpoints, both versions side
    by side on one machine, medians of 4 rounds): with dns.query.udp the check took 1.28 x as
    long with the resolver flushed (12.2 -> 15.7 s wall, 14.6 -> 19.8 s CPU) and 1.51 x with
    state and caches in place (9.4 -> 14.2 s wall, 12.8 -> 19.4 s CPU); one endpoint 0.43 ->
    0.48 s. dns.query.udp wants a Message, built and rendered for each query (with a selector
    per wait: 0.25 ms more CPU per query than the packed bytes of `Query`), parses every
    datagram, and cannot skip parsing the same bytes from a zone's second server; importing
    dns.query (ssl with it) adds some 10 ms to each start. TCP, the rare case, is
    dnspython's `dns.query.tcp`.
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
            raise Unreachable(_describe(exc)) from exc
    raise TimedOut


def _receive(
    sock: socket.socket, query: Query, deadline: float, parsed: Parsed | None = None
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


def _exchange_tcp(query: Query, address: str, port: int, budget: Budget) -> dns.message.Message:
    # Imported here: dns.query (with ssl, zone transfers, DoH and DoQ) adds some 15 ms to the
    # start of every check, and TCP is the rare case; UDP needs only a socket.
    import dns.query

    try:
        return dns.query.tcp(query.message(), address, timeout=budget.next_timeout(), port=port)
    except dns.exception.Timeout as exc:
        raise TimedOut from exc
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        raise Unreachable(f"over TCP: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def ask(
    resolver: Resolver,
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    budget: Budget,
    *,
    cd: bool = False,
) -> tuple[dns.message.Message, bool]:
    """A recursive query to the resolver: the answer, and whether TCP was used."""
    query = make_query(name, rdtype, recursion=True, cd=cd)
    return exchange(query, resolver.address, resolver.port, budget)


def ask_direct(
    address: str,
    port: int,
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    budget: Budget,
    *,
    dnssec: bool = True,
    parsed: Parsed | None = None,
) -> dns.message.Message:
    """A query to an authoritative server, without recursion (`parsed`: see `exchange`)."""
    query = make_query(name, rdtype, recursion=False, dnssec=dnssec)
    reply, _ = exchange(query, address, port, budget, parsed)
    return reply


# -- reading answers ------------------------------------------------------------------------


# RFC 8914 §4 (and the IANA registry): the INFO-CODE values and what they say.
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


def extended_errors(reply: dns.message.Message) -> tuple[ExtendedError, ...]:
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


def find_rrset(
    section: Iterable[dns.rrset.RRset],
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    covers: dns.rdatatype.RdataType = dns.rdatatype.NONE,
) -> dns.rrset.RRset | None:
    """The RRset of `name` and `rdtype` (RRSIGs: covering `covers`) in a section, if any."""
    for rrset in section:
        if (
            rrset.name == name
            and rrset.rdclass == IN
            and rrset.rdtype == rdtype
            and rrset.covers == covers
        ):
            return rrset
    return None


def to_name(owner: str) -> dns.name.Name:
    """A DNS name from the text people give; UsageError when it is not one."""
    try:
        return dns.name.from_text(owner.strip())
    except dns.exception.DNSException as exc:
        raise UsageError(f"not a DNS name: {shown(owner)} ({exc})") from exc
