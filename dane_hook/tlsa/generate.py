"""TLSA records of certificates and keys, computed as DANE clients compute them (RFC 6698 §2.1)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dane_hook.certs.chain import ServedChain
from dane_hook.certs.keys import PublicKey
from dane_hook.certs.keys import spki_der as key_spki_der
from dane_hook.errors import BadInput, shown
from dane_hook.tlsa.record import MatchingType, Selector, TLSARecord, Usage

DEFAULT_LEAF_PARAMS = (3, 1, 1)
DEFAULT_ISSUER_PARAMS = (2, 1, 1)


def _der_element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of element) of the DER element at offset."""
    if offset + 2 > len(data):
        raise BadInput("certificate DER is truncated")
    tag = data[offset]
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise BadInput("certificate DER has a bad length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise BadInput("certificate DER is truncated")
    return tag, start, end


def certificate_spki_der(certificate: x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo exactly as encoded in the certificate (RFC 5280 §4.1).

    Taken from the TBSCertificate bytes rather than re-encoded from the parsed key, so the
    digest is that of the bytes a client hashes, whatever the key type.
    """
    tbs = certificate.tbs_certificate_bytes
    _, start, _ = _der_element(tbs, 0)
    position = start
    tag, _, end = _der_element(tbs, position)
    if tag == 0xA0:  # [0] EXPLICIT version
        position = end
    # serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo
    for _ in range(5):
        _, _, position = _der_element(tbs, position)
    tag, _, end = _der_element(tbs, position)
    if tag != 0x30:
        raise BadInput("certificate has no SubjectPublicKeyInfo where RFC 5280 puts it")
    return tbs[position:end]


def selected_bytes(certificate: x509.Certificate, selector: int) -> bytes:
    """The bytes a selector picks: the whole certificate (0) or its SPKI (1), RFC 6698 §2.1.2."""
    if selector == Selector.CERT:
        return certificate.public_bytes(serialization.Encoding.DER)
    return certificate_spki_der(certificate)


def associate(selected: bytes, mtype: int) -> bytes:
    """Certificate association data for a matching type (RFC 6698 §2.1.3)."""
    if mtype == MatchingType.FULL:
        return selected
    if mtype == MatchingType.SHA2_256:
        return hashlib.sha256(selected).digest()
    if mtype == MatchingType.SHA2_512:
        return hashlib.sha512(selected).digest()
    raise BadInput(f"matching type {mtype} is not defined (RFC 6698 §7.4)")


def certificate_record(
    certificate: x509.Certificate, usage: int, selector: int, mtype: int
) -> TLSARecord:
    return TLSARecord(
        usage, selector, mtype, associate(selected_bytes(certificate, selector), mtype)
    )


def key_record(key: PublicKey, usage: int, mtype: int) -> TLSARecord:
    """A selector 1 record of a bare key: a key alone has no certificate to select."""
    return TLSARecord(usage, Selector.SPKI, mtype, associate(key_spki_der(key), mtype))


@dataclass(frozen=True)
class RecordSource:
    """A record with the certificate or key it was computed from, for output."""

    record: TLSARecord
    role: str
    """"leaf", "issuer" or "key"."""
    depth: int
    """Position on the served path: 0 for the leaf, 1 for its issuer, and so on."""
    subject: str


def parse_params(text: str) -> list[tuple[int, int, int]]:
    """`311,211` or `3 1 1, 2 1 1` into (usage, selector, matching type) triples."""
    triples: list[tuple[int, int, int]] = []
    for item in text.split(","):
        digits = item.replace(" ", "")
        if len(digits) != 3 or not (digits.isascii() and digits.isdigit()):
            raise BadInput(f"--params: {shown(item, 16)} is not three digits like 311")
        usage, selector, mtype = (int(d) for d in digits)
        if usage not in (Usage.DANE_TA, Usage.DANE_EE):
            raise BadInput(f"--params: usage {usage} is not 2 or 3 (SMTP uses DANE-TA and DANE-EE)")
        if selector not in (0, 1) or mtype not in (0, 1, 2):
            raise BadInput(f"--params: {shown(item, 16)}: selector is 0 or 1, matching type 0-2")
        triples.append((usage, selector, mtype))
    return triples


def chain_records(
    chain: ServedChain,
    params: Iterable[tuple[int, int, int]] = (DEFAULT_LEAF_PARAMS, DEFAULT_ISSUER_PARAMS),
) -> list[RecordSource]:
    """Usage 3 records for the leaf and usage 2 records for each issuer on the served path."""
    wanted = list(params)
    out: list[RecordSource] = []
    for usage, selector, mtype in wanted:
        if usage == Usage.DANE_EE:
            out.append(
                RecordSource(
                    certificate_record(chain.leaf, usage, selector, mtype),
                    "leaf",
                    0,
                    chain.leaf.subject.rfc4514_string(),
                )
            )
    for depth, issuer in enumerate(chain.issuers, start=1):
        for usage, selector, mtype in wanted:
            if usage == Usage.DANE_TA:
                out.append(
                    RecordSource(
                        certificate_record(issuer, usage, selector, mtype),
                        "issuer",
                        depth,
                        issuer.subject.rfc4514_string(),
                    )
                )
    return out


def key_records(key: PublicKey, params: Sequence[tuple[int, int, int]]) -> list[RecordSource]:
    """Records of a bare key: usage 3, selector 1 only (a key has no certificate)."""
    out = []
    for usage, selector, mtype in params:
        if usage == Usage.DANE_EE and selector == Selector.SPKI:
            out.append(RecordSource(key_record(key, usage, mtype), "key", 0, ""))
    if not out:
        raise BadInput("a bare key gives only usage 3 selector 1 records; ask for 311 or 312")
    return out
