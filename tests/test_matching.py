"""Matching without a network: per-record statuses and reasons, RFC 7671 §8 completeness, digest
agility (RFC 7671 §9), unusable records, dates and names (RFC 7672 §3.1, §3.2.3).

The verdicts themselves are checked against OpenSSL in test_matching_openssl.py; these tests pin
what dane-hook reports about each record, which OpenSSL does not show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from dane_hook.certs.chain import ServedChain, build_chain
from dane_hook.certs.names import dns_names, name_matches, names_cover
from dane_hook.sources.files import load_certificates
from dane_hook.tlsa.matching import MatchResult, RecordStatus, authenticate
from dane_hook.tlsa.record import TLSARecord
from tests.pki import HOST, NOW, Issued, cast, pem_bundle, rdata


def served(folder: Path, *bundle: Issued) -> ServedChain:
    """The chain of a bundle file, loaded as the CLI loads it."""
    path = folder / "bundle.pem"
    path.write_bytes(pem_bundle(bundle))
    return build_chain(load_certificates(path), now=NOW)


def records(*texts: str) -> list[TLSARecord]:
    return [TLSARecord.from_text(text) for text in texts]


def judge(
    folder: Path, bundle: Sequence[Issued], rrset: Sequence[str], host: str | None = HOST
) -> MatchResult:
    return authenticate(served(folder, *bundle), records(*rrset), host=host, now=NOW)


def statuses(result: MatchResult) -> list[tuple[RecordStatus, int | None]]:
    return [(verdict.status, verdict.depth) for verdict in result.records]


MATCHED, NOT_MATCHED = RecordStatus.MATCHED, RecordStatus.NOT_MATCHED
SUPERSEDED, UNUSABLE = RecordStatus.SUPERSEDED, RecordStatus.UNUSABLE


# One record against leaf <- intermediate A1 (root A not sent): its status, depth and reason.
SINGLE_RECORDS: list[tuple[str, Callable[[], str], RecordStatus, int | None, str]] = [
    ("3 1 1 of the leaf", lambda: rdata(cast().leaf, 3, 1, 1), MATCHED, 0, "matches the leaf"),
    ("3 0 0 of the leaf", lambda: rdata(cast().leaf, 3, 0, 0), MATCHED, 0, "matches the leaf"),
    (
        "3 1 1 of another key",
        lambda: rdata(cast().other_leaf, 3, 1, 1),
        NOT_MATCHED,
        None,
        "does not match the leaf",
    ),
    (
        "2 1 1 of the intermediate",
        lambda: rdata(cast().intermediate, 2, 1, 1),
        MATCHED,
        1,
        "issuer at depth 1",
    ),
    (
        "2 1 1 of the root, not sent",
        lambda: rdata(cast().root, 2, 1, 1),
        NOT_MATCHED,
        None,
        "no issuer on the path",
    ),
    (
        "2 0 0 of the root, not sent",
        lambda: rdata(cast().root, 2, 0, 0),
        MATCHED,
        2,
        "not sent by the server",
    ),
    (
        "2 1 0 of the root, not sent",
        lambda: rdata(cast().root, 2, 1, 0),
        MATCHED,
        2,
        "not sent by the server",
    ),
    (
        "2 1 1 of the leaf",
        lambda: rdata(cast().leaf, 2, 1, 1),
        NOT_MATCHED,
        None,
        "no issuer on the path",
    ),
    ("usage 7", lambda: rdata(cast().leaf, 7, 1, 1), UNUSABLE, None, "usage 7"),
    ("PKIX-EE 1 1 1", lambda: rdata(cast().leaf, 1, 1, 1), UNUSABLE, None, "RFC 7672 §3.1.3"),
    ("PKIX-TA 0 1 1", lambda: rdata(cast().root, 0, 1, 1), UNUSABLE, None, "RFC 7672 §3.1.3"),
    ("selector 2", lambda: "3 2 1 " + "ab" * 32, UNUSABLE, None, "selector 2"),
    ("matching type 3", lambda: "3 1 3 " + "ab" * 32, UNUSABLE, None, "matching type 3"),
    ("SHA-256 digest of 31 bytes", lambda: "3 1 1 " + "ab" * 31, UNUSABLE, None, "31"),
    ("SHA-512 digest of 32 bytes", lambda: "3 1 2 " + "ab" * 32, UNUSABLE, None, "32"),
    (
        "2 0 0 that is not a certificate",
        lambda: "2 0 0 " + "3082" + "00" * 20,
        UNUSABLE,
        None,
        "not a DER certificate",
    ),
    (
        "2 1 0 that is not a key",
        lambda: "2 1 0 " + "3059" + "00" * 20,
        UNUSABLE,
        None,
        "not a DER public key",
    ),
    (
        # OpenSSL's SSL_dane_tlsa_add() parses Full(0) data for every usage.
        "3 0 0 that is not a certificate",
        lambda: "3 0 0 " + "3082" + "00" * 20,
        UNUSABLE,
        None,
        "not a DER certificate",
    ),
]


@pytest.mark.parametrize(
    ("make", "status", "depth", "reason"),
    [
        pytest.param(make, status, depth, reason, id=name)
        for name, make, status, depth, reason in SINGLE_RECORDS
    ],
)
def test_a_record_alone(
    tmp_path: Path, make: Callable[[], str], status: RecordStatus, depth: int | None, reason: str
) -> None:
    c = cast()
    result = judge(tmp_path, (c.leaf, c.intermediate), [make()])
    (verdict,) = result.records
    assert (verdict.status, verdict.depth) == (status, depth)
    assert reason in verdict.reason
    assert result.authenticated is (status is MATCHED)
    assert result.usable == (() if status is UNUSABLE else result.records)


# The served path is the one OpenSSL builds (pkix.likely_issued, then the signature checked).
def test_a_same_named_certificate_sent_first_ends_the_path(tmp_path: Path) -> None:
    """Without key identifiers OpenSSL takes the first certificate of the issuer's name and
    then fails on its signature: no DANE-TA record above it can authenticate the chain."""
    c = cast()
    first = served(tmp_path, c.plain_leaf, c.plain_impostor, c.plain_intermediate)
    assert first.issuers == ()
    assert {s.serial_number for s in first.stray} == {
        c.plain_impostor.certificate.serial_number,
        c.plain_intermediate.certificate.serial_number,
    }
    second = served(tmp_path, c.plain_leaf, c.plain_intermediate, c.plain_impostor)
    assert second.issuers == (c.plain_intermediate.certificate,)
    # With key identifiers the impostor is no candidate, wherever it is in the file.
    keyed = served(tmp_path, c.leaf, c.impostor, c.intermediate)
    assert keyed.issuers == (c.intermediate.certificate,)


def test_no_usable_record_says_so(tmp_path: Path) -> None:
    c = cast()
    result = judge(tmp_path, (c.leaf, c.intermediate), [rdata(c.leaf, 1, 1, 1)])
    assert not result.authenticated
    assert result.reason == "no usable TLSA record"
    assert judge(tmp_path, (c.leaf,), []).reason == "no usable TLSA record"


def test_missing_intermediate_is_named_in_the_reason(tmp_path: Path) -> None:
    c = cast()
    result = judge(tmp_path, (c.leaf,), [rdata(c.intermediate, 2, 1, 1)])
    assert not result.authenticated
    assert "intermediate missing" in result.records[0].reason


# Digest algorithm agility (RFC 7671 §9): per usage and selector only the strongest matching
# type present is used; Full(0) always is.
def test_stronger_stale_digest_supersedes_the_correct_one(tmp_path: Path) -> None:
    c = cast()
    result = judge(
        tmp_path, (c.leaf, c.intermediate), [rdata(c.leaf, 3, 1, 1), rdata(c.other_leaf, 3, 1, 2)]
    )
    assert not result.authenticated
    assert statuses(result) == [(SUPERSEDED, 0), (NOT_MATCHED, None)]
    assert "RFC 7671 §9" in result.records[0].reason
    assert result.incomplete == ((3, 1, 2),)


def test_weaker_stale_digest_is_superseded(tmp_path: Path) -> None:
    c = cast()
    result = judge(
        tmp_path, (c.leaf, c.intermediate), [rdata(c.other_leaf, 3, 1, 1), rdata(c.leaf, 3, 1, 2)]
    )
    assert result.authenticated
    assert statuses(result) == [(SUPERSEDED, None), (MATCHED, 0)]
    assert result.incomplete == ((3, 1, 1),)


def test_full_is_never_superseded(tmp_path: Path) -> None:
    c = cast()
    result = judge(
        tmp_path, (c.leaf, c.intermediate), [rdata(c.other_leaf, 3, 1, 2), rdata(c.leaf, 3, 1, 0)]
    )
    assert result.authenticated
    assert statuses(result) == [(NOT_MATCHED, None), (MATCHED, 0)]


def test_agility_is_per_usage_and_selector(tmp_path: Path) -> None:
    c = cast()
    rrset = [
        rdata(c.leaf, 3, 1, 1),
        rdata(c.other_leaf, 3, 0, 2),  # another selector
        rdata(c.other_intermediate, 2, 1, 2),  # another usage
    ]
    result = judge(tmp_path, (c.leaf, c.intermediate), rrset)
    assert result.authenticated
    assert statuses(result) == [(MATCHED, 0), (NOT_MATCHED, None), (NOT_MATCHED, None)]


def test_unusable_stronger_digest_supersedes_nothing(tmp_path: Path) -> None:
    c = cast()
    result = judge(
        tmp_path, (c.leaf, c.intermediate), [rdata(c.leaf, 3, 1, 1), "3 1 2 " + "ab" * 63]
    )
    assert result.authenticated
    assert statuses(result) == [(MATCHED, 0), (UNUSABLE, None)]


def test_superseded_issuer_digest_and_the_stronger_one_higher_up(tmp_path: Path) -> None:
    c = cast()
    rrset = [rdata(c.intermediate, 2, 1, 1), rdata(c.root, 2, 1, 2)]
    result = judge(tmp_path, (c.leaf, c.intermediate, c.root), rrset)
    assert result.authenticated
    assert statuses(result) == [(SUPERSEDED, 1), (MATCHED, 2)]
    assert (result.by, result.depth) == (records(rrset[1])[0], 2)


# RFC 7671 §8: every (usage, selector, matching type) present needs a record that matches.
@pytest.mark.parametrize(
    ("rrset", "authenticated", "incomplete"),
    [
        pytest.param(["leaf 3 1 1", "other 2 1 1"], True, ((2, 1, 1),), id="2 1 1 stale"),
        pytest.param(["leaf 3 1 1", "other 3 1 1"], True, (), id="one of two 3 1 1 matches"),
        pytest.param(["leaf 3 1 1", "issuer 2 1 1"], True, (), id="both combinations match"),
        pytest.param(["other 3 1 1", "other 2 1 1"], False, ((2, 1, 1), (3, 1, 1)), id="none"),
        pytest.param(["leaf 3 1 1", "leaf 7 1 1"], True, (), id="unusable not counted"),
        pytest.param(["leaf 3 1 1", "leaf 1 1 1"], True, (), id="PKIX not counted"),
        pytest.param(["leaf 3 1 1", "other 3 0 1"], True, ((3, 0, 1),), id="3 0 1 stale"),
    ],
)
def test_completeness(
    tmp_path: Path,
    rrset: list[str],
    authenticated: bool,
    incomplete: tuple[tuple[int, int, int], ...],
) -> None:
    c = cast()
    whose = {"leaf": c.leaf, "issuer": c.intermediate, "other": c.other_leaf}
    texts = []
    for item in rrset:
        name, usage, selector, mtype = item.split()
        if name == "other" and usage == "2":
            texts.append(rdata(c.other_intermediate, 2, int(selector), int(mtype)))
        else:
            texts.append(rdata(whose[name], int(usage), int(selector), int(mtype)))
    result = judge(tmp_path, (c.leaf, c.intermediate), texts)
    assert result.authenticated is authenticated
    assert result.incomplete == incomplete


# Which record authenticates, and where.
def test_dane_ee_is_tried_before_dane_ta(tmp_path: Path) -> None:
    c = cast()
    rrset = [rdata(c.intermediate, 2, 1, 1), rdata(c.leaf, 3, 1, 1)]
    result = judge(tmp_path, (c.leaf, c.intermediate), rrset)
    assert (result.by, result.depth) == (records(rrset[1])[0], 0)
    assert statuses(result) == [(MATCHED, 1), (MATCHED, 0)]


def test_the_lowest_dane_ta_match_is_the_anchor(tmp_path: Path) -> None:
    c = cast()
    rrset = [rdata(c.root, 2, 1, 1), rdata(c.intermediate, 2, 1, 1)]
    result = judge(tmp_path, (c.leaf, c.intermediate, c.root), rrset)
    assert (result.by, result.depth) == (records(rrset[1])[0], 1)


# Dates: DANE-EE ignores them (RFC 7672 §3.1.1); DANE-TA checks every certificate below the
# anchor, and the anchor itself only when it is self-issued (as OpenSSL's internal_verify does).
@pytest.mark.parametrize(
    ("situation", "authenticated", "reason"),
    [
        ("expired leaf, 3 1 1", True, "DANE-EE"),
        ("expired leaf, 2 1 1 on the intermediate", False, "depth 0"),
        ("expired intermediate pinned by 2 1 1", True, "depth 1"),
        ("expired intermediate, root pinned and sent", False, "depth 1"),
        ("expired root pinned and sent", False, "depth 2"),
        ("expired root as 2 0 0, not sent", False, "expired"),
        ("expired intermediate as 2 0 0, not sent", True, "depth 1"),
    ],
)
def test_dates(tmp_path: Path, situation: str, authenticated: bool, reason: str) -> None:
    c = cast()
    setups: dict[str, tuple[tuple[Issued, ...], str]] = {
        "expired leaf, 3 1 1": ((c.expired_leaf, c.intermediate), rdata(c.expired_leaf, 3, 1, 1)),
        "expired leaf, 2 1 1 on the intermediate": (
            (c.expired_leaf, c.intermediate),
            rdata(c.intermediate, 2, 1, 1),
        ),
        "expired intermediate pinned by 2 1 1": (
            (c.leaf_of_expired_intermediate, c.expired_intermediate),
            rdata(c.expired_intermediate, 2, 1, 1),
        ),
        "expired intermediate, root pinned and sent": (
            (c.leaf_of_expired_intermediate, c.expired_intermediate, c.root),
            rdata(c.root, 2, 1, 1),
        ),
        "expired root pinned and sent": (
            (c.leaf_of_expired_root, c.intermediate_of_expired_root, c.expired_root),
            rdata(c.expired_root, 2, 1, 1),
        ),
        "expired root as 2 0 0, not sent": (
            (c.leaf_of_expired_root, c.intermediate_of_expired_root),
            rdata(c.expired_root, 2, 0, 0),
        ),
        "expired intermediate as 2 0 0, not sent": (
            (c.leaf_of_expired_intermediate,),
            rdata(c.expired_intermediate, 2, 0, 0),
        ),
    }
    bundle, text = setups[situation]
    result = judge(tmp_path, bundle, [text])
    assert result.authenticated is authenticated
    assert reason in result.reason


def test_the_clock_is_an_argument(tmp_path: Path) -> None:
    c = cast()
    chain = served(tmp_path, c.leaf, c.intermediate)
    later = NOW + timedelta(days=365)
    ta, ee = records(rdata(c.intermediate, 2, 1, 1)), records(rdata(c.leaf, 3, 1, 1))
    assert authenticate(chain, ta, host=HOST, now=NOW).authenticated
    assert not authenticate(chain, ta, host=HOST, now=later).authenticated
    assert authenticate(chain, ee, host=HOST, now=later).authenticated


# Names: a DANE-TA match needs the leaf to cover the host (RFC 7672 §3.2.3); DANE-EE does not.
@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mx.example.test", "mx.example.test", True),
        ("MX.Example.Test", "mx.example.TEST", True),
        # The certificate's name as written (OpenSSL folds no dot); the host's dot is dropped.
        ("mx.example.test.", "mx.example.test", False),
        ("mx.example.test", "mx.example.test.", True),
        ("*.example.test.", "mx.example.test", False),
        ("*.example.test", "mx.example.test.", True),
        ("mx.example.test", "mx2.example.test", False),
        ("*.example.test", "mx.example.test", True),
        ("*.example.test", "xn--mx-fka.example.test", True),
        ("*.example.test", "example.test", False),
        ("*.example.test", "a.mx.example.test", False),
        ("*.example.test", ".example.test", False),
        ("*.test", "example.test", False),
        ("*", "test", False),
        ("mx*.example.test", "mx1.example.test", False),
        ("*x.example.test", "mx.example.test", False),
        ("mx.*.test", "mx.example.test", False),
        ("*.*.test", "mx.example.test", False),
        ("*.test", "*.test", True),  # not a wildcard (one label after it): compared as text
    ],
)
def test_name_matches(pattern: str, host: str, matches: bool) -> None:
    assert name_matches(pattern, host) is matches


# OpenSSL's wildcard_match(): the "*" stands for one label of letters, digits and hyphens (or
# for a literal "*"); valid_star(): the labels after it are letters, digits and inner hyphens.
@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("*.example.test", "MX-1.example.test", True),
        ("*.example.test", "-mx.example.test", True),
        ("*.example.test", "*.example.test", True),
        ("*.example.test", "m_x.example.test", False),
        ("*.example.test", "mx!.example.test", False),
        ("*.example.test", "m x.example.test", False),
        ("*.example.test", "ü.example.test", False),
        ("*.example.test", "xn--tda.example.test", True),
        ("*.Example.TEST", "mx.example.test", True),
        ("*.exa_mple.test", "mx.exa_mple.test", False),
        ("*.exa_mple.test", "*.exa_mple.test", True),
        ("*.-example.test", "mx.-example.test", False),
        ("*.example-.test", "mx.example-.test", False),
        ("*..test", "mx..test", False),
        ("*.example.test", ".example.test", False),
    ],
)
def test_the_wildcard_stands_for_a_letter_digit_hyphen_label(
    pattern: str, host: str, matches: bool
) -> None:
    assert name_matches(pattern, host) is matches


def test_dns_names_are_listed_in_lower_case_without_the_dot() -> None:
    c = cast()
    assert dns_names(c.trailing_dot_leaf.certificate) == [HOST]
    assert not names_cover(c.trailing_dot_leaf.certificate, HOST)


def test_dns_names_win_over_the_common_name() -> None:
    c = cast()
    assert names_cover(c.common_name_leaf.certificate, HOST)
    assert not names_cover(c.alt_name_leaf.certificate, HOST)
    assert names_cover(c.alt_name_leaf.certificate, "alt.example.test")


@pytest.mark.parametrize(
    ("host", "authenticated"),
    [
        ("mx1.example.test", True),
        ("MX1.EXAMPLE.TEST", True),
        ("a.mx1.example.test", False),
        ("example.test", False),
        (None, True),
    ],
)
def test_dane_ta_with_a_wildcard_leaf(
    tmp_path: Path, host: str | None, authenticated: bool
) -> None:
    c = cast()
    bundle = (c.wildcard_leaf, c.intermediate)
    result = judge(tmp_path, bundle, [rdata(c.intermediate, 2, 1, 1)], host=host)
    assert result.authenticated is authenticated
    if not authenticated:
        assert "RFC 7672 §3.2.3" in result.reason
        # The record still matches: only the name check failed.
        assert statuses(result) == [(MATCHED, 1)]
    ee = judge(tmp_path, bundle, [rdata(c.wildcard_leaf, 3, 1, 1)], host=host)
    assert ee.authenticated


def test_partial_wildcards_are_not_names_for_smtp(tmp_path: Path) -> None:
    """Postfix sets X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS (RFC 6125 §6.4.3 allows no more)."""
    c = cast()
    bundle = (c.partial_wildcard_leaf, c.intermediate)
    result = judge(tmp_path, bundle, [rdata(c.intermediate, 2, 1, 1)], host="mx1.example.test")
    assert not result.authenticated
