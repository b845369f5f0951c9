"""Every CA certificate shipped in dane_hook/catalog/data: dane-hook's records equal MANIFEST.tsv.

The manifest's digests were typed in from other sources; here dane-hook computes each digest from
the PEM file and the test compares it with the typed-in value, never the other way round.
"""

from __future__ import annotations

import csv
import io
from importlib.resources import as_file, files

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dane_hook.sources.files import load_certificates
from dane_hook.tlsa.generate import certificate_record

DATA = files("dane_hook.catalog") / "data"


def manifest_rows() -> list[dict[str, str]]:
    text = (DATA / "MANIFEST.tsv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


ROWS = manifest_rows()


def test_the_manifest_lists_every_certificate_file_once() -> None:
    listed = [row["file"] for row in ROWS]
    shipped = sorted(entry.name for entry in DATA.iterdir() if entry.name.endswith(".pem"))
    assert len(listed) == len(set(listed))
    assert sorted(listed) == shipped
    assert len(shipped) > 50


@pytest.mark.parametrize("row", ROWS, ids=[row["file"] for row in ROWS])
def test_records_equal_the_manifest(row: dict[str, str]) -> None:
    with as_file(DATA / row["file"]) as path:
        certificates = load_certificates(path)
    assert len(certificates) == 1
    [certificate] = certificates
    assert certificate_record(certificate, 2, 1, 1).data.hex() == row["spki_sha256"]
    assert certificate_record(certificate, 2, 1, 2).data.hex() == row["spki_sha512"]
    assert certificate_record(certificate, 2, 0, 1).data.hex() == row["cert_sha256"]


def key_type(row_key: str, certificate_key: object) -> bool:
    """The manifest's `key` column (RSA-2048, ECDSA-P384, ...) describes the certificate's key."""
    if isinstance(certificate_key, rsa.RSAPublicKey):
        return row_key == f"RSA-{certificate_key.key_size}"
    if isinstance(certificate_key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P256", "secp384r1": "P384"}.get(certificate_key.curve.name)
        return row_key == f"ECDSA-{curve}"
    return False


@pytest.mark.parametrize("row", ROWS, ids=[row["file"] for row in ROWS])
def test_key_column_describes_the_key(row: dict[str, str]) -> None:
    with as_file(DATA / row["file"]) as path:
        [certificate] = load_certificates(path)
    assert key_type(row["key"], certificate.public_key()), row["key"]
