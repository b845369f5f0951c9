"""A small certificate factory for tests: roots, intermediates, leaves and cross-signs.

Certificates are built with cryptography at test time. Keys are generated once per session and
cached by (label, key type), so a table of cases costs a handful of key generations; names are
deterministic ("dane-hook test <label>"), so a failing case reads well. Every case is judged at
the fixed instant `NOW` (OpenSSL gets it through `-attime`), which keeps validity dates exact.
The exception is `issued_chain()`, whose files go to tools and code that read the real clock.
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
    """The key types a leaf or CA may have, named as a CA's manifest names them."""

    RSA_2048 = "RSA-2048"
    RSA_3072 = "RSA-3072"
    RSA_4096 = "RSA-4096"
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


def valid_now() -> Validity:
    """From a day before the real current time to 90 days after, as an ACME CA issues: for
    certificates judged at the real time rather than at `NOW`."""
    now = datetime.now(timezone.utc)
    return Validity(now - timedelta(days=1), now + timedelta(days=90))


_RSA_BITS = {KeyType.RSA_2048: 2048, KeyType.RSA_3072: 3072, KeyType.RSA_4096: 4096}


@functools.cache
def private_key(label: str, key_type: KeyType = KeyType.ECDSA_P256) -> PrivateKey:
    """The session's key for `label`: the same label and type always give the same key."""
    if key_type in _RSA_BITS:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[key_type])
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
    issue them. The other values build the certificates OpenSSL's check_chain() and
    check_name_constraints() refuse on a DANE-TA path (and a few it takes)."""

    ca: bool | None = None
    """basicConstraints cA; None: as the role says (roots and intermediates are CAs)."""
    basic_constraints: bool = True
    """False: no basicConstraints extension at all."""
    path_length: int | None = None
    cert_sign: bool = True
    """keyUsage keyCertSign (and cRLSign) on a CA."""
    key_usage: tuple[str, ...] | None = None
    """keyUsage bits by KeyUsage field name; None: as the role says; (): none set."""
    key_usage_extension: bool = True
    """False: no keyUsage extension at all."""
    purposes: tuple[x509.ObjectIdentifier, ...] | None = None
    """extendedKeyUsage; None: serverAuth on a leaf, no extension on a CA."""
    permitted: tuple[str | x509.GeneralName, ...] = ()
    """nameConstraints permitted subtrees (a str is a dNSName); none when empty."""
    excluded: tuple[str | x509.GeneralName, ...] = ()
    """nameConstraints excluded subtrees (a str is a dNSName); none when empty."""
    extra: tuple[tuple[x509.ObjectIdentifier, bytes, bool], ...] = ()
    """More extensions as (OID, DER value, critical): a Netscape cert type, a private one."""
    version1: bool = False
    """An X.509 v1 certificate: no extensions at all (RFC 5280 §4.1.2.1)."""


PUBLIC_CA = Profile()


_KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _key_usage(ca: bool, signs_with_rsa: bool, profile: Profile) -> x509.KeyUsage | None:
    if not profile.key_usage_extension:
        return None
    if profile.key_usage is not None:
        bits = {name: name in profile.key_usage for name in _KEY_USAGE_BITS}
        return x509.KeyUsage(**bits)
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=not ca and signs_with_rsa,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca and profile.cert_sign,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _general_names(names: Sequence[str | x509.GeneralName]) -> list[x509.GeneralName] | None:
    if not names:
        return None
    return [x509.DNSName(n) if isinstance(n, str) else n for n in names]


def _certificate(
    subject: x509.Name,
    subject_key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    *,
    ca: bool,
    validity: Validity,
    names: Sequence[str | x509.GeneralName] = (),
    key_ids: bool = True,
    profile: Profile = PUBLIC_CA,
) -> x509.Certificate:
    """One certificate with the extensions a public CA puts in (RFC 5280 §4.2)."""
    if profile.version1:
        return _version1_certificate(subject, subject_key, issuer, issuer_key, validity)
    is_ca = ca if profile.ca is None else profile.ca
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
    )
    if profile.basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=profile.path_length if is_ca else None),
            critical=True,
        )
    key_usage = _key_usage(ca, isinstance(subject_key, rsa.RSAPrivateKey), profile)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    purposes = profile.purposes
    if purposes is None and not ca:
        purposes = (ExtendedKeyUsageOID.SERVER_AUTH,)
    if purposes:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(purposes)), critical=False)
    if profile.permitted or profile.excluded:
        builder = builder.add_extension(
            x509.NameConstraints(
                permitted_subtrees=_general_names(profile.permitted),
                excluded_subtrees=_general_names(profile.excluded),
            ),
            critical=True,
        )
    alt_names = _general_names(names)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    if key_ids:
        # The key identifiers let a client skip a same-named certificate with another key
        # (RFC 5280 §4.2.1.1); OpenSSL's issuer search uses them before any signature check.
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    for oid, value, critical in profile.extra:
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=critical)
    return builder.sign(issuer_key, _signature_hash(issuer_key))


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV (X.690 §8.1): definite length, short or long form."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


_ECDSA_WITH_SHA256 = _der(0x30, bytes.fromhex("06082a8648ce3d040302"))


def _version1_certificate(
    subject: x509.Name,
    subject_key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    validity: Validity,
) -> x509.Certificate:
    """An X.509 v1 certificate (no version field, no extensions), which cryptography's builder
    cannot make: the TBSCertificate is assembled here (RFC 5280 §4.1) and signed ECDSA-SHA256."""
    if not isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        raise ValueError("v1 test certificates are signed with ECDSA keys only")

    def utc_time(moment: datetime) -> bytes:
        return _der(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())

    serial = x509.random_serial_number()
    spki = subject_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tbs = _der(
        0x30,
        _der(0x02, serial.to_bytes((serial.bit_length() + 8) // 8, "big"))
        + _ECDSA_WITH_SHA256
        + issuer.public_bytes()
        + _der(0x30, utc_time(validity.not_before) + utc_time(validity.not_after))
        + subject.public_bytes()
        + spki,
    )
    signature = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _der(0x30, tbs + _ECDSA_WITH_SHA256 + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


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
    names: Sequence[str | x509.GeneralName] = (HOST,),
    *,
    label: str = "leaf",
    key_type: KeyType = KeyType.ECDSA_P256,
    validity: Validity = VALID,
    key_ids: bool = True,
    common_name: str | None = None,
    profile: Profile = PUBLIC_CA,
) -> Issued:
    """A server certificate for `names` (subjectAltNames, a str a dNSName; none when empty)
    with `common_name` (default the first dNSName) as its subject CN."""
    key = private_key(label, key_type)
    first = next(n for n in names if isinstance(n, str)) if common_name is None else common_name
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)])
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


@dataclass(frozen=True)
class ChainPaths:
    """The files `IssuedChain.write()` leaves, named as certbot and openssl users have them."""

    cert: Path
    intermediate: Path
    root: Path
    fullchain: Path
    """leaf + intermediate, as certbot's fullchain.pem."""
    fullchain_with_root: Path
    key_pkcs8: Path
    key_traditional: Path | None
    """The key as `BEGIN RSA/EC PRIVATE KEY`; None for Ed25519, which has only PKCS#8."""


@dataclass(frozen=True)
class IssuedChain:
    """root -> intermediate -> leaf, as `issued_chain()` makes it."""

    root: Issued
    intermediate: Issued
    leaf: Issued

    def write(self, folder: Path) -> ChainPaths:
        """The files a certbot lineage has, plus the root, the intermediate and key variants."""
        folder.mkdir(parents=True, exist_ok=True)

        def put(name: str, data: bytes) -> Path:
            path = folder / name
            path.write_bytes(data)
            return path

        leaf, intermediate, root = (c.pem() for c in (self.leaf, self.intermediate, self.root))
        traditional: Path | None = None
        if not isinstance(self.leaf.key, ed25519.Ed25519PrivateKey):
            # Ed25519 has no traditional form (RFC 8410 §7 defines PKCS#8 only).
            traditional = put(
                "privkey-traditional.pem",
                self.leaf.key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                ),
            )
        return ChainPaths(
            cert=put("cert.pem", leaf),
            intermediate=put("intermediate.pem", intermediate),
            root=put("root.pem", root),
            fullchain=put("fullchain.pem", leaf + intermediate),
            fullchain_with_root=put("fullchain-root.pem", leaf + intermediate + root),
            key_pkcs8=put("privkey.pem", self.leaf.key_pem()),
            key_traditional=traditional,
        )


def issued_chain(
    key_type: KeyType, *, label: str = "chain", validity: Validity | None = None
) -> IssuedChain:
    """A P-256 root, then an intermediate and a leaf for HOST with keys of `key_type`.

    `label` and the key type name all three, so another label gives other keys. They are valid
    at the real time unless `validity` says otherwise: their files go to openssl, ldns-dane and
    danetool, and to dane-hook code that takes the real now (build_chain's issuer preference).
    """
    validity = validity or valid_now()
    name = f"{label} {key_type.value}"
    top = root(f"root of {name}", validity=validity)
    ca = intermediate(f"intermediate of {name}", top, key_type=key_type, validity=validity)
    end = leaf(ca, label=f"leaf of {name}", key_type=key_type, validity=validity)
    return IssuedChain(top, ca, end)


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

        The restrictions are those of RESTRICTIONS: "not a CA" (basicConstraints cA false),
        "no keyCertSign", "clientAuth only" (extendedKeyUsage), "other names"
        (nameConstraints permit other.test only), ...
        """
        return _restricted_chain(self.root, what)

    def restricted_cn_leaf(self, what: str, common_name: str) -> tuple[Issued, Issued]:
        """A leaf without subjectAltName, named `common_name`, of the intermediate
        `restricted_chain(what)` has, and that intermediate."""
        _, ca = self.restricted_chain(what)
        return _common_name_leaf(ca, common_name), ca

    def restricted_leaf(self, what: str) -> Issued:
        """A leaf of intermediate A1 restricted as LEAF_RESTRICTIONS[what] says."""
        return _restricted_leaf(self.intermediate, what)

    def constrained_chain(
        self, label: str, profile: Profile, names: Sequence[str | x509.GeneralName]
    ) -> tuple[Issued, Issued]:
        """A leaf with subjectAltNames `names` and an intermediate of root A with `profile`
        (its nameConstraints) that issued it; `label` names both."""
        return _constrained_chain(label, profile, tuple(names))

    def restricted_root_chain(self, what: str) -> tuple[Issued, Issued, Issued]:
        """Leaf, intermediate and a root restricted as ROOT_RESTRICTIONS[what] says."""
        return _restricted_root_chain(what)

    @functools.cached_property
    def trailing_dot_leaf(self) -> Issued:
        """A leaf whose only dNSName is "mx.example.test." (with the root's dot)."""
        return leaf(self.intermediate, [HOST + "."], label="trailing-dot leaf")

    @functools.cached_property
    def tld_wildcard_leaf(self) -> Issued:
        return leaf(self.intermediate, ["*.test"], label="TLD wildcard leaf")

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
    def short_path_intermediate(self) -> tuple[Issued, Issued, Issued]:
        """Leaf, intermediate K2 and intermediate K1 with pathLenConstraint 0 that issued K2
        (root A issued K1): K2 breaks K1's path length."""
        upper = intermediate("intermediate K1", self.root, profile=Profile(path_length=0))
        lower = intermediate("intermediate K2", upper)
        return leaf(lower, label="leaf of K2"), lower, upper

    @functools.cached_property
    def rollover_of_short_path_root(self) -> tuple[Issued, Issued]:
        """A leaf and root L's new key certified by its old one: same name, so a self-issued
        CA, which RFC 5280 §6.1.4 (l) does not count against root L's path length of 0."""
        renewed = intermediate("root L", self.short_path_root, key_label="root L new key")
        return leaf(renewed, label="leaf of renewed root L"), renewed

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


NETSCAPE_CERT_TYPE = x509.ObjectIdentifier("2.16.840.1.113730.1.1")
NETSCAPE_SGC = x509.ObjectIdentifier("2.16.840.1.113730.4.1")
PRIVATE_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.32473.1.1")
"""An extension nobody handles, an ASN.1 NULL as its value. The arc is the one RFC 5612
reserves for documentation; a UUID arc (2.25.<128 bits>) does not parse in cryptography 38."""


def netscape_cert_type(bits: int) -> tuple[x509.ObjectIdentifier, bytes, bool]:
    """A Netscape cert type extension whose BIT STRING's first octet is `bits` (0x80 SSL client,
    0x40 SSL server, 0x04 SSL CA, 0x02 S/MIME CA), as DER: trailing zero bits unused."""
    unused = (bits & -bits).bit_length() - 1
    return (NETSCAPE_CERT_TYPE, bytes([0x03, 0x02, unused, bits]), False)


CRITICAL_PRIVATE = (PRIVATE_EXTENSION, b"\x05\x00", True)
CRITICAL_POLICIES = (x509.ObjectIdentifier("2.5.29.32"), bytes.fromhex("3006300406022a03"), True)
"""certificatePolicies (policy 1.2.3) marked critical: an extension OpenSSL handles."""

RESTRICTIONS = {
    "not a CA": Profile(ca=False),
    "no keyCertSign": Profile(cert_sign=False),
    "clientAuth only": Profile(purposes=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
    "anyExtendedKeyUsage only": Profile(purposes=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,)),
    "serverAuth and clientAuth": Profile(
        purposes=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    ),
    "without basicConstraints": Profile(basic_constraints=False),
    "only a Netscape SSL CA": Profile(
        basic_constraints=False, key_usage_extension=False, extra=(netscape_cert_type(0x04),)
    ),
    "only a Netscape S/MIME CA": Profile(
        basic_constraints=False, key_usage_extension=False, extra=(netscape_cert_type(0x02),)
    ),
    "v1": Profile(version1=True),
    "with a critical private extension": Profile(extra=(CRITICAL_PRIVATE,)),
    "with critical certificatePolicies": Profile(extra=(CRITICAL_POLICIES,)),
    "with an empty keyUsage": Profile(key_usage=()),
    "other names": Profile(permitted=("other.test",)),
    "excludes example.test": Profile(excluded=("example.test",)),
    "excludes other.test": Profile(excluded=("other.test",)),
    "permits example.test": Profile(permitted=("example.test",)),
    "permits ample.test": Profile(permitted=("ample.test",)),
    "permits dirName O=other": Profile(
        permitted=(
            x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "other")])),
        )
    ),
    "permits dirName CN=MX.Example.Test": Profile(
        permitted=(
            x509.DirectoryName(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MX.Example.Test")])
            ),
        )
    ),
}
"""Intermediates as `Cast.restricted_chain()` builds them."""

LEAF_RESTRICTIONS = {
    "for clientAuth only": Profile(purposes=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
    "for anyExtendedKeyUsage only": Profile(purposes=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,)),
    "without extendedKeyUsage": Profile(purposes=()),
    "for Netscape Server Gated Crypto only": Profile(purposes=(NETSCAPE_SGC,)),
    "with keyCertSign only": Profile(key_usage=("key_cert_sign",)),
    "with keyEncipherment only": Profile(key_usage=("key_encipherment",)),
    "marked Netscape SSL client": Profile(extra=(netscape_cert_type(0x80),)),
    "marked Netscape SSL server": Profile(extra=(netscape_cert_type(0x40),)),
    "with a critical private extension": Profile(extra=(CRITICAL_PRIVATE,)),
    "in X.509 v1": Profile(version1=True),
    "with an empty keyUsage": Profile(key_usage=()),
}
"""Leaves of intermediate A1 as `Cast.restricted_leaf()` builds them."""

ROOT_RESTRICTIONS = {
    "other names": Profile(permitted=("other.test",)),
    "clientAuth only": Profile(purposes=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
    "v1": Profile(version1=True),
}
"""Roots as `Cast.restricted_root_chain()` builds them."""


@functools.cache
def _constrained_chain(
    label: str, profile: Profile, names: tuple[str | x509.GeneralName, ...]
) -> tuple[Issued, Issued]:
    ca = intermediate(f"constrained {label}", cast().root, profile=profile)
    return leaf(ca, names, label=f"leaf of constrained {label}"), ca


@functools.cache
def _restricted_root_chain(what: str) -> tuple[Issued, Issued, Issued]:
    top = root(f"root {what}", profile=ROOT_RESTRICTIONS[what])
    ca = intermediate(f"intermediate of root {what}", top)
    return leaf(ca, label=f"leaf of root {what}"), ca, top


@functools.cache
def _restricted_leaf(issuer: Issued, what: str) -> Issued:
    return leaf(issuer, label=f"leaf {what}", profile=LEAF_RESTRICTIONS[what])


@functools.cache
def _common_name_leaf(issuer: Issued, common_name: str) -> Issued:
    return leaf(issuer, (), label=f"CN-only leaf {common_name}", common_name=common_name)


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
