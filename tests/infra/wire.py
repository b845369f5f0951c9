"""Plain DNS exchanges the harness needs: direct queries and RFC 2136 updates signed with TSIG."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update

from tests.infra.procs import LabError


def ask(
    address: str,
    port: int,
    name: str | dns.name.Name,
    rdtype: str,
    *,
    recursion: bool = False,
    dnssec: bool = True,
    payload: int = 1232,
    timeout: float = 1.0,
    tcp: bool = False,
) -> dns.message.Message | None:
    """One query; None when nothing answered in time (the readiness polls retry)."""
    query = dns.message.make_query(name, rdtype, want_dnssec=dnssec, payload=payload)
    if not recursion:
        query.flags &= ~dns.flags.RD
    try:
        if tcp:
            return dns.query.tcp(query, address, timeout=timeout, port=port)
        # A connected socket learns of "port unreachable" at once: a daemon still starting
        # costs a millisecond per poll, not a whole timeout.
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect((address, port))
            return dns.query.udp(query, address, timeout=timeout, port=port, sock=sock)
    except (dns.exception.DNSException, OSError):
        return None


def soa_serial(address: str, port: int, zone: str) -> int | None:
    """The SOA serial a server serves for `zone`, or None when it does not (yet)."""
    reply = ask(address, port, zone, "SOA", dnssec=False)
    if reply is None or reply.rcode() != dns.rcode.NOERROR:
        return None
    rrset = reply.get_rrset(
        reply.answer, dns.name.from_text(zone), dns.rdataclass.IN, dns.rdatatype.SOA
    )
    if rrset is None:
        return None
    soa = rrset[0]
    assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
    return int(soa.serial)


def is_signed(address: str, port: int, zone: str) -> bool:
    """True when the server serves a signed DNSKEY RRset at the zone apex."""
    reply = ask(address, port, zone, "DNSKEY")
    if reply is None:
        return False
    apex = dns.name.from_text(zone)
    return (
        reply.get_rrset(
            reply.answer, apex, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY
        )
        is not None
    )


def ds_texts(address: str, port: int, zone: str) -> list[str]:
    """DS rdata (SHA-256) of the zone's KSKs, computed from the DNSKEY RRset it serves."""
    reply = ask(address, port, zone, "DNSKEY", tcp=True)
    if reply is None:
        raise LabError(f"no DNSKEY answer for {zone} from {address}@{port}")
    apex = dns.name.from_text(zone)
    keys = reply.get_rrset(reply.answer, apex, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    if keys is None:
        raise LabError(f"{zone} has no DNSKEY at {address}@{port}")
    # RFC 4034 §2.1.1: flags 257 = zone key + secure entry point (the KSK the parent points at).
    return [
        dns.dnssec.make_ds(apex, key, "SHA256").to_text()
        for key in keys
        if getattr(key, "flags", 0) == 257
    ]


class Updater:
    """RFC 2136 dynamic updates signed with one TSIG key (RFC 8945), sent over TCP."""

    def __init__(self, address: str, port: int, key_name: str, secret: str) -> None:
        self.address = address
        self.port = port
        self.key_name = key_name
        self.keyring = dns.tsigkeyring.from_text({key_name: ("hmac-sha256", secret)})

    def send(
        self,
        zone: str,
        *,
        add: Sequence[tuple[str, int, str, str]] = (),
        delete: Sequence[tuple[str, str, str | None]] = (),
    ) -> None:
        """Delete (owner, type, rdata or None: the RRset), then add (owner, ttl, type, rdata)."""
        update = dns.update.UpdateMessage(
            zone,
            keyring=self.keyring,
            keyname=dns.name.from_text(self.key_name),
            keyalgorithm=dns.tsig.HMAC_SHA256,
        )
        for owner, rdtype, rdata in delete:
            if rdata is None:
                update.delete(owner, rdtype)
            else:
                update.delete(owner, rdtype, rdata)
        for owner, ttl, rdtype, rdata in add:
            update.add(owner, ttl, rdtype, rdata)
        reply = dns.query.tcp(update, self.address, port=self.port, timeout=5.0)
        if reply.rcode() != dns.rcode.NOERROR:
            raise LabError(f"update of {zone} refused: {dns.rcode.to_text(reply.rcode())}")
