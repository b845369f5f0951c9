"""The catalog's model: CA certificates with their CA, role and status, grouped by key."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from dane_hook.certs.chain import not_after, not_before
from dane_hook.certs.keys import public_key_of
from dane_hook.tlsa.generate import associate, certificate_record, selected_bytes
from dane_hook.tlsa.record import TLSARecord, Usage


class Status(str, Enum):
    """Whether a CA issues from a certificate's key, as the CA itself announces it."""

    ACTIVE = "active"
    """Issues now; Let's Encrypt picks among its active intermediates at random."""
    BACKUP = "backup"
    """Issues nothing now, but the CA may switch to it without warning."""
    RETIRED = "retired"
    """Issues no new certificate; certificates it issued may still be served."""
    UNKNOWN = "unknown"
    """The catalog does not know (the CA publishes no such list)."""


# The status of a key with several certificates (an intermediate and its cross-signs) is the
# liveliest of them: one active cross-sign makes the key active.
_LIVELINESS = {Status.ACTIVE: 3, Status.BACKUP: 2, Status.RETIRED: 1, Status.UNKNOWN: 0}

# Statuses a CA may issue the next certificate from.
MAY_ISSUE = (Status.ACTIVE, Status.BACKUP)


class Role(str, Enum):
    ROOT = "root"
    INTERMEDIATE = "intermediate"


class KeyFamily(str, Enum):
    """The key type families CAs keep separate intermediates for (MANIFEST.tsv `key` column)."""

    RSA = "RSA"
    ECDSA = "ECDSA"


def key_description(certificate: x509.Certificate) -> str:
    """The manifest's `key` column for a certificate: RSA-2048, ECDSA-P384, Ed25519, ..."""
    key = public_key_of(certificate)
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P256", "secp384r1": "P384", "secp521r1": "P521"}
        return f"ECDSA-{curve.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return "unknown"


def family_of(key: str) -> KeyFamily | None:
    """RSA-2048 -> RSA, ECDSA-P384 -> ECDSA; None for key types no public CA issues from."""
    prefix = key.split("-", 1)[0]
    return next((f for f in KeyFamily if f.value == prefix), None)


def common_name(certificate: x509.Certificate) -> str:
    """The subject's CN, else the whole subject (a CA certificate always has a subject)."""
    try:
        names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    except Exception:
        names = []
    for attribute in names:
        if isinstance(attribute.value, str):
            return attribute.value
    return certificate.subject.rfc4514_string() or "no subject"


@dataclass(frozen=True)
class CatalogEntry:
    """One CA certificate. Digests are computed from the certificate, never read from a file."""

    certificate: x509.Certificate
    ca: str
    """The CA operator, e.g. "letsencrypt"."""
    role: Role
    status: Status
    origin: str
    """Where the entry comes from: "shipped" or the overlay file's path."""
    file: str = ""
    """The certificate's file name in the shipped catalog."""

    @property
    def name(self) -> str:
        return common_name(self.certificate)

    @functools.cached_property
    def key(self) -> str:
        return key_description(self.certificate)

    @property
    def family(self) -> KeyFamily | None:
        return family_of(self.key)

    @functools.cached_property
    def spki_sha256(self) -> bytes:
        return certificate_record(self.certificate, Usage.DANE_TA, 1, 1).data

    @functools.cached_property
    def cert_sha256(self) -> bytes:
        return certificate_record(self.certificate, Usage.DANE_TA, 0, 1).data

    @property
    def not_before(self) -> datetime:
        return not_before(self.certificate)

    @property
    def not_after(self) -> datetime:
        return not_after(self.certificate)


@dataclass(frozen=True)
class CAKey:
    """A CA key and every catalog certificate of it (an intermediate and its cross-signs).

    A 2 1 x record pins the key, so it matches all of them alike; this is the unit coverage
    is counted in.
    """

    certificates: tuple[CatalogEntry, ...]

    @property
    def first(self) -> CatalogEntry:
        return self.certificates[0]

    @property
    def name(self) -> str:
        # Let's Encrypt Authority X3 was X1's key under another name: both are named.
        return "/".join(dict.fromkeys(e.name for e in self.certificates))

    @property
    def ca(self) -> str:
        return self.first.ca

    @property
    def role(self) -> Role:
        # A root's key stays a root when a cross-sign of it (not self-signed) is added.
        roles = {e.role for e in self.certificates}
        return Role.ROOT if Role.ROOT in roles else Role.INTERMEDIATE

    @property
    def status(self) -> Status:
        return max((e.status for e in self.certificates), key=_LIVELINESS.__getitem__)

    @property
    def key(self) -> str:
        return self.first.key

    @property
    def family(self) -> KeyFamily | None:
        return self.first.family

    @property
    def spki_sha256(self) -> bytes:
        return self.first.spki_sha256

    @property
    def not_after(self) -> datetime:
        return max(e.not_after for e in self.certificates)

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.origin for e in self.certificates))

    def records(self, usage: int, selector: int, mtype: int) -> list[TLSARecord]:
        """The records that pin this key: one for selector 1, one per certificate for 0."""
        out: list[TLSARecord] = []
        for entry in self.certificates:
            record = certificate_record(entry.certificate, usage, selector, mtype)
            if record not in out:
                out.append(record)
        return out

    def matches(self, record: TLSARecord) -> bool:
        """Whether the record's data is this key's (or one of its certificates')."""
        return any(
            associate(selected_bytes(e.certificate, record.selector), record.mtype) == record.data
            for e in self.certificates
        )

    def describe(self) -> str:
        """`YE3 (backup)`, for messages."""
        return f"{self.name} ({self.status.value})"


@dataclass(frozen=True)
class Catalog:
    """The shipped catalog with the local overlay merged over it."""

    entries: tuple[CatalogEntry, ...]
    as_of: date
    """The day the shipped catalog's statuses were taken from the CAs' own pages."""
    overlay: str | None = None
    """The overlay file read, if any."""
    warnings: tuple[str, ...] = ()
    """What went wrong reading the overlay, for the caller to show."""
    _by_spki: dict[bytes, CAKey] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        groups: dict[bytes, list[CatalogEntry]] = {}
        for entry in self.entries:
            groups.setdefault(entry.spki_sha256, []).append(entry)
        self._by_spki.update({spki: CAKey(tuple(group)) for spki, group in groups.items()})

    @property
    def keys(self) -> tuple[CAKey, ...]:
        return tuple(self._by_spki.values())

    def key_of(self, certificate: x509.Certificate) -> CAKey | None:
        """The catalog key of a certificate (by its SubjectPublicKeyInfo), if any."""
        return self._by_spki.get(certificate_record(certificate, Usage.DANE_TA, 1, 1).data)

    def matching(self, record: TLSARecord) -> tuple[CAKey, ...]:
        """The catalog keys a record's data pins (any selector and matching type)."""
        if record.selector == 1 and record.mtype == 1:
            found = self._by_spki.get(record.data)
            return (found,) if found is not None else ()
        return tuple(k for k in self._by_spki.values() if k.matches(record))

    def intermediates(
        self,
        ca: str,
        family: KeyFamily,
        statuses: Iterable[Status] = MAY_ISSUE,
        now: datetime | None = None,
    ) -> tuple[CAKey, ...]:
        """The CA's intermediate keys of a key family with one of `statuses`, unexpired at `now`."""
        wanted = set(statuses)
        return tuple(
            k
            for k in self._by_spki.values()
            if k.ca == ca
            and k.role is Role.INTERMEDIATE
            and k.family is family
            and k.status in wanted
            and (now is None or k.not_after > now)
        )


def merge(shipped: Iterable[CatalogEntry], overlay: Iterable[CatalogEntry]) -> list[CatalogEntry]:
    """The overlay over the shipped entries: a key the overlay names takes the overlay's CA and
    status for every certificate of it, shipped cross-signs included."""
    local = list(overlay)
    named = {e.spki_sha256: e for e in local}
    added = {e.cert_sha256 for e in local}
    merged: list[CatalogEntry] = []
    for entry in shipped:
        override = named.get(entry.spki_sha256)
        if override is None:
            merged.append(entry)
        elif entry.cert_sha256 not in added:
            merged.append(
                CatalogEntry(
                    entry.certificate,
                    override.ca,
                    entry.role,
                    override.status,
                    override.origin,
                    entry.file,
                )
            )
    return [*merged, *local]
