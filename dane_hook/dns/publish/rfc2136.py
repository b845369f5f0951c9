"""RFC 2136 dynamic updates signed with TSIG: add and delete single TLSA records at the primary.

Only two kinds of update are ever sent: "add to an RRset" (RFC 2136 §2.5.1) and "delete an RR
from an RRset" (§2.5.4, class NONE). Neither touches the other records at the owner, so
records of others beside ours survive. An RRset is never deleted or replaced (§2.5.2/§2.5.3).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.tsig
import dns.update

from dane_hook.dns.publish.base import (
    Change,
    Outcome,
    Publisher,
    PublishError,
    RRsetView,
    Settings,
    owner_name,
)
from dane_hook.dns.publish.tsig import TsigKey, load_tsig_key

DEFAULT_TIMEOUT = 10.0

_TRANSIENT_RCODES = {dns.rcode.SERVFAIL}  # the server could not do it now; REFUSED etc. stay


class Rfc2136Publisher(Publisher):
    """Updates sent over TCP to `server` (default: the zone's primary, its SOA MNAME)."""

    kind = "rfc2136"

    def __init__(
        self,
        name: str,
        key: TsigKey,
        *,
        server: str | None = None,
        port: int = 53,
        zone: dns.name.Name | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        resolver: tuple[str, int] | None = None,
        ttl: int | None = None,
    ) -> None:
        """`server`: an address or host name; `resolver`: (address, port) used to find the
        zone's SOA and the server's address when `server` is not given (default: the system's).
        """
        super().__init__(name, ttl)
        self.key = key
        self.server = server
        self.port = port
        self.zone = zone
        self.timeout = timeout
        self.resolver = resolver
        self._zones: dict[dns.name.Name, dns.name.Name] = {}
        self._addresses: dict[dns.name.Name, str] = {}

    @classmethod
    def from_table(cls, settings: Settings) -> Rfc2136Publisher:
        key_file = settings.path("key_file", required=True)
        assert key_file is not None
        key_name = settings.string("key_name")
        server = settings.string("server")
        port = settings.integer("port", 1, 65535, 53)
        zone = settings.zone()
        timeout = settings.seconds("timeout", DEFAULT_TIMEOUT)
        resolver = settings.string("resolver")
        if resolver is not None:
            try:
                ipaddress.ip_address(resolver)
            except ValueError:
                raise settings.fail("resolver", "an IP address") from None
        resolver_port = settings.integer("resolver_port", 1, 65535, 53)
        ttl = settings.integer("ttl", 0, 2**31 - 1)
        settings.finish()
        assert port is not None and resolver_port is not None
        return cls(
            settings.name,
            load_tsig_key(Path(key_file), key_name),
            server=server,
            port=port,
            zone=zone,
            timeout=timeout,
            resolver=(resolver, resolver_port) if resolver else None,
            ttl=ttl,
        )

    # -- Publisher --------------------------------------------------------------------------

    def read(self, owner: dns.name.Name | str) -> RRsetView:
        """The TLSA RRset as the update server itself serves it (asked without recursion)."""
        name = owner_name(owner)
        zone = self.zone_of(name)
        reply = self._query(zone, name, dns.rdatatype.TLSA)
        rrset = reply.get_rrset(reply.answer, name, dns.rdataclass.IN, dns.rdatatype.TLSA)
        if rrset is None:
            return RRsetView(name, None, ())
        return RRsetView(name, rrset.ttl, tuple(sorted(rdata.to_text() for rdata in rrset)))

    def apply(self, changes: Sequence[Change]) -> Outcome:
        """One UPDATE per zone; RFC 2136 §3 applies each message as a whole or not at all."""
        per_zone: dict[dns.name.Name, list[Change]] = {}
        for change in changes:
            per_zone.setdefault(self.zone_of(change.owner), []).append(change)
        for zone, zone_changes in per_zone.items():
            self._update(zone, zone_changes)
        return Outcome(tuple(changes))

    # -- the zone and its primary -----------------------------------------------------------

    def zone_of(self, owner: dns.name.Name) -> dns.name.Name:
        """The apex of the zone holding `owner`: the `zone` setting, else from an SOA query."""
        if self.zone is not None:
            if not owner.is_subdomain(self.zone):
                raise PublishError(
                    f"{owner} is not in zone {self.zone} (publisher {self.name})",
                    transient=False,
                    zone=self.zone.to_text(),
                )
            return self.zone
        found = self._zones.get(owner)
        if found is None:
            found = self._find_zone(owner)
            self._zones[owner] = found
        return found

    def _find_zone(self, owner: dns.name.Name) -> dns.name.Name:
        if self.server is None:
            try:
                return dns.resolver.zone_for_name(owner, resolver=self._resolver())
            except dns.exception.DNSException as error:
                raise PublishError(
                    f"cannot find the zone of {owner}: {_reason(error)}",
                    transient=True,
                    key_name=self.key.name.to_text(),
                ) from None
        # An authoritative server answers an SOA question with the zone's SOA: in the answer
        # at the apex, in the authority section below it (RFC 2308 §2.1, §2.2).
        reply = self._query(None, owner, dns.rdatatype.SOA)
        for section in (reply.answer, reply.authority):
            for rrset in section:
                if rrset.rdtype == dns.rdatatype.SOA and owner.is_subdomain(rrset.name):
                    return rrset.name
        raise PublishError(
            f"{self._where(None)}: no zone holding {owner} there "
            f"({dns.rcode.to_text(reply.rcode())}, no SOA)",
            transient=False,
            server=self._server_text(None),
            key_name=self.key.name.to_text(),
            hint="set `zone` or point `server` at the zone's primary",
        )

    def _resolver(self) -> dns.resolver.Resolver:
        if self.resolver is None:
            resolver = dns.resolver.Resolver()
        else:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [self.resolver[0]]
            resolver.port = self.resolver[1]
        resolver.lifetime = self.timeout
        return resolver

    def _address(self, zone: dns.name.Name | None) -> str:
        """The address updates go to: `server`, else the primary named by the SOA MNAME."""
        if self.server is not None:
            try:
                ipaddress.ip_address(self.server)
                return self.server
            except ValueError:
                host = dns.name.from_text(self.server)
        else:
            assert zone is not None
            if zone in self._addresses:
                return self._addresses[zone]
            try:
                soa = self._resolver().resolve(zone, dns.rdatatype.SOA)
                host = soa[0].mname
            except dns.exception.DNSException as error:
                raise PublishError(
                    f"cannot find the primary of zone {zone}: {_reason(error)}",
                    transient=True,
                    zone=zone.to_text(),
                    key_name=self.key.name.to_text(),
                ) from None
        address = self._host_address(host, zone)
        if zone is not None:
            self._addresses[zone] = address
        return address

    def _host_address(self, host: dns.name.Name, zone: dns.name.Name | None) -> str:
        resolver = self._resolver()
        failure: dns.exception.DNSException | None = None
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                return str(resolver.resolve(host, rdtype)[0])
            except dns.exception.DNSException as error:
                failure = error
        assert failure is not None
        raise PublishError(
            f"cannot find the address of {host}: {_reason(failure)}",
            transient=True,
            zone=zone.to_text() if zone else "",
            key_name=self.key.name.to_text(),
        )

    def _server_text(self, zone: dns.name.Name | None) -> str:
        if self.server is not None:
            return f"{self.server}@{self.port}"
        return f"{self._addresses.get(zone, 'primary') if zone else 'primary'}@{self.port}"

    def _where(self, zone: dns.name.Name | None) -> str:
        target = self._server_text(zone)
        if zone is None:
            return f"server {target} (key {self.key.name})"
        return f"zone {zone} at {target} (key {self.key.name})"

    # -- sending ----------------------------------------------------------------------------

    def _query(
        self, zone: dns.name.Name | None, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        query.flags &= ~dns.flags.RD  # the server's own data, not a resolver's view
        reply = self._exchange(zone, query)
        if reply.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise self._failure(
                zone,
                f"{dns.rdatatype.to_text(rdtype)} query for {name} answered "
                f"{dns.rcode.to_text(reply.rcode())}",
                reply.rcode() in _TRANSIENT_RCODES,
            )
        return reply

    def _exchange(
        self, zone: dns.name.Name | None, message: dns.message.Message
    ) -> dns.message.Message:
        address = self._address(zone)
        try:
            return dns.query.tcp(message, address, port=self.port, timeout=self.timeout)
        except dns.exception.Timeout:
            raise self._failure(zone, f"no answer within {self.timeout:g} s", True) from None
        except dns.tsig.PeerBadKey:
            # Knot also answers NOTAUTH + BADKEY when its ACL denies a known key the update
            # (e.g. `update-type: [TLSA]` and an A record); BIND answers REFUSED there.
            raise self._failure(
                zone,
                "NOTAUTH/BADKEY: the server does not know this key or does not allow it this "
                "update",
                False,
            ) from None
        except dns.tsig.PeerBadSignature:
            raise self._failure(
                zone, "NOTAUTH/BADSIG: the server's secret for this key differs", False
            ) from None
        except dns.tsig.PeerBadTime:
            raise self._failure(zone, "BADTIME: the clocks differ too much", False) from None
        except dns.tsig.PeerError as error:
            raise self._failure(zone, f"TSIG error {type(error).__name__}", False) from None
        except (dns.message.UnknownTSIGKey, dns.tsig.BadSignature):
            raise self._failure(
                zone, "the answer's TSIG signature does not verify", False
            ) from None
        except dns.exception.DNSException as error:
            raise self._failure(zone, f"bad answer: {_reason(error)}", False) from None
        except (EOFError, ConnectionError) as error:
            raise self._failure(zone, f"connection lost: {_reason(error)}", True) from None
        except OSError as error:
            raise self._failure(zone, f"cannot reach it: {_reason(error)}", True) from None

    def _failure(self, zone: dns.name.Name | None, reason: str, transient: bool) -> PublishError:
        return PublishError(
            f"{self._where(zone)}: {reason}",
            transient=transient,
            zone=zone.to_text() if zone else "",
            server=self._server_text(zone),
            key_name=self.key.name.to_text(),
        )

    def new_update(self, zone: dns.name.Name) -> dns.update.UpdateMessage:
        """An empty UPDATE for `zone`, to be signed with this publisher's key when sent."""
        return dns.update.UpdateMessage(
            zone,
            keyring=self.key.key(),
            keyname=self.key.name,
            keyalgorithm=self.key.algorithm,
        )

    def send(self, zone: dns.name.Name, update: dns.update.UpdateMessage) -> None:
        """Send one UPDATE to the zone's server; anything but NOERROR is a PublishError."""
        reply = self._exchange(zone, update)
        rcode = reply.rcode()
        if rcode != dns.rcode.NOERROR:
            raise self._failure(zone, _rcode_reason(rcode), rcode in _TRANSIENT_RCODES)

    def _update(self, zone: dns.name.Name, changes: Sequence[Change]) -> None:
        update = self.new_update(zone)
        ttls: dict[dns.name.Name, int | None] = {}
        for change in changes:
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, change.rdata)
            if change.action == "remove":
                update.delete(change.owner, rdata)  # §2.5.4: this one RR, class NONE
                continue
            if change.owner not in ttls:
                ttls[change.owner] = self.read(change.owner).ttl
            # RFC 2181 §5.2: one TTL per RRset. An add with another TTL would change the TTL
            # of every record at the owner (servers apply it to the RRset), so keep theirs.
            existing = ttls[change.owner]
            update.add(change.owner, existing if existing is not None else change.ttl, rdata)
        self.send(zone, update)
        self._verify(zone, changes)

    def _verify(self, zone: dns.name.Name, changes: Sequence[Change]) -> None:
        """The server said NOERROR; check that the records are (or are gone) as asked."""
        views = {owner: self.read(owner) for owner in {c.owner for c in changes}}
        for change in changes:
            present = change.rdata in views[change.owner].records
            if present != (change.action == "add"):
                raise self._failure(
                    zone, f"NOERROR, but {change} is not in effect on the server", False
                )


def _rcode_reason(rcode: dns.rcode.Rcode) -> str:
    text = dns.rcode.to_text(rcode)
    return {
        dns.rcode.REFUSED: "REFUSED: the key may not make this update (ACL or update type)",
        dns.rcode.NOTAUTH: "NOTAUTH: the server is not authoritative or refused the key",
        dns.rcode.NOTZONE: "NOTZONE: a record is outside the zone",
        dns.rcode.SERVFAIL: "SERVFAIL: the server could not apply it now",
    }.get(rcode, f"{text}: update not applied")


def _reason(error: BaseException) -> str:
    """One line about an exception, without any argument that could hold secret bytes."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = " ".join(str(error).split())
    return text[:200] if text else type(error).__name__
