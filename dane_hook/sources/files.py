"""Plain files: certificate bundles (PEM in any order, or one DER certificate) and keys."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dane_hook.certs.keys import PublicKey, checked_key
from dane_hook.errors import BadInput, shown_path

# A full CA bundle (ca-certificates.crt) is about 200 KiB; certificate files are a few KiB.
MAX_FILE_SIZE = 2 * 1024 * 1024

# OpenSSL accepts blanks after the BEGIN line (files pasted from mail or web pages have them).
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----[ \t]*\r?\n(.*?)-----END \1-----", re.DOTALL)
_PRIVATE_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"}
_ENCRYPTED_LABELS = {b"ENCRYPTED PRIVATE KEY"}


def read_input(path: str | Path) -> bytes:
    """The bytes of a file, with one clear error for every way reading it can fail."""
    p = Path(path)
    try:
        with p.open("rb") as handle:
            data = handle.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError as exc:
        raise BadInput(f"{shown_path(p)}: no such file", "check the path") from exc
    except IsADirectoryError as exc:
        raise BadInput(
            f"{shown_path(p)}: is a directory, not a file", "give the path of a PEM file"
        ) from exc
    except PermissionError as exc:
        raise BadInput(
            f"{shown_path(p)}: permission denied", "run as a user that may read it"
        ) from exc
    except OSError as exc:
        raise BadInput(f"{shown_path(p)}: cannot be read ({exc.strerror or exc})") from exc
    if len(data) > MAX_FILE_SIZE:
        raise BadInput(
            f"{shown_path(p)}: larger than {MAX_FILE_SIZE // (1024 * 1024)} MiB, "
            "not a certificate or key file"
        )
    if not data.strip():
        raise BadInput(f"{shown_path(p)}: the file is empty")
    return data


def pem_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(label, whole block) for every PEM block, ignoring any text around them."""
    return [(m.group(1), m.group(0) + b"\n") for m in _PEM_BLOCK.finditer(data)]


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (any order, text around the blocks), or one DER file."""
    return parse_certificates(read_input(path), str(path))


def parse_certificates(data: bytes, path: str) -> list[x509.Certificate]:
    """The certificates of bytes read from `path` (named in errors)."""
    blocks = pem_blocks(data)
    if not blocks:
        if b"-----BEGIN" in data:
            raise BadInput(f"{shown_path(path)}: a PEM block is not terminated (truncated file?)")
        try:
            return [_parsed(x509.load_der_x509_certificate(data))]
        except Exception as exc:  # cryptography raises ValueError and others on garbage
            raise BadInput(
                f"{shown_path(path)}: holds no certificate (neither PEM nor DER)",
                "give the certificate or fullchain file",
            ) from exc
    certificates: list[x509.Certificate] = []
    for number, (label, block) in enumerate(blocks, start=1):
        if label != b"CERTIFICATE":
            continue
        try:
            certificates.append(_parsed(x509.load_pem_x509_certificate(block)))
        except Exception as exc:
            raise BadInput(
                f"{shown_path(path)}: PEM block {number} is not a valid certificate"
            ) from exc
    if not certificates:
        labels = ", ".join(sorted({label.decode() for label, _ in blocks}))
        raise BadInput(
            f"{shown_path(path)}: holds no certificate (found {labels})",
            "give the certificate or fullchain file here, not the key",
        )
    if data.count(b"-----BEGIN") > len(blocks):
        raise BadInput(f"{shown_path(path)}: a PEM block is not terminated (truncated file?)")
    return certificates


def _parsed(certificate: x509.Certificate) -> x509.Certificate:
    """The certificate, once its names are known to parse.

    cryptography decodes subject and issuer only when first asked for them (and then raises
    ValueError); OpenSSL refuses such a certificate as it reads it, and so do we.
    """
    _ = (certificate.subject, certificate.issuer)
    return certificate


def load_public_key(path: str | Path) -> PublicKey:
    """The public key of a private key file (PKCS#8 or traditional) or of a public key file.

    Only the public part is kept: nothing derived from the private key is returned, printed
    or logged.
    """
    return parse_public_key(read_input(path), str(path))


def parse_public_key(data: bytes, path: str) -> PublicKey:
    """The public key of key bytes read from `path` (named in errors)."""
    blocks = pem_blocks(data)
    labels = [label for label, _ in blocks]
    if any(label in _ENCRYPTED_LABELS for label in labels) or any(
        b"Proc-Type: 4,ENCRYPTED" in block for _, block in blocks
    ):
        raise BadInput(
            f"{shown_path(path)}: the private key is encrypted",
            "give the unencrypted key the server uses, or the certificate instead",
        )
    for label, block in blocks:
        if label in _PRIVATE_KEY_LABELS:
            return _public_of_private(path, serialization.load_pem_private_key, block)
        if label == b"PUBLIC KEY":
            try:
                return checked_key(serialization.load_pem_public_key(block), str(path))
            except BadInput:
                raise
            except Exception as exc:
                raise BadInput(f"{shown_path(path)}: the public key cannot be read") from exc
    if blocks:
        found = ", ".join(sorted({label.decode() for label in labels}))
        raise BadInput(
            f"{shown_path(path)}: holds no key (found {found})", "give the private key file"
        )
    if b"-----BEGIN" in data:
        raise BadInput(f"{shown_path(path)}: a PEM block is not terminated (truncated file?)")
    try:
        return _public_of_private(path, serialization.load_der_private_key, data)
    except BadInput:
        pass
    try:
        return checked_key(serialization.load_der_public_key(data), str(path))
    except Exception as exc:
        raise BadInput(f"{shown_path(path)}: holds no key (neither PEM nor DER)") from exc


def _public_of_private(path: str | Path, loader: object, data: bytes) -> PublicKey:
    try:
        private = loader(data, password=None)  # type: ignore[operator]
    except TypeError as exc:
        # cryptography: "Password was not given but private key is encrypted"
        raise BadInput(
            f"{shown_path(path)}: the private key is encrypted",
            "give the unencrypted key the server uses, or the certificate instead",
        ) from exc
    except Exception as exc:
        raise BadInput(
            f"{shown_path(path)}: the private key cannot be read (damaged or unsupported)"
        ) from exc
    # The message must never include key material: only the path and the kind of failure.
    return checked_key(private.public_key(), str(path))
