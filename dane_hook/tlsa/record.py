"""TLSA records: the registries of RFC 6698 §7 and one record, parsed by dnspython.

dnspython is imported only where a record is parsed: it costs more start-up time than the
whole `records` command otherwise needs, and the hooks must start fast. Emitting needs no
parser: `to_text()` writes the presentation format dnspython writes with chunksize 0 (a test
holds the two equal).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

# Host and owner names are read by the configuration too, which comes first in the pipeline:
# their rules live in dane_hook.dnsname and are re-exported here, where records need them.
from dane_hook.dnsname import PROTOCOLS as PROTOCOLS
from dane_hook.dnsname import a_label as a_label
from dane_hook.dnsname import absolute_name as absolute_name
from dane_hook.dnsname import endpoint_name as endpoint_name
from dane_hook.dnsname import owner_name as owner_name
from dane_hook.dnsname import u_label_form as u_label_form
from dane_hook.errors import BadInput, shown

if TYPE_CHECKING:
    import dns.rdata
    from dns.rdtypes.ANY.TLSA import TLSA


class Usage(IntEnum):
    """Certificate usage (RFC 6698 §7.2, names from RFC 7218)."""

    PKIX_TA = 0
    PKIX_EE = 1
    DANE_TA = 2
    DANE_EE = 3


class Selector(IntEnum):
    """Which part of a certificate is matched (RFC 6698 §7.3)."""

    CERT = 0
    SPKI = 1


class MatchingType(IntEnum):
    """How the selected part is presented (RFC 6698 §7.4)."""

    FULL = 0
    SHA2_256 = 1
    SHA2_512 = 2


DIGEST_SIZES = {MatchingType.SHA2_256: 32, MatchingType.SHA2_512: 64}

# RFC 7671 §9: for one usage and selector a client uses only the strongest matching type
# present; OpenSSL ranks Full(0) < SHA2-256(1) < SHA2-512(2) and always tries Full.
MATCHING_RANK = {MatchingType.FULL: 0, MatchingType.SHA2_256: 1, MatchingType.SHA2_512: 2}


@dataclass(frozen=True, order=True)
class TLSARecord:
    """One TLSA rdata: usage, selector, matching type and certificate association data."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    @property
    def params(self) -> tuple[int, int, int]:
        """The (usage, selector, matching type) combination of RFC 7671 §8."""
        return (self.usage, self.selector, self.mtype)

    def to_rdata(self) -> TLSA:
        """The dnspython rdata (dnspython >= 2.5 refuses a digest of the wrong length)."""
        import dns.rdata
        import dns.rdataclass
        import dns.rdatatype
        from dns.rdtypes.ANY.TLSA import TLSA

        rdata = dns.rdata.from_wire(
            dns.rdataclass.IN,
            dns.rdatatype.TLSA,
            bytes([self.usage, self.selector, self.mtype]) + self.data,
            0,
            3 + len(self.data),
        )
        assert isinstance(rdata, TLSA)
        return rdata

    def to_text(self) -> str:
        """`U S M hex`: lowercase hex without spaces, as dnspython emits with chunksize 0.

        A digest of the wrong length, which newer dnspython refuses, is shown as published:
        it is still well-formed TLSA (RFC 6698 §2.2).
        """
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"

    def short(self) -> str:
        """The record with its data shortened, for messages."""
        hexdata = self.data.hex()
        shown = hexdata if len(hexdata) <= 16 else f"{hexdata[:8]}...{hexdata[-8:]}"
        return f"{self.usage} {self.selector} {self.mtype} {shown}"

    @classmethod
    def from_rdata(cls, rdata: dns.rdata.Rdata) -> TLSARecord:
        from dns.rdtypes.ANY.TLSA import TLSA

        if not isinstance(rdata, TLSA):
            raise BadInput(f"not a TLSA record: {rdata.to_text()}")
        return cls(int(rdata.usage), int(rdata.selector), int(rdata.mtype), bytes(rdata.cert))

    @classmethod
    def from_text(cls, text: str, where: str = "") -> TLSARecord:
        """Parse `U S M HEX` (spaces inside the hex allowed) through dnspython; `where` names
        the input in errors ("FILE: line 3", "--record")."""
        import dns.exception
        import dns.rdata
        import dns.rdataclass
        import dns.rdatatype

        try:
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, text)
        except (dns.exception.DNSException, ValueError, TypeError) as exc:
            fields = _wrong_length_digest(text)
            if fields is not None:
                return cls(*fields)
            raise not_a_record(text, where, str(exc)) from exc
        return cls.from_rdata(rdata)


_LOOKS_LIKE_RECORD = re.compile(r"^\s*\d{1,3}\s+\d{1,3}\s+\d{1,3}(?:\s|$)")


def not_a_record(text: str, where: str, detail: str = "") -> BadInput:
    """The error for a line that is not a TLSA record. The line is quoted only when it already
    looks like one (three small numbers first), and then only a short prefix of it: a wrong
    file given as TLSA text may be a private key without its PEM armour (issue 15)."""
    prefix = f"{where}: " if where else ""
    message = f"{prefix}not a TLSA record: expected 'USAGE SELECTOR MTYPE DATA'"
    if _LOOKS_LIKE_RECORD.match(text):
        message += f", found {shown(text, 24)}"
        if detail and shown(detail).startswith("'"):
            message += f" ({detail})"
    return BadInput(message, "for example '3 1 1 <64 hex digits>'")


def _wrong_length_digest(text: str) -> tuple[int, int, int, bytes] | None:
    """The fields of a TLSA text that dnspython refuses only for its digest length.

    Newer dnspython checks that a SHA-256/512 digest has 32/64 bytes; such a record is
    still well-formed TLSA, which clients skip as unusable (OpenSSL's SSL_dane_tlsa_add()).
    """
    import dns.exception
    import dns.tokenizer

    try:
        tok = dns.tokenizer.Tokenizer(text)
        usage, selector, mtype = tok.get_uint8(), tok.get_uint8(), tok.get_uint8()
        data = binascii.unhexlify(tok.concatenate_remaining_identifiers().encode())
    except (dns.exception.DNSException, ValueError, TypeError, binascii.Error):
        return None
    if mtype in DIGEST_SIZES and len(data) != DIGEST_SIZES[MatchingType(mtype)]:
        return (usage, selector, mtype, data)
    return None


def unusable_reason(record: TLSARecord) -> str | None:
    """Why no SMTP DANE client can use this record, or None when it is usable.

    OpenSSL's SSL_dane_tlsa_add() refuses unknown usages, selectors and matching types and
    digests of the wrong length; such records are skipped, never matched.
    """
    if record.usage in (Usage.PKIX_TA, Usage.PKIX_EE):
        # RFC 7672 §3.1.3: SMTP clients treat PKIX-TA(0) and PKIX-EE(1) as unusable.
        return f"usage {record.usage} (PKIX) is not used for SMTP (RFC 7672 §3.1.3)"
    if record.usage not in (Usage.DANE_TA, Usage.DANE_EE):
        return f"usage {record.usage} is not defined (RFC 6698 §7.2)"
    if record.selector not in (Selector.CERT, Selector.SPKI):
        return f"selector {record.selector} is not defined (RFC 6698 §7.3)"
    if record.mtype not in (MatchingType.FULL, MatchingType.SHA2_256, MatchingType.SHA2_512):
        return f"matching type {record.mtype} is not defined (RFC 6698 §7.4)"
    size = DIGEST_SIZES.get(MatchingType(record.mtype))
    if size is not None and len(record.data) != size:
        name = "SHA-256" if size == 32 else "SHA-512"
        return f"a {name} digest has {size} bytes, this one {len(record.data)}"
    if not record.data:
        return "the association data is empty"
    return None


# The TLSA type token is the one followed by three numbers: an owner may be named "tlsa".
_TLSA_TOKEN = re.compile(r"(?:^|\s)TLSA\s+(\d+\s+\d+\s+\d+(?:\s.*)?)$", re.IGNORECASE)


def parse_records_text(text: str, source: str = "") -> list[TLSARecord]:
    """Records from zone lines (`owner [ttl] [IN] TLSA U S M HEX`) or bare `U S M HEX` lines.

    Comments (`;` or `#` at the start) and blank lines are skipped; parentheses may spread a
    record over several lines as in a zone file (RFC 1035 §5.1). Errors name `source` and the
    line a record starts on.
    """
    records: list[TLSARecord] = []
    pending = ""
    start = 0
    prefix = f"{source}: " if source else ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not pending:
            start = number
        pending = f"{pending} {line}" if pending else line
        if pending.count("(") > pending.count(")"):
            continue
        logical = pending.replace("(", " ").replace(")", " ").strip()
        pending = ""
        if logical.startswith("$"):
            continue
        found = _TLSA_TOKEN.search(logical)
        records.append(
            TLSARecord.from_text(found.group(1) if found else logical, f"{prefix}line {start}")
        )
    if pending:
        raise BadInput(f"{prefix}line {start}: unbalanced parentheses in TLSA text")
    return records
