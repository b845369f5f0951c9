"""Is a chain authenticated by a TLSA RRset? Decided as OpenSSL's DANE verifier decides.

OpenSSL's verifier (crypto/x509/x509_vfy.c: dane_verify, dane_match, check_dane_issuer,
check_dane_pkeys) is what Postfix and Exim use, so its verdict is the reference here:
- DANE-EE(3) is tried first against the leaf; names and dates are not checked (RFC 7672 §3.1.1).
- DANE-TA(2) is matched against the chain OpenSSL builds (build_chain): the issuers the server
  sends, except that 2 0 0 certificates come first among the candidates, so a 2 0 0 anchor that
  fits and is valid now is taken before a sent issuer. The lowest match ends the chain; a bare
  2 1 0 key must verify the signature of its top. Every signature below the anchor must verify,
  and every certificate from the leaf up to it must be within its validity dates; the anchor
  itself only when it is self-issued (internal_verify skips a non-self-issued anchor's dates).
- On a DANE-TA path the RFC 5280 checks OpenSSL makes apply too (pkix.py: CA flags, key and
  extended key usage for a TLS server, path length, name constraints).
- For one usage and selector only the strongest matching type present is used (RFC 7671 §9).
- PKIX-TA(0) and PKIX-EE(1) are not used for SMTP (RFC 7672 §3.1.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dane_hook.certs.chain import (
    ServedChain,
    is_valid_at,
    not_after,
    not_before,
    pick_issuer,
    signed_by,
)
from dane_hook.certs.keys import PublicKey, checked_key, public_key_of
from dane_hook.certs.names import names_cover
from dane_hook.certs.pkix import path_problem, self_signed
from dane_hook.tlsa.generate import associate, selected_bytes
from dane_hook.tlsa.record import (
    MATCHING_RANK,
    MatchingType,
    Selector,
    TLSARecord,
    Usage,
    unusable_reason,
)


class RecordStatus(str, Enum):
    MATCHED = "matched"
    """The record's data equals the leaf (usage 3) or a certificate or key on the path (usage 2)."""
    NOT_MATCHED = "not-matched"
    SUPERSEDED = "superseded"
    """Usable, but a stronger matching type is present for its usage and selector (RFC 7671 §9)."""
    UNUSABLE = "unusable"


@dataclass(frozen=True)
class RecordVerdict:
    record: TLSARecord
    status: RecordStatus
    reason: str
    depth: int | None = None
    """Where it matched on OpenSSL's chain: 0 the leaf, 1 its issuer, ...; one above the top
    for a bare 2 1 0 key that signs the top."""


@dataclass(frozen=True)
class MatchResult:
    authenticated: bool
    reason: str
    records: tuple[RecordVerdict, ...]
    by: TLSARecord | None = None
    """The record that authenticated the chain."""
    depth: int | None = None
    incomplete: tuple[tuple[int, int, int], ...] = field(default=())
    """(usage, selector, mtype) combinations present that no record matches (RFC 7671 §8)."""

    @property
    def usable(self) -> tuple[RecordVerdict, ...]:
        return tuple(v for v in self.records if v.status is not RecordStatus.UNUSABLE)


@dataclass(frozen=True)
class _Anchor:
    """A DANE-TA(2) Full(0) record's own certificate or key: a trust anchor not sent."""

    record: TLSARecord
    certificate: x509.Certificate | None
    key: PublicKey | None


def _full_anchor(record: TLSARecord) -> tuple[_Anchor | None, str | None]:
    """Parse a Full(0) record; OpenSSL's SSL_dane_tlsa_add() refuses it, whatever its usage,
    when the data is not a DER certificate (selector 0) or key (selector 1). Only a 2 0 0 /
    2 1 0 record can be a trust anchor."""
    if record.mtype != MatchingType.FULL:
        return None, None
    if record.selector == Selector.CERT:
        try:
            certificate = x509.load_der_x509_certificate(record.data)
        except Exception:
            return None, "the data is not a DER certificate"
        anchor = _Anchor(record, certificate, None)
    else:
        try:
            key = checked_key(serialization.load_der_public_key(record.data))
        except Exception:
            return None, "the data is not a DER public key"
        anchor = _Anchor(record, None, key)
    return (anchor if record.usage == Usage.DANE_TA else None), None


@dataclass(frozen=True)
class _TaChain:
    """The chain OpenSSL's build_chain() makes for DANE-TA, from the leaf up."""

    certificates: tuple[x509.Certificate, ...]
    from_dns: int | None = None
    """The depth of a 2 0 0 certificate taken as an issuer (always the top: it matches its
    own record, which ends the chain)."""
    broken: int | None = None
    """The depth of the lowest certificate whose key does not verify the one below it."""


def _ta_chain(chain: ServedChain, anchors: Sequence[_Anchor], now: datetime) -> _TaChain:
    """OpenSSL's chain: build_chain() puts the 2 0 0 certificates (dane->certs) ahead of those
    the server sends and find_issuer() takes the first that fits and is valid now, else the
    latest to expire, checking no signature (chain.pick_issuer). The sent issuers are kept as
    `chain` has them (chain.build_chain chose them by the same rule), up to the unverified one;
    at each step a 2 0 0 certificate that OpenSSL would take first ends the chain instead."""
    from_dns = [a.certificate for a in anchors if a.certificate is not None]
    sent = list(chain.issuers)
    if chain.unverified_issuer is not None:
        sent.append(chain.unverified_issuer)
    path = [chain.leaf]
    for next_sent in [*sent, None]:
        below = path[-1]
        # No issuer is sought above a self-signed certificate (X509_self_signed(curr, 0)).
        if from_dns and not self_signed(below):
            candidates = [*from_dns, next_sent] if next_sent is not None else from_dns
            issuer = pick_issuer(candidates, below, now)
            if issuer is not None and issuer is not next_sent:
                path.append(issuer)
                key = public_key_of(issuer)
                verified = key is not None and signed_by(below, key)
                return _TaChain(tuple(path), len(path) - 1, None if verified else len(path) - 1)
        if next_sent is None:
            break
        path.append(next_sent)
        if next_sent is chain.unverified_issuer:
            return _TaChain(tuple(path), broken=len(path) - 1)
    return _TaChain(tuple(path))


def _digest_floor(records: Sequence[TLSARecord]) -> dict[tuple[int, int], int]:
    """For each (usage, selector) the rank of the strongest matching type present."""
    best: dict[tuple[int, int], int] = {}
    for record in records:
        rank = MATCHING_RANK[MatchingType(record.mtype)]
        key = (record.usage, record.selector)
        best[key] = max(best.get(key, 0), rank)
    return best


def _matches(record: TLSARecord, certificate: x509.Certificate) -> bool:
    return associate(selected_bytes(certificate, record.selector), record.mtype) == record.data


def authenticate(
    chain: ServedChain,
    records: Sequence[TLSARecord],
    *,
    host: str | None = None,
    now: datetime | None = None,
) -> MatchResult:
    """Whether a DANE client accepts `chain` given the TLSA RRset `records`.

    `host`, when given, is the name the client expects: a DANE-TA match then also needs the
    leaf to carry it (RFC 7672 §3.2.3). DANE-EE ignores names and dates (RFC 7672 §3.1.1).
    """
    moment = now or datetime.now(timezone.utc)
    verdicts: dict[int, RecordVerdict] = {}
    usable: list[tuple[int, TLSARecord]] = []
    anchors: list[tuple[int, _Anchor]] = []
    for index, record in enumerate(records):
        why = unusable_reason(record)
        anchor, bad = _full_anchor(record) if why is None else (None, None)
        if bad is not None:
            why = bad
        if why is not None:
            verdicts[index] = RecordVerdict(record, RecordStatus.UNUSABLE, why)
            continue
        usable.append((index, record))
        if anchor is not None:
            anchors.append((index, anchor))

    ta_chain = _ta_chain(chain, [a for _, a in anchors], moment)
    path = ta_chain.certificates
    floor = _digest_floor([r for _, r in usable])
    active: list[tuple[int, TLSARecord]] = []
    for index, record in usable:
        rank = MATCHING_RANK[MatchingType(record.mtype)]
        # OpenSSL always tries Full(0); digests weaker than the strongest present are skipped.
        if record.mtype != MatchingType.FULL and rank < floor[(record.usage, record.selector)]:
            verdicts[index] = RecordVerdict(
                record,
                RecordStatus.SUPERSEDED,
                f"ignored: a stronger matching type is published for usage {record.usage} "
                f"selector {record.selector} (RFC 7671 §9)",
                _match_depth(record, path, anchors),
            )
            continue
        active.append((index, record))

    # Which record matches where (independent of the verdict, for the report and RFC 7671 §8).
    for index, record in active:
        depth = _match_depth(record, path, anchors)
        if depth is None:
            verdicts[index] = RecordVerdict(
                record, RecordStatus.NOT_MATCHED, _miss_reason(record, chain)
            )
        else:
            verdicts[index] = RecordVerdict(
                record, RecordStatus.MATCHED, _hit_reason(record, depth, ta_chain), depth
            )
    ordered = tuple(verdicts[i] for i in range(len(records)))
    incomplete = _incomplete(ordered)

    # 1. DANE-EE against the leaf: no name, no date check (RFC 7672 §3.1.1).
    for index, record in active:
        if record.usage == Usage.DANE_EE and verdicts[index].status is RecordStatus.MATCHED:
            return MatchResult(
                True, "DANE-EE record matches the leaf", ordered, record, 0, incomplete
            )

    # 2. DANE-TA: the lowest certificate on the path that a record matches becomes the anchor.
    ta_records = [(i, r) for i, r in active if r.usage == Usage.DANE_TA]
    if not ta_records:
        return MatchResult(False, _no_match_summary(ordered), ordered, incomplete=incomplete)
    hits = [
        (verdicts[i].depth, r)
        for i, r in ta_records
        if verdicts[i].status is RecordStatus.MATCHED and verdicts[i].depth is not None
    ]
    broken = ta_chain.broken
    if not hits:
        summary = _no_match_summary(ordered)
        if broken is not None:
            summary += f"; {_broken_link(path, broken)}"
        return MatchResult(False, summary, ordered, incomplete=incomplete)
    depth, record = min(hits, key=lambda hit: hit[0] if hit[0] is not None else 99)
    assert depth is not None
    if broken is not None and broken <= depth:
        # internal_verify() checks each signature below the anchor with the key above it.
        return MatchResult(
            False,
            f"DANE-TA record matches at depth {depth}, but {_broken_link(path, broken)}",
            ordered,
            incomplete=incomplete,
        )
    # Every certificate below the anchor must be valid now. OpenSSL's internal_verify()
    # checks the anchor's own dates only when it is self-issued (a root); an intermediate
    # that a 2 x x record pins is a trust anchor (an input to RFC 5280 §6.1, not a path
    # certificate), so its dates do not count. A bare 2 1 0 key has none.
    for position in range(min(depth + 1, len(path))):
        certificate = path[position]
        if position == depth and not _self_issued(certificate):
            continue
        if not is_valid_at(certificate, moment):
            return MatchResult(
                False,
                f"DANE-TA record matches at depth {depth}, but the certificate at depth "
                f"{position} ({_describe(certificate)}) {_validity_problem(certificate, moment)}",
                ordered,
                incomplete=incomplete,
            )
    problem = path_problem(path, depth)
    if problem is not None:
        return MatchResult(
            False,
            f"DANE-TA record matches at depth {depth}, but {problem}",
            ordered,
            incomplete=incomplete,
        )
    if host is not None and not names_cover(chain.leaf, host):
        return MatchResult(
            False,
            f"DANE-TA record matches at depth {depth}, but the leaf's names do not cover "
            f"{host} (RFC 7672 §3.2.3)",
            ordered,
            incomplete=incomplete,
        )
    return MatchResult(
        True, f"DANE-TA record matches at depth {depth}", ordered, record, depth, incomplete
    )


def _match_depth(
    record: TLSARecord,
    path: Sequence[x509.Certificate],
    anchors: Sequence[tuple[int, _Anchor]],
) -> int | None:
    if record.usage == Usage.DANE_EE:
        return 0 if _matches(record, path[0]) else None
    for depth in range(1, len(path)):
        if _matches(record, path[depth]):
            return depth
    # A 2 0 0 certificate OpenSSL takes is on `path` (_ta_chain); a bare 2 1 0 key, which is
    # no certificate, must verify the signature of the top one (check_dane_pkeys).
    for _, anchor in anchors:
        if anchor.record == record and anchor.key is not None and signed_by(path[-1], anchor.key):
            return len(path)
    return None


def _self_issued(certificate: x509.Certificate) -> bool:
    """Subject equals issuer and, when both key identifiers are present, they agree.

    OpenSSL's test (X509_self_signed(cert, 0), ossl_x509_likely_issued) names no signature
    check: it is what decides whether a certificate ends the chain and has its dates checked
    as a trust anchor.
    """
    if certificate.subject != certificate.issuer:
        return False
    try:
        ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return True
    except Exception:  # a malformed extension: judge by the names alone
        return True
    own = aki.value.key_identifier
    return own is None or own == ski.value.digest


def _incomplete(verdicts: Sequence[RecordVerdict]) -> tuple[tuple[int, int, int], ...]:
    present: dict[tuple[int, int, int], bool] = {}
    for verdict in verdicts:
        if verdict.status is RecordStatus.UNUSABLE:
            continue
        params = verdict.record.params
        present[params] = present.get(params, False) or verdict.depth is not None
    return tuple(sorted(p for p, hit in present.items() if not hit))


def _describe(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "no subject"


def _validity_problem(certificate: x509.Certificate, now: datetime) -> str:
    if now < not_before(certificate):
        return f"is not valid before {not_before(certificate):%Y-%m-%d %H:%M:%SZ}"
    return f"expired {not_after(certificate):%Y-%m-%d %H:%M:%SZ}"


def _broken_link(path: Sequence[x509.Certificate], depth: int) -> str:
    return (
        f"OpenSSL takes the certificate at depth {depth} ({_describe(path[depth])}) as the "
        f"issuer of the one below, and its key does not verify that certificate's signature"
    )


def _hit_reason(record: TLSARecord, depth: int, ta_chain: _TaChain) -> str:
    if record.usage == Usage.DANE_EE:
        return "matches the leaf"
    if depth == len(ta_chain.certificates):
        return "a trust anchor key not sent by the server: it signs the top certificate"
    if depth == ta_chain.from_dns:
        return (
            f"matches a trust anchor not sent by the server, taken as the issuer at depth {depth}"
        )
    return f"matches the issuer at depth {depth}"


def _miss_reason(record: TLSARecord, chain: ServedChain) -> str:
    if record.usage == Usage.DANE_EE:
        return "does not match the leaf"
    if not chain.issuers:
        return "no issuer is on the path (is the intermediate missing from the chain file?)"
    return "matches no issuer on the path"


def _no_match_summary(verdicts: Sequence[RecordVerdict]) -> str:
    usable = [v for v in verdicts if v.status is not RecordStatus.UNUSABLE]
    if not usable:
        return "no usable TLSA record"
    return "no usable TLSA record matches the chain"
