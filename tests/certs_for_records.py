"""A root, an intermediate and a leaf of one key type, built with cryptography for record tests."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

# The leaf key types of issue 2 item 7, named as the CA manifest names them.
KEY_TYPES = ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384", "Ed25519")

HOST = "mail.example.test"
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


def new_key(key_type: str) -> PrivateKey:
    if key_type.startswith("RSA-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    if key_type == "ECDSA-P256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ECDSA-P384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type}")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(
    subject: str,
    key: PrivateKey,
    issuer: str,
    issuer_key: PrivateKey,
    *,
    ca: bool,
    now: datetime.datetime,
) -> x509.Certificate:
    """One certificate; CA certificates get basicConstraints CA:TRUE, leaves a DNS name."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False
        )
    # Ed25519 signs the message itself (RFC 8410): no separate hash algorithm.
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


@dataclass(frozen=True)
class IssuedChain:
    """root -> intermediate -> leaf; the intermediate and the leaf have the key type named."""

    key_type: str
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: PrivateKey

    def write(self, folder: Path) -> ChainFiles:
        """The files a certbot lineage has, plus the root, the intermediate and key variants."""
        folder.mkdir(parents=True, exist_ok=True)

        def put(name: str, data: bytes) -> Path:
            path = folder / name
            path.write_bytes(data)
            return path

        leaf, intermediate, root = (
            c.public_bytes(PEM) for c in (self.leaf, self.intermediate, self.root)
        )
        traditional: Path | None = None
        if not isinstance(self.leaf_key, ed25519.Ed25519PrivateKey):
            # Ed25519 has no traditional ("BEGIN ... PRIVATE KEY" with a type) format: PKCS#8 only.
            traditional = put(
                "privkey-traditional.pem",
                self.leaf_key.private_bytes(
                    PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                ),
            )
        return ChainFiles(
            cert=put("cert.pem", leaf),
            intermediate=put("intermediate.pem", intermediate),
            root=put("root.pem", root),
            fullchain=put("fullchain.pem", leaf + intermediate),
            fullchain_with_root=put("fullchain-root.pem", leaf + intermediate + root),
            key_pkcs8=put(
                "privkey.pem",
                self.leaf_key.private_bytes(
                    PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
            ),
            key_traditional=traditional,
        )


@dataclass(frozen=True)
class ChainFiles:
    cert: Path
    intermediate: Path
    root: Path
    fullchain: Path
    """leaf + intermediate, as certbot's fullchain.pem."""
    fullchain_with_root: Path
    key_pkcs8: Path
    key_traditional: Path | None
    """None for Ed25519, which has only PKCS#8."""


def issued_chain(key_type: str, now: datetime.datetime | None = None) -> IssuedChain:
    """A fresh chain: a P-256 root, then an intermediate and a leaf with keys of key_type."""
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    root_key = new_key("ECDSA-P256")
    intermediate_key = new_key(key_type)
    leaf_key = new_key(key_type)
    root_name = f"Test Root for {key_type}"
    intermediate_name = f"Test Intermediate {key_type}"
    root = issue(root_name, root_key, root_name, root_key, ca=True, now=moment)
    intermediate = issue(
        intermediate_name, intermediate_key, root_name, root_key, ca=True, now=moment
    )
    leaf = issue(HOST, leaf_key, intermediate_name, intermediate_key, ca=False, now=moment)
    return IssuedChain(key_type, root, intermediate, leaf, leaf_key)
