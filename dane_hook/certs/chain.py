"""The chain as a server presents it: the leaf, then the issuers OpenSSL picks, each verified."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from dane_hook.certs.keys import PublicKey, public_key_of, spki_der
from dane_hook.certs.pkix import likely_issued, self_signed
from dane_hook.errors import BadInput

MAX_PATH_LENGTH = 10


@dataclass(frozen=True)
class ServedChain:
    """A leaf and the issuer path above it, built from a bundle as a client would."""

    leaf: x509.Certificate
    issuers: tuple[x509.Certificate, ...]
    """Issuers from the leaf upward, as OpenSSL picks them; each one's key verifies the
    signature of the one below."""
    stray: tuple[x509.Certificate, ...] = ()
    """Bundle certificates that are not on the leaf's issuer path."""
    key_checked: bool = False
    """True when a private or public key was given and the leaf was chosen by it."""
    unverified_issuer: x509.Certificate | None = None
    """The certificate OpenSSL takes as the issuer of the top of `issuers` (or of the leaf)
    although its key does not verify that certificate's signature: a same-named certificate
    without key identifiers that comes before the real issuer. Not on the path; a client's
    chain goes through it and fails its signature check (x509_vfy.c internal_verify)."""

    @property
    def path(self) -> tuple[x509.Certificate, ...]:
        """The leaf followed by its issuers: depth i is path[i]."""
        return (self.leaf, *self.issuers)


def not_before(certificate: x509.Certificate) -> datetime:
    # not_valid_before_utc is cryptography >= 42; Debian 12 has 38, which gives naive UTC.
    value = getattr(certificate, "not_valid_before_utc", None)
    if isinstance(value, datetime):
        return value
    return certificate.not_valid_before.replace(tzinfo=timezone.utc)


def not_after(certificate: x509.Certificate) -> datetime:
    value = getattr(certificate, "not_valid_after_utc", None)
    if isinstance(value, datetime):
        return value
    return certificate.not_valid_after.replace(tzinfo=timezone.utc)


def is_valid_at(certificate: x509.Certificate, now: datetime) -> bool:
    return not_before(certificate) <= now <= not_after(certificate)


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    except Exception:  # a malformed extension: not something a client trusts as a CA
        return False
    return bool(constraints.value.ca)


def signed_by(certificate: x509.Certificate, key: PublicKey) -> bool:
    """True when key verifies the certificate's signature (RFC 5280 §6.1.3 (a)(1))."""
    signature = certificate.signature
    data = certificate.tbs_certificate_bytes
    try:
        algorithm = certificate.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey):
            if algorithm is None:
                return False
            oid = certificate.signature_algorithm_oid
            if oid == x509.SignatureAlgorithmOID.RSASSA_PSS:
                key.verify(
                    signature,
                    data,
                    padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO),
                    algorithm,
                )
            else:
                key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if algorithm is None:
                return False
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, data)
        elif isinstance(key, dsa.DSAPublicKey):
            if algorithm is None:
                return False
            key.verify(signature, data, algorithm)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def issues(issuer: x509.Certificate, certificate: x509.Certificate) -> bool:
    """True when issuer's subject is certificate's issuer and its key verifies the signature."""
    if issuer.subject != certificate.issuer:
        return False
    key = public_key_of(issuer)
    return key is not None and signed_by(certificate, key)


def is_self_signed(certificate: x509.Certificate) -> bool:
    return issues(certificate, certificate)


def pick_issuer(
    candidates: Sequence[x509.Certificate], certificate: x509.Certificate, now: datetime
) -> x509.Certificate | None:
    """The issuer a client takes among several: one valid now, else the latest to expire.

    This is OpenSSL's choice (crypto/x509/x509_vfy.c get0_best_issuer_sk, find_issuer in
    1.1) among the candidates in the order the server sends them, and like OpenSSL it checks
    no signature: a candidate fits when pkix.likely_issued() says so (names, authority key
    identifier, key type). Its signature is checked by the caller.
    """
    fitting = [c for c in candidates if likely_issued(c, certificate)]
    if not fitting:
        return None
    for candidate in fitting:
        if is_valid_at(candidate, now):
            return candidate
    return max(fitting, key=not_after)


def _same(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a.public_bytes(serialization.Encoding.DER) == b.public_bytes(serialization.Encoding.DER)


def find_leaf(
    certificates: Sequence[x509.Certificate], key: PublicKey | None, source: str
) -> x509.Certificate:
    """The certificate whose key is the given key, else the first that is not a CA."""
    if key is not None:
        wanted = spki_der(key)
        for certificate in certificates:
            cert_key = public_key_of(certificate)
            if cert_key is not None and spki_der(cert_key) == wanted:
                return certificate
        raise BadInput(
            f"{source}: the key does not match any certificate in it",
            "give the key that belongs to this certificate",
        )
    for certificate in certificates:
        if not is_ca(certificate):
            return certificate
    return certificates[0]


def build_chain(
    certificates: Sequence[x509.Certificate],
    key: PublicKey | None = None,
    *,
    now: datetime | None = None,
    source: str = "bundle",
) -> ServedChain:
    """The leaf and its issuer path from a bundle in any order (RFC 5246 §7.4.2 not assumed)."""
    if not certificates:
        raise BadInput(f"{source}: holds no certificate")
    moment = now or datetime.now(timezone.utc)
    leaf = find_leaf(certificates, key, source)
    path = [leaf]
    pool = [c for c in certificates if c is not leaf and not _same(c, leaf)]
    unverified: x509.Certificate | None = None
    while len(path) < MAX_PATH_LENGTH:
        top = path[-1]
        # OpenSSL's build_chain() seeks no issuer above a self-signed certificate, judged by
        # names and key identifiers (X509_self_signed(top, 0)).
        if self_signed(top):
            break
        issuer = pick_issuer([c for c in pool if not any(_same(c, p) for p in path)], top, moment)
        # The certificate OpenSSL takes must also verify the signature (internal_verify), or
        # a client's path ends here: a same-named certificate without key identifiers that
        # comes first in the bundle stands in front of the real issuer.
        if issuer is None:
            break
        issuer_key = public_key_of(issuer)
        if issuer_key is None or not signed_by(top, issuer_key):
            unverified = issuer
            break
        path.append(issuer)
    stray = tuple(c for c in certificates if not any(_same(c, p) for p in path))
    return ServedChain(
        leaf=leaf,
        issuers=tuple(path[1:]),
        stray=stray,
        key_checked=key is not None,
        unverified_issuer=unverified,
    )
