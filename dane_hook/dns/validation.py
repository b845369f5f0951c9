"""The TLSA lookup through a validating resolver, and why its answer is secure, insecure or bogus.

A lookup follows the owner's CNAME chain (RFC 7671 §7) and returns the RRset with a status as
DANE clients act on it (RFC 7672 §2.2). Nothing here prints or exits: every failure is a status.
When the answer is not validated, follow-up queries tell an unsigned zone from a resolver that
does not validate; a SERVFAIL is told apart as bogus (an EDE, or an answer with CD set) or as
unreachable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.RRSIG import RRSIG
from dns.rdtypes.ANY.SOA import SOA

from dane_hook.dns.exchange import (
    ANSWERED,
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    IN,
    Budget,
    ExtendedError,
    Resolver,
    TimedOut,
    Unreachable,
    ask,
    extended_errors,
    find_rrset,
    to_name,
)
from dane_hook.tlsa.record import TLSARecord

MAX_CNAME_HOPS = 8
"""Longest CNAME chain followed; longer ones are treated as a failed lookup (as resolvers do)."""


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
    rrsig_expires: datetime | None = None
    """The earliest expiration of the RRSIGs over the TLSA RRset (RFC 4034 §3.1.5): when a
    zone whose signing stopped turns bogus. None without signed records."""

    @property
    def target(self) -> str:
        """The name that holds the records: the end of the CNAME chain, or the owner."""
        return self.cname_chain[-1] if self.cname_chain else self.owner

    @property
    def secure(self) -> bool:
        """The answer was validated (records, or their absence, are DNSSEC-proven)."""
        return self.status in (Status.SECURE, Status.NO_DANE)


# -- the walk -------------------------------------------------------------------------------


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
    name = to_name(owner)
    budget = Budget.start(timeout, tries, lifetime)
    walk = _Walk(owner=name.to_text(), resolver=resolver)
    current = name
    seen = {name}
    reply: dns.message.Message | None = None
    try:
        for _ in range(MAX_CNAME_HOPS + 1):
            reply, tcp = ask(resolver, current, dns.rdatatype.TLSA, budget)
            walk.via_tcp |= tcp
            walk.rcode = dns.rcode.to_text(reply.rcode())
            walk.extended_errors += extended_errors(reply)
            if reply.rcode() == dns.rcode.SERVFAIL:
                return _servfail(walk, current, budget)
            if reply.rcode() not in ANSWERED:
                return walk.done(Status.FAILED, f"the resolver answered {walk.rcode}")
            # RFC 4035 §3.2.3: AD covers every RRset of the answer; one insecure step is enough
            # to make the whole chain insecure (RFC 7671 §7).
            walk.validated &= bool(reply.flags & dns.flags.AD)
            hop_started = len(walk.chain)
            # RFC 7671 §7: a CNAME at the TLSA owner is followed; the resolver usually hands
            # over the whole chain in one answer.
            while (cname := find_rrset(reply.answer, current, dns.rdatatype.CNAME)) is not None:
                target = cname[0]
                assert isinstance(target, CNAME)
                walk.ttls.append(int(cname.ttl))
                walk.signed_ttls.append(
                    _original_ttl(
                        find_rrset(reply.answer, current, dns.rdatatype.RRSIG, dns.rdatatype.CNAME)
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
            tlsa = find_rrset(reply.answer, current, dns.rdatatype.TLSA)
            if tlsa is not None:
                walk.records = tuple(sorted(TLSARecord.from_rdata(rdata) for rdata in tlsa))
                walk.ttls.append(int(tlsa.ttl))
                sigs = find_rrset(reply.answer, current, dns.rdatatype.RRSIG, dns.rdatatype.TLSA)
                walk.signed_ttls.append(_original_ttl(sigs))
                walk.signer = _signer(sigs, current)
                walk.rrsig_expires = _earliest_expiration(sigs)
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
    except TimedOut:
        return walk.done(
            Status.TIMEOUT, f"no answer from resolver {resolver} ({tries} x {timeout:g} s)"
        )
    except Unreachable as exc:
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
    rrsig_expires: datetime | None = None

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
            rrsig_expires=self.rrsig_expires if answered else None,
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


def _servfail(walk: _Walk, name: dns.name.Name, budget: Budget) -> TLSAAnswer:
    """BOGUS when the resolver says DNSSEC failed (EDE), or when it answers with CD set."""
    dnssec = [ede for ede in walk.extended_errors if ede.code in DNSSEC_EDE_CODES]
    detail = "; ".join(str(ede) for ede in walk.extended_errors)
    if dnssec:
        return walk.done(Status.BOGUS, f"DNSSEC validation failed at {name}: {detail}")
    # Without an EDE, ask again with checking disabled (RFC 4035 §3.2.2): an answer now means
    # the data are reachable but do not validate; a SERVFAIL again means they are unreachable.
    try:
        reply, _ = ask(walk.resolver, name, dns.rdatatype.TLSA, budget, cd=True)
    except (TimedOut, Unreachable):
        reply = None
    suffix = f" ({detail})" if detail else ""
    if reply is not None and reply.rcode() in ANSWERED:
        return walk.done(
            Status.BOGUS, f"DNSSEC validation failed at {name}: SERVFAIL, answered with CD{suffix}"
        )
    return walk.done(
        Status.FAILED,
        f"SERVFAIL for {name}, even with checking disabled: its servers are unreachable or "
        f"broken{suffix}",
    )


def _why_insecure(resolver: Resolver, name: dns.name.Name, budget: Budget) -> InsecureCause:
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
            reply, _ = ask(resolver, ancestor, dns.rdatatype.DNSKEY, budget)
        except (TimedOut, Unreachable):
            return InsecureCause.UNKNOWN
        if reply.rcode() in ANSWERED and reply.flags & dns.flags.AD:
            return InsecureCause.UNSIGNED
    return InsecureCause.RESOLVER_NOT_VALIDATING


def _negative_ttl(reply: dns.message.Message) -> tuple[int | None, int | None]:
    """(TTL as served, as signed) of a denial: min(SOA TTL, SOA MINIMUM), RFC 2308 §5."""
    for rrset in reply.authority:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.rdclass == IN:
            soa = rrset[0]
            minimum = int(soa.minimum) if isinstance(soa, SOA) else int(rrset.ttl)
            signed = _original_ttl(
                find_rrset(reply.authority, rrset.name, dns.rdatatype.RRSIG, dns.rdatatype.SOA)
            )
            return (
                min(int(rrset.ttl), minimum),
                min(signed, minimum) if signed is not None else None,
            )
    return None, None


def _original_ttl(sigs: dns.rrset.RRset | None) -> int | None:
    ttls = [int(sig.original_ttl) for sig in sigs or () if isinstance(sig, RRSIG)]
    return min(ttls) if ttls else None


def _earliest_expiration(sigs: dns.rrset.RRset | None) -> datetime | None:
    # RFC 4034 §3.1.5: the expiration is seconds since the epoch (serial arithmetic beyond
    # 2106 aside, as dnspython keeps it).
    ends = [int(sig.expiration) for sig in sigs or () if isinstance(sig, RRSIG)]
    return datetime.fromtimestamp(min(ends), timezone.utc) if ends else None


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
