"""A small certificate factory for tests: roots, intermediates, leaves and cross-signs.

Certificates are built with cryptography at test time. Keys are generated once per session and
cached by (label, key type), so a table of cases costs a handful of key generations; names are
deterministic ("dane-hook test <label>"), so a failing case reads well. Every case is judged at
the fixed instant `NOW` (OpenSSL gets it through `-attime`), which keeps validity dates exact.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
"""The instant every case is judged at, by dane-hook (`now=`) and by OpenSSL (`-attime`)."""

HOST = "mx.example.test"
"""The default name a leaf carries and a client expects."""


class KeyType(str, Enum):
    RSA_2048 = "RSA-2048"
    ECDSA_P256 = "ECDSA-P256"
    ECDSA_P384 = "ECDSA-P384"
    ED25519 = "Ed25519"


@dataclass(frozen=True)
class Validity:
    not_before: datetime
    not_after: datetime


VALID = Validity(NOW - timedelta(days=30), NOW + timedelta(days=60))
EXPIRED = Validity(NOW - timedelta(days=120), NOW - timedelta(days=30))
NOT_YET_VALID = Validity(NOW + timedelta(days=10), NOW + timedelta(days=100))


@functools.cache
def private_key(label: str, key_type: KeyType = KeyType.ECDSA_P256) -> PrivateKey:
    """The session's key for `label`: the same label and type always give the same key."""
    if key_type is KeyType.RSA_2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type is KeyType.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if key_type is KeyType.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


@dataclass(frozen=True)
class Issued:
    """A certificate and the private key of its subject (which can issue further down)."""

    certificate: x509.Certificate
    key: PrivateKey

    @property
    def subject(self) -> x509.Name:
        return self.certificate.subject

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, as ACME clients write it."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def ca_name(label: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dane-hook tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"dane-hook test {label}"),
        ]
    )


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None  # EdDSA signs the message itself (RFC 8410 §6)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


@dataclass(frozen=True)
class Profile:
    """The RFC 5280 §4.2 extensions that say what a certificate may do; defaults as public CAs
    issue them. The other values build the certificates OpenSSL's check_chain_extensions()
    and check_name_constraints() refuse on a DANE-TA path."""

    ca: bool | None = None
    """basicConstraints cA; None: as the role says (roots and intermediates are CAs)."""
    path_length: int | None = None
    cert_sign: bool = True
    """keyUsage keyCertSign (and cRLSign) on a CA."""
    purposes: tuple[x509.ObjectIdentifier, ...] | None = None
    """extendedKeyUsage; None: serverAuth on a leaf, no extension on a CA."""
    permitted: tuple[str, ...] = ()
    """nameConstraints permitted dNSName subtrees; none when empty."""


PUBLIC_CA = Profile()


def _certificate(
    subject: x509.Name,
    subject_key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    *,
    ca: bool,
    validity: Validity,
    names: Sequence[str] = (),
    key_ids: bool = True,
    profile: Profile = PUBLIC_CA,
) -> x509.Certificate:
    """One certificate with the extensions a public CA puts in (RFC 5280 §4.2)."""
    is_ca = ca if profile.ca is None else profile.ca
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
        .add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=profile.path_length if is_ca else None),
            critical=True,
        )
    )
    signs_with_rsa = isinstance(subject_key, rsa.RSAPrivateKey)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=not ca,
            content_commitment=False,
            key_encipherment=not ca and signs_with_rsa,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca and profile.cert_sign,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    purposes = profile.purposes
    if purposes is None and not ca:
        purposes = (ExtendedKeyUsageOID.SERVER_AUTH,)
    if purposes:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(purposes)), critical=False)
    if profile.permitted:
        builder = builder.add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.DNSName(n) for n in profile.permitted],
                excluded_subtrees=None,
            ),
            critical=True,
        )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    if key_ids:
        # The key identifiers let a client skip a same-named certificate with another key
        # (RFC 5280 §4.2.1.1); OpenSSL's issuer search uses them before any signature check.
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, _signature_hash(issuer_key))


def root(
    label: str,
    *,
    key_type: KeyType = KeyType.ECDSA_P256,
    validity: Validity = VALID,
    key_ids: bool = True,
    profile: Profile = PUBLIC_CA,
) -> Issued:
    """A self-signed CA certificate."""
    key = private_key(label, key_type)
    name = ca_name(label)
    certificate = _certificate(
        name, key, name, key, ca=True, validity=validity, key_ids=key_ids, profile=profile
    )
    return Issued(certificate, key)


def intermediate(
    label: str,
    issuer: Issued,
    *,
    key_type: KeyType = KeyType.ECDSA_P256,
    validity: Validity = VALID,
    key_ids: bool = True,
    key_label: str | None = None,
    profile: Profile = PUBLIC_CA,
) -> Issued:
    """A CA certificate issued by `issuer`; `key_label` picks another key for the same name."""
    key = private_key(key_label or label, key_type)
    certificate = _certificate(
        ca_name(label),
        key,
        issuer.subject,
        issuer.key,
        ca=True,
        validity=validity,
        key_ids=key_ids,
        profile=profile,
    )
    return Issued(certificate, key)


def leaf(
    issuer: Issued,
    names: Sequence[str] = (HOST,),
    *,
    label: str = "leaf",
    key_type: KeyType = KeyType.ECDSA_P256,
    validity: Validity = VALID,
    key_ids: bool = True,
    common_name: str | None = None,
    profile: Profile = PUBLIC_CA,
) -> Issued:
    """A server certificate for `names` (subjectAltName dNSNames; none when empty) with
    `common_name` (default the first name) as its subject CN."""
    key = private_key(label, key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or names[0])])
    certificate = _certificate(
        subject,
        key,
        issuer.subject,
        issuer.key,
        ca=False,
        validity=validity,
        names=names,
        key_ids=key_ids,
        profile=profile,
    )
    return Issued(certificate, key)


def cross_sign(subject: Issued, issuer: Issued, *, validity: Validity = VALID) -> Issued:
    """The same CA (subject name and key) certified by another CA, as roots are cross-signed."""
    certificate = _certificate(
        subject.subject, subject.key, issuer.subject, issuer.key, ca=True, validity=validity
    )
    return Issued(certificate, subject.key)


def self_signed_leaf(
    names: Sequence[str] = (HOST,),
    *,
    label: str = "self-signed leaf",
    validity: Validity = VALID,
) -> Issued:
    """A server certificate that is its own issuer but not a CA, as `openssl req -x509` makes."""
    key = private_key(label)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    certificate = _certificate(subject, key, subject, key, ca=False, validity=validity, names=names)
    return Issued(certificate, key)


def association(issued: Issued, selector: int, mtype: int) -> bytes:
    """Certificate association data computed here, independently of dane_hook.records.

    Selector 0 is the certificate's DER, 1 its SubjectPublicKeyInfo as cryptography encodes
    it; matching type 0 is the data itself, 1 its SHA-256, 2 its SHA-512 (RFC 6698 §2.1).
    """
    if selector == 0:
        selected = issued.der()
    else:
        selected = issued.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if mtype == 1:
        return hashlib.sha256(selected).digest()
    if mtype == 2:
        return hashlib.sha512(selected).digest()
    return selected


def rdata(issued: Issued, usage: int, selector: int, mtype: int) -> str:
    """A TLSA record for the certificate in presentation form, `U S M HEX`."""
    return f"{usage} {selector} {mtype} {association(issued, selector, mtype).hex()}"


def pem_bundle(certificates: Iterable[Issued], *, noise: bool = False) -> bytes:
    """A PEM file of the certificates in the order given; with `noise`, text around the blocks
    as `openssl x509 -text` or a CA's download page leaves it."""
    parts: list[bytes] = []
    for number, issued in enumerate(certificates):
        if noise:
            parts.append(f"# {number}: {issued.subject.rfc4514_string()}\n".encode())
        parts.append(issued.pem())
    return b"".join(parts)


def write_bundle(path: Path, certificates: Iterable[Issued], *, noise: bool = False) -> Path:
    path.write_bytes(pem_bundle(certificates, noise=noise))
    return path


class Cast:
    """The certificates the matching tests share, each built on first use; see `cast()`.

    Root A issues intermediate A1, which issues the leaf for mx.example.test: the chain of a
    public CA. The other members are variations on it, named for what makes them special.
    """

    @functools.cached_property
    def root(self) -> Issued:
        return root("root A")

    @functools.cached_property
    def intermediate(self) -> Issued:
        return intermediate("intermediate A1", self.root)

    @functools.cached_property
    def leaf(self) -> Issued:
        return leaf(self.intermediate)

    @functools.cached_property
    def other_leaf(self) -> Issued:
        """Another key for the same name: what a stale 3 x x record was computed from."""
        return leaf(self.intermediate, label="other leaf")

    @functools.cached_property
    def other_intermediate(self) -> Issued:
        """A sibling intermediate of the same root: what a stale 2 x x record pins."""
        return intermediate("intermediate A2", self.root)

    @functools.cached_property
    def unrelated_ca(self) -> Issued:
        return root("unrelated CA Z")

    @functools.cached_property
    def expired_intermediate(self) -> Issued:
        return intermediate("intermediate EXP", self.root, validity=EXPIRED)

    @functools.cached_property
    def leaf_of_expired_intermediate(self) -> Issued:
        return leaf(self.expired_intermediate, label="leaf of expired intermediate")

    @functools.cached_property
    def intermediate_expired_copy(self) -> Issued:
        """Intermediate A1 as it was before its renewal: same name and key, expired."""
        return intermediate("intermediate A1", self.root, validity=EXPIRED)

    @functools.cached_property
    def expired_root(self) -> Issued:
        return root("root EXP", validity=EXPIRED)

    @functools.cached_property
    def intermediate_of_expired_root(self) -> Issued:
        return intermediate("intermediate EXP-1", self.expired_root)

    @functools.cached_property
    def leaf_of_expired_root(self) -> Issued:
        return leaf(self.intermediate_of_expired_root, label="leaf of expired root")

    @functools.cached_property
    def expired_leaf(self) -> Issued:
        return leaf(self.intermediate, label="expired leaf", validity=EXPIRED)

    @functools.cached_property
    def future_leaf(self) -> Issued:
        return leaf(self.intermediate, label="future leaf", validity=NOT_YET_VALID)

    @functools.cached_property
    def wildcard_leaf(self) -> Issued:
        return leaf(self.intermediate, ["*.example.test"], label="wildcard leaf")

    @functools.cached_property
    def partial_wildcard_leaf(self) -> Issued:
        return leaf(self.intermediate, ["mx*.example.test"], label="partial wildcard leaf")

    @functools.cached_property
    def common_name_leaf(self) -> Issued:
        """A leaf with no subjectAltName: clients fall back to its CN (RFC 6125 §6.4.4)."""
        return leaf(self.intermediate, (), label="CN-only leaf", common_name=HOST)

    @functools.cached_property
    def alt_name_leaf(self) -> Issued:
        """A leaf whose CN is mx.example.test but whose only dNSName is alt.example.test:
        with a dNSName present the CN does not count (RFC 6125 §6.4.4)."""
        return leaf(
            self.intermediate, ["alt.example.test"], label="alt-name leaf", common_name=HOST
        )

    @functools.cached_property
    def new_root(self) -> Issued:
        """Root B, an RSA root that root A cross-signs while B is not yet widely trusted."""
        return root("root B", key_type=KeyType.RSA_2048)

    @functools.cached_property
    def new_root_cross_signed(self) -> Issued:
        return cross_sign(self.new_root, self.root)

    @functools.cached_property
    def new_intermediate(self) -> Issued:
        return intermediate("intermediate B1", self.new_root)

    @functools.cached_property
    def new_leaf(self) -> Issued:
        return leaf(self.new_intermediate, label="leaf of B")

    @functools.cached_property
    def impostor(self) -> Issued:
        """Intermediate A1's subject name on another key: it does not issue the leaf."""
        return intermediate("intermediate A1", self.root, key_label="impostor")

    @functools.cached_property
    def plain_root(self) -> Issued:
        """Root P and its chain carry no key identifiers (SKI/AKI), as some private CAs do."""
        return root("root P", key_ids=False)

    @functools.cached_property
    def plain_intermediate(self) -> Issued:
        return intermediate("intermediate P1", self.plain_root, key_ids=False)

    @functools.cached_property
    def plain_leaf(self) -> Issued:
        return leaf(self.plain_intermediate, label="plain leaf", key_ids=False)

    @functools.cached_property
    def plain_impostor(self) -> Issued:
        return intermediate(
            "intermediate P1", self.plain_root, key_ids=False, key_label="plain impostor"
        )

    @functools.cached_property
    def client_auth_leaf(self) -> Issued:
        """A leaf whose extendedKeyUsage is clientAuth only: not for a TLS server."""
        profile = Profile(purposes=(ExtendedKeyUsageOID.CLIENT_AUTH,))
        return leaf(self.intermediate, label="client-auth leaf", profile=profile)

    def restricted_chain(self, what: str) -> tuple[Issued, Issued]:
        """An intermediate of root A restricted as `what` says, and a leaf it issues.

        "not a CA" (basicConstraints cA false), "no keyCertSign", "clientAuth only"
        (extendedKeyUsage), "other names" (nameConstraints permit other.test only).
        """
        return _restricted_chain(self.root, what)

    @functools.cached_property
    def short_path_root(self) -> Issued:
        """A root with pathLenConstraint 0: no CA certificate may follow it on a path."""
        return root("root L", profile=Profile(path_length=0))

    @functools.cached_property
    def too_long_path(self) -> tuple[Issued, Issued]:
        """A leaf and intermediate L1 under root L: L1 breaks root L's path length."""
        first = intermediate("intermediate L1", self.short_path_root)
        return leaf(first, label="leaf of L1"), first

    @functools.cached_property
    def self_signed(self) -> Issued:
        return self_signed_leaf()

    @functools.cached_property
    def rsa_root(self) -> Issued:
        return root("root R", key_type=KeyType.RSA_2048)

    @functools.cached_property
    def rsa_intermediate(self) -> Issued:
        return intermediate("intermediate R1", self.rsa_root, key_type=KeyType.RSA_2048)

    @functools.cached_property
    def p384_root(self) -> Issued:
        return root("root E", key_type=KeyType.ECDSA_P384)

    @functools.cached_property
    def p384_intermediate(self) -> Issued:
        return intermediate("intermediate E1", self.p384_root, key_type=KeyType.ECDSA_P384)

    def leaf_of_type(self, key_type: KeyType, issuer: Issued | None = None) -> Issued:
        issuer = issuer or self.intermediate
        label = f"{key_type.value} leaf of {issuer.subject.rfc4514_string()}"
        return _cached_leaf(issuer, key_type, label)


RESTRICTIONS = {
    "not a CA": Profile(ca=False),
    "no keyCertSign": Profile(cert_sign=False),
    "clientAuth only": Profile(purposes=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
    "other names": Profile(permitted=("other.test",)),
}


@functools.cache
def _restricted_chain(issuer: Issued, what: str) -> tuple[Issued, Issued]:
    ca = intermediate(f"intermediate {what}", issuer, profile=RESTRICTIONS[what])
    return leaf(ca, label=f"leaf of intermediate {what}"), ca


@functools.cache
def _cached_leaf(issuer: Issued, key_type: KeyType, label: str) -> Issued:
    return leaf(issuer, label=label, key_type=key_type)


@functools.cache
def cast() -> Cast:
    """The session's cast of certificates."""
    return Cast()
