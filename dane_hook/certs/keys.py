"""Public keys: the only part of a key dane-hook keeps; private key material stays in the loader."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from dane_hook.errors import BadInput

PublicKey = (
    rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
    | dsa.DSAPublicKey
)
_KEY_TYPES = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
    dsa.DSAPublicKey,
)


def checked_key(key: object, source: str = "key") -> PublicKey:
    """The key, when it is of a type TLS certificates use; else a BadInput."""
    if isinstance(key, _KEY_TYPES):
        return key
    raise BadInput(f"{source}: a key of type {type(key).__name__} cannot be used for TLS")


def public_key_of(certificate: x509.Certificate) -> PublicKey | None:
    """The certificate's key, or None when cryptography cannot use its algorithm."""
    try:
        key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return None
    return key if isinstance(key, _KEY_TYPES) else None


def spki_der(key: PublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of a key (RFC 5280 §4.1.2.7)."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
