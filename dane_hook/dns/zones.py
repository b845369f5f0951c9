"""Where a name's zone sits: its apex (the zone cut above it), its NS set and their addresses.

Asked of the recursive resolver. A failure here leaves the caller with nothing to report per
server, so it raises `LookupFailure` rather than returning a status.
"""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
from dns.rdtypes.ANY.NS import NS

from dane_hook.dns.exchange import (
    ANSWERED,
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    Budget,
    Resolver,
    TimedOut,
    Unreachable,
    ask,
    extended_errors,
    find_rrset,
    to_name,
)
from dane_hook.errors import LookupFailure


def find_zone(
    owner: str,
    resolver: Resolver,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
) -> str:
    """The apex of the zone that holds `owner` (the zone cut above it), through the resolver."""
    return zone_apex(to_name(owner), resolver, Budget.start(timeout, tries, None)).to_text()


def zone_apex(name: dns.name.Name, resolver: Resolver, budget: Budget) -> dns.name.Name:
    """The apex of the zone that holds `name`: its own SOA, or the SOA of a denial, or else
    the same asked of its parent (a CNAME at `name` says nothing of its zone)."""
    current = name
    while True:
        reply = resolve(resolver, current, dns.rdatatype.SOA, budget)
        if find_rrset(reply.answer, current, dns.rdatatype.SOA) is not None:
            return current
        if find_rrset(reply.answer, current, dns.rdatatype.CNAME) is None:
            # RFC 2308 §3: a denial carries the SOA of the zone that holds the name.
            for rrset in reply.authority:
                if rrset.rdtype == dns.rdatatype.SOA and current.is_subdomain(rrset.name):
                    return rrset.name
        # A CNAME (the SOA would be the target's) or no SOA at all: try the parent.
        if current == dns.name.root:
            raise LookupFailure(f"no zone found for {name}", f"check resolver {resolver}")
        current = current.parent()


def name_servers(
    zone: dns.name.Name, resolver: Resolver, budget: Budget
) -> tuple[dns.name.Name, ...]:
    """The targets of the zone's NS RRset, sorted; LookupFailure when there are none."""
    reply = resolve(resolver, zone, dns.rdatatype.NS, budget)
    ns_rrset = find_rrset(reply.answer, zone, dns.rdatatype.NS)
    found = tuple(sorted({rd.target for rd in ns_rrset or () if isinstance(rd, NS)}))
    if not found:
        raise LookupFailure(f"no NS records for {zone}", f"check resolver {resolver}")
    return found


def addresses(
    host: dns.name.Name, rdtype: dns.rdatatype.RdataType, resolver: Resolver, budget: Budget
) -> tuple[str, ...]:
    """The addresses (A or AAAA, as `rdtype` says) of a name server."""
    reply = resolve(resolver, host, rdtype, budget)
    # Any CNAME on the way (RFC 2181 §10.3 forbids it, some do it) is just skipped.
    return tuple(
        rdata.to_text() for rrset in reply.answer if rrset.rdtype == rdtype for rdata in rrset
    )


def resolve(
    resolver: Resolver, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, budget: Budget
) -> dns.message.Message:
    """A recursive query whose failure leaves the caller with nothing: LookupFailure."""
    what = f"{name} {dns.rdatatype.to_text(rdtype)}"
    hint = f"check that resolver {resolver} answers"
    try:
        reply, _ = ask(resolver, name, rdtype, budget)
    except TimedOut as exc:
        raise LookupFailure(f"no answer from resolver {resolver} for {what}", hint) from exc
    except Unreachable as exc:
        raise LookupFailure(f"resolver {resolver} for {what}: {exc}", hint) from exc
    if reply.rcode() not in ANSWERED:
        detail = "; ".join(str(ede) for ede in extended_errors(reply))
        raise LookupFailure(
            f"resolver {resolver} answered {dns.rcode.to_text(reply.rcode())} for {what}"
            + (f" ({detail})" if detail else ""),
            hint,
        )
    return reply
