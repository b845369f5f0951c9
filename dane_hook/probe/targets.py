"""Which addresses to probe: a domain's MX hosts, each host's A and AAAA, at the TLSA ports.

The names come from the validating resolver (dns.exchange), and whether each answer was
validated is kept: RFC 7672 §2.2.1 applies DANE to an MX host only when the MX RRset is secure,
and §2.2.2 only when the host's address records are. A failed lookup is one line in `problems`,
never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.MX import MX

from dane_hook.dns.exchange import (
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    Budget,
    Resolver,
    TimedOut,
    Unreachable,
    ask,
    find_rrset,
    to_name,
)
from dane_hook.probe.wire import Protocol, protocol_for_port


@dataclass(frozen=True)
class Target:
    """One address of one host at one port: what a sender connects to."""

    host: str
    """The MX host name without the trailing dot: the SNI and the TLSA base domain."""
    address: str
    port: int
    """The TCP port connected to."""
    protocol: Protocol
    tlsa_owner: str
    """The TLSA owner name of the endpoint, `_PORT._tcp.HOST.` (RFC 6698 §3)."""
    secure: bool = True
    """The MX RRset (when there was one) and this address were DNSSEC-validated: a DANE
    sender looks up TLSA only then (RFC 7672 §2.2.1, §2.2.2)."""

    def __str__(self) -> str:
        where = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.host} {where}:{self.port}"


def target(
    host: str,
    address: str,
    port: int,
    *,
    protocol: Protocol | None = None,
    tlsa_owner: str | None = None,
    secure: bool = True,
    protocols: Mapping[int, Protocol] | None = None,
) -> Target:
    """A target given by hand; `tlsa_owner` defaults to `_PORT._tcp.HOST.`."""
    name = host.rstrip(".")
    return Target(
        host=name,
        address=address,
        port=port,
        protocol=protocol or protocol_for_port(port, protocols),
        tlsa_owner=tlsa_owner or f"_{port}._tcp.{name}.",
        secure=secure,
    )


@dataclass(frozen=True)
class TargetSet:
    """The targets found, and one line for each lookup that found nothing usable."""

    targets: tuple[Target, ...]
    problems: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Answer:
    rdatas: tuple[object, ...]
    secure: bool
    problem: str | None = None
    nodata: bool = False


def _query(
    resolver: Resolver, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, budget: Budget
) -> _Answer:
    label = f"{name.to_text()} {dns.rdatatype.to_text(rdtype)}"
    try:
        reply, _ = ask(resolver, name, rdtype, budget)
    except TimedOut:
        return _Answer((), False, f"{label}: no answer from resolver {resolver}")
    except Unreachable as exc:
        return _Answer((), False, f"{label}: resolver {resolver}: {exc}")
    rcode = reply.rcode()
    secure = bool(reply.flags & dns.flags.AD)
    if rcode == dns.rcode.NXDOMAIN:
        return _Answer((), secure, f"{label}: NXDOMAIN", nodata=True)
    if rcode != dns.rcode.NOERROR:
        # A SERVFAIL from a validating resolver is often a bogus answer (RFC 4035 §5.5).
        return _Answer((), False, f"{label}: the resolver answered {dns.rcode.to_text(rcode)}")
    rrset = _final_rrset(reply, name, rdtype)
    if rrset is None:
        return _Answer((), secure, nodata=True)
    return _Answer(tuple(rrset), secure)


def _final_rrset(
    reply: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> list[object] | None:
    """The RRset of `rdtype` at the end of the CNAME chain the resolver handed over."""
    current = name
    for _ in range(9):
        found = find_rrset(reply.answer, current, rdtype)
        if found is not None:
            return list(found)
        cname = find_rrset(reply.answer, current, dns.rdatatype.CNAME)
        if cname is None:
            return None
        first = cname[0]
        assert isinstance(first, CNAME)
        current = first.target
    return None


def host_targets(
    host: str,
    resolver: Resolver,
    ports: Sequence[int] = (25,),
    *,
    mx_secure: bool = True,
    protocols: Mapping[int, Protocol] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
) -> TargetSet:
    """Every A and AAAA address of `host`, at each port."""
    name = to_name(host if host.endswith(".") else host + ".")
    budget = Budget.start(timeout, tries, None)
    targets: list[Target] = []
    problems: list[str] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        answer = _query(resolver, name, rdtype, budget)
        if answer.problem is not None and not (answer.nodata and rdtype == dns.rdatatype.AAAA):
            problems.append(answer.problem)
        for rdata in answer.rdatas:
            address = str(getattr(rdata, "address", ""))
            for port in ports:
                targets.append(
                    target(
                        host,
                        address,
                        port,
                        secure=mx_secure and answer.secure,
                        protocols=protocols,
                    )
                )
    if not targets and not problems:
        problems.append(f"{name.to_text()}: no A or AAAA records")
    return TargetSet(tuple(targets), tuple(dict.fromkeys(problems)))


def domain_targets(
    domain: str,
    resolver: Resolver,
    ports: Sequence[int] = (25,),
    *,
    protocols: Mapping[int, Protocol] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
) -> TargetSet:
    """The MX hosts of `domain` (by preference), each host's addresses, at each port.

    Without MX records the domain itself is the host (RFC 5321 §5.1, the implicit MX); a
    null MX (RFC 7505, `0 .`) means the domain takes no mail: no targets, one problem line.
    """
    name = to_name(domain if domain.endswith(".") else domain + ".")
    answer = _query(resolver, name, dns.rdatatype.MX, Budget.start(timeout, tries, None))
    if answer.problem is not None:  # failed, or NXDOMAIN: no host to try
        return TargetSet((), (answer.problem,))
    records = sorted(
        (r for r in answer.rdatas if isinstance(r, MX)),
        key=lambda r: (r.preference, r.exchange.to_text()),
    )
    if not records:
        return host_targets(
            domain,
            resolver,
            ports,
            mx_secure=answer.secure,
            protocols=protocols,
            timeout=timeout,
            tries=tries,
        )
    if len(records) == 1 and records[0].exchange == dns.name.root:
        return TargetSet((), (f"{name.to_text()}: null MX, the domain accepts no mail (RFC 7505)",))
    targets: list[Target] = []
    problems: list[str] = []
    for host in dict.fromkeys(r.exchange.to_text() for r in records):
        found = host_targets(
            host,
            resolver,
            ports,
            mx_secure=answer.secure,
            protocols=protocols,
            timeout=timeout,
            tries=tries,
        )
        targets.extend(found.targets)
        problems.extend(found.problems)
    return TargetSet(tuple(targets), tuple(problems))


def endpoint_targets(
    endpoint: str,
    resolver: Resolver,
    *,
    protocols: Mapping[int, Protocol] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
) -> TargetSet:
    """The addresses of a TLSA endpoint `_PORT._tcp.HOST`, at that port."""
    labels = endpoint.rstrip(".").split(".")
    port_label = labels[0] if labels else ""
    if len(labels) < 3 or labels[1] != "_tcp" or not port_label[1:].isdigit():
        return TargetSet((), (f"{endpoint}: not a TLSA endpoint of the form _PORT._tcp.HOST",))
    host = ".".join(labels[2:])
    return host_targets(
        host,
        resolver,
        [int(port_label[1:])],
        protocols=protocols,
        timeout=timeout,
        tries=tries,
    )
