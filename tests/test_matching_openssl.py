"""dane-hook's matching verdicts equal OpenSSL's DANE verifier's, case by case (issue 2, item 5).

Each case builds a chain with cryptography (tests/pki.py), writes the bundle as a user has it
and loads it the way the CLI does (load_certificates + build_chain); the same certificates are
served by `openssl s_server` and judged by `openssl s_client -dane_tlsa_rrdata` (tests/oracle.py).
Every case states the verdict a DANE client gives, and the test asserts that OpenSSL gives it
(so a broken oracle cannot hide a bug) and that dane-hook gives it too. When both authenticate,
they must also agree on where: the depth and the record.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509

from dane_hook.certs.chain import build_chain, is_ca
from dane_hook.sources.files import load_certificates
from dane_hook.tlsa.matching import MatchResult, RecordStatus, authenticate
from dane_hook.tlsa.record import TLSARecord
from tests.oracle import OpenSSLVerdict, ServerPool
from tests.pki import HOST, NOW, Cast, Issued, KeyType, Profile, cast, pem_bundle, rdata

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Setup:
    """What a case serves and publishes."""

    bundle: Sequence[Issued]
    """The certificate file as the user has it, in this order."""
    records: Sequence[str]
    """The TLSA RRset in presentation form, `U S M HEX`."""
    leaf: Issued | None = None
    """The certificate the server sends first; by default the first non-CA in the bundle."""
    noise: bool = False
    """Text around the PEM blocks, as `openssl x509 -text` output or a download page has it."""

    def served_leaf(self) -> Issued:
        if self.leaf is not None:
            return self.leaf
        return next(i for i in self.bundle if not is_ca(i.certificate))


@dataclass(frozen=True)
class Case:
    name: str
    authenticated: bool
    """The verdict of a DANE client (OpenSSL as Postfix configures it)."""
    build: Callable[[Cast], Setup]
    host: str = HOST
    s_client_differs: str | None = None
    """Why s_client, with the options it has, cannot reproduce how Postfix configures OpenSSL
    here; the test then asserts s_client's opposite verdict, so the explanation stays true."""
    marks: tuple[pytest.MarkDecorator, ...] = field(default=())


def _stale_digest(usage: int, selector: int, mtype: int) -> str:
    """A well-formed record of a key nobody serves."""
    return rdata(cast().other_leaf, usage, selector, mtype)


def _ee(c: Cast, *params: tuple[int, int, int]) -> list[str]:
    return [rdata(c.leaf, u, s, m) for u, s, m in params]


P256, P384, RSA, ED25519 = KeyType.ECDSA_P256, KeyType.ECDSA_P384, KeyType.RSA_2048, KeyType.ED25519
WRONG_LENGTH_SHA256 = "3 1 1 " + "ab" * 31
WRONG_LENGTH_SHA512 = "3 1 2 " + "ab" * 63
NOT_A_CERTIFICATE = "2 0 0 " + "30820122" + "00" * 40
NOT_A_KEY = "2 1 0 " + "3059" + "00" * 40
POSTFIX_NO_PARTIAL_WILDCARDS = (
    "Postfix calls SSL_set_hostflags(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS) (tls_client.c "
    "add_namechecks: 'RFC6125: No part-label wildcards for SMTP'); s_client has no option for "
    "host flags, so it accepts mx*.example.test for mx1.example.test"
)


def _typed_leaf(key_type: KeyType, usage: int, where: str, c: Cast) -> Setup:
    """A leaf of `key_type` under intermediate A1 (ECDSA P-256), pinned at `where`."""
    leaf = c.leaf_of_type(key_type)
    pinned = leaf if where == "leaf" else c.intermediate
    return Setup((leaf, c.intermediate), [rdata(pinned, usage, 1, 1)])


def _typed_chain(ca: str, key_type: KeyType, usage: int, where: str, c: Cast) -> Setup:
    """A leaf of `key_type` under RSA-2048 or ECDSA P-384 CAs, root sent, pinned at `where`."""
    if ca == "RSA-2048":
        root, intermediate = c.rsa_root, c.rsa_intermediate
    else:
        root, intermediate = c.p384_root, c.p384_intermediate
    leaf = c.leaf_of_type(key_type, intermediate)
    pinned = {"leaf": leaf, "intermediate": intermediate, "root": root}[where]
    return Setup((leaf, intermediate, root), [rdata(pinned, usage, 1, 1)])


def _restricted(what: str, pin: str) -> Callable[[Cast], Setup]:
    """Root A -> intermediate restricted as `what` -> leaf; root sent; 2 1 1 on `pin`."""

    def build(c: Cast) -> Setup:
        leaf, intermediate = c.restricted_chain(what)
        pinned = {"leaf": leaf, "intermediate": intermediate, "root": c.root}[pin]
        usage = 3 if pin == "leaf" else 2
        return Setup((leaf, intermediate, c.root), [rdata(pinned, usage, 1, 1)])

    return build


# OpenSSL's verdicts for an intermediate restricted so (pki.RESTRICTIONS), with 2 1 1 on the
# intermediate (the anchor, the top of OpenSSL's chain) and on root A (the intermediate is in the
# middle). The top may be a CA by the old forms too (v1 root, keyCertSign, Netscape SSL CA:
# check_chain wants basicConstraints below the top only).
INTERMEDIATE_VERDICTS: list[tuple[str, bool, bool]] = [
    ("not a CA", False, False),
    ("no keyCertSign", False, False),
    ("clientAuth only", False, False),
    ("anyExtendedKeyUsage only", False, False),
    ("serverAuth and clientAuth", True, True),
    ("without basicConstraints", True, False),
    ("only a Netscape SSL CA", True, False),
    ("only a Netscape S/MIME CA", False, False),
    ("v1", False, False),
    ("with a critical private extension", False, False),
    ("with critical certificatePolicies", True, True),
    ("with an empty keyUsage", False, False),
    ("other names", False, False),
    ("excludes example.test", False, False),
    ("excludes other.test", True, True),
    ("permits example.test", True, True),
    ("permits ample.test", False, False),
    ("permits dirName O=other", False, False),
    ("permits dirName CN=MX.Example.Test", True, True),
]

# OpenSSL's verdict for a leaf of intermediate A1 restricted so (pki.LEAF_RESTRICTIONS), with
# 2 1 1 on A1: the "ssl_server" purpose (v3_purp.c check_purpose_ssl_server).
LEAF_VERDICTS: list[tuple[str, bool]] = [
    ("for clientAuth only", False),
    ("for anyExtendedKeyUsage only", False),
    ("without extendedKeyUsage", True),
    ("for Netscape Server Gated Crypto only", True),
    ("with keyCertSign only", False),
    ("with keyEncipherment only", True),  # an ECDSA key: the purpose check ignores the key type
    ("marked Netscape SSL client", False),
    ("marked Netscape SSL server", True),
    ("with a critical private extension", False),
    ("in X.509 v1", True),
    ("with an empty keyUsage", False),
]


PRIVATE_NAME = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
OTHER_PRIVATE_NAME = x509.ObjectIdentifier("1.3.6.1.4.1.55555.2")
IPV4_DOC = x509.IPAddress(ipaddress.ip_network("192.0.2.0/24"))
# nameConstraints of other name types (v3_ncons.c nc_match): the intermediate's subtrees, the
# leaf's subjectAltName besides mx.example.test, OpenSSL's verdict with 2 1 1 on the
# intermediate. A name type without a subtree of its type is not restricted; a subtree of a
# type OpenSSL cannot compare fails the chain.
OTHER_NAME_VERDICTS: list[tuple[str, Profile, x509.GeneralName, bool]] = [
    (
        "IPv4 in 192.0.2.0/24",
        Profile(permitted=(IPV4_DOC,)),
        x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
        True,
    ),
    (
        "IPv6 under IPv4 subtrees only",
        Profile(permitted=(IPV4_DOC,)),
        x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
        False,
    ),
    (
        "URI host below .example.test",
        Profile(permitted=(x509.UniformResourceIdentifier(".example.test"),)),
        x509.UniformResourceIdentifier("https://mx.example.test/"),
        True,
    ),
    (
        "URI host example.test, not below",
        Profile(permitted=(x509.UniformResourceIdentifier(".example.test"),)),
        x509.UniformResourceIdentifier("https://example.test/"),
        False,
    ),
    (
        "email below .other.test",
        Profile(permitted=(x509.RFC822Name(".other.test"),)),
        x509.RFC822Name("postmaster@mail.other.test"),
        True,
    ),
    (
        "email outside other.test",
        Profile(permitted=(x509.RFC822Name("other.test"),)),
        x509.RFC822Name("postmaster@example.test"),
        False,
    ),
    (
        "otherName of the subtree's type",
        Profile(permitted=(x509.OtherName(PRIVATE_NAME, b"\x0c\x00"),)),
        x509.OtherName(PRIVATE_NAME, b"\x0c\x01a"),
        False,
    ),
    (
        "otherName of another type",
        Profile(permitted=(x509.OtherName(OTHER_PRIVATE_NAME, b"\x0c\x00"),)),
        x509.OtherName(PRIVATE_NAME, b"\x0c\x01a"),
        True,
    ),
]


def _constrained(label: str, profile: Profile, name: x509.GeneralName) -> Callable[[Cast], Setup]:
    def build(c: Cast) -> Setup:
        leaf, intermediate = c.constrained_chain(label, profile, (HOST, name))
        return Setup((leaf, intermediate), [rdata(intermediate, 2, 1, 1)])

    return build


def _restricted_root(what: str, record: str) -> Callable[[Cast], Setup]:
    """Root restricted as `what` -> intermediate -> leaf, with `record` on the root (sent),
    2 0 0 or 2 1 0 of the root (not sent), or 2 1 1 on the intermediate (root sent)."""

    def build(c: Cast) -> Setup:
        leaf, intermediate, root = c.restricted_root_chain(what)
        if record == "2 1 1 on the intermediate":
            return Setup((leaf, intermediate, root), [rdata(intermediate, 2, 1, 1)])
        if record == "2 1 1 on the root":
            return Setup((leaf, intermediate, root), [rdata(root, 2, 1, 1)])
        usage, selector, mtype = (int(field) for field in record.split()[:3])
        return Setup((leaf, intermediate), [rdata(root, usage, selector, mtype)])

    return build


def _restricted_leaf(what: str, record: str, c: Cast) -> Setup:
    """A leaf of intermediate A1 restricted as `what`; A1 sent unless the record says not."""
    leaf = c.restricted_leaf(what)
    if record == "3 1 1":
        return Setup((leaf, c.intermediate), [rdata(leaf, 3, 1, 1)])
    if record == "2 1 0 of the intermediate, not sent":
        return Setup((leaf,), [rdata(c.intermediate, 2, 1, 0)])
    return Setup((leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)])


def _short_path_intermediate(pin: str, c: Cast) -> Setup:
    """Root A -> K1 (pathLenConstraint 0) -> K2 -> leaf, all sent; 2 1 1 on `pin`."""
    leaf, lower, upper = c.short_path_intermediate
    pinned = {"lower one": lower, "upper one": upper, "root": c.root}[pin]
    return Setup((leaf, lower, upper, c.root), [rdata(pinned, 2, 1, 1)])


# A root's restrictions count only when the root is on OpenSSL's chain: pinned itself or a 2 0 0
# anchor; a bare 2 1 0 key is no certificate, and a match below it ends the chain.
ROOT_VERDICTS: list[tuple[str, bool, bool, bool, bool]] = [
    # (root, 2 1 1 on the root, 2 0 0 of the root, 2 1 0 of the root, 2 1 1 on the intermediate)
    ("other names", False, False, True, True),
    ("clientAuth only", False, False, True, True),
    ("v1", True, True, True, True),
]
ROOT_RECORDS = ("2 1 1 on the root", "2 0 0 of the root", "2 1 0 of the root")


class Disagreement(AssertionError):
    """dane-hook's verdict is not OpenSSL's (and OpenSSL's is the one the case states).

    A known disagreement is marked on its case with
    `pytest.mark.xfail(strict=True, raises=Disagreement, reason=...)`, so that any other
    failure (a broken oracle) still fails the run; none is left.
    """


CASES: list[Case] = [
    # DANE-EE(3): the leaf, whatever its names, dates and position in the file.
    Case(
        "3 1 1 matches the leaf", True, lambda c: Setup((c.leaf, c.intermediate), _ee(c, (3, 1, 1)))
    ),
    Case(
        "3 0 1 matches the leaf", True, lambda c: Setup((c.leaf, c.intermediate), _ee(c, (3, 0, 1)))
    ),
    Case(
        "3 1 2 matches the leaf", True, lambda c: Setup((c.leaf, c.intermediate), _ee(c, (3, 1, 2)))
    ),
    Case(
        "3 0 2 matches the leaf", True, lambda c: Setup((c.leaf, c.intermediate), _ee(c, (3, 0, 2)))
    ),
    Case(
        "3 1 0 full SPKI of the leaf",
        True,
        lambda c: Setup((c.leaf, c.intermediate), _ee(c, (3, 1, 0))),
    ),
    Case(
        "3 0 0 full leaf certificate",
        True,
        lambda c: Setup((c.leaf, c.intermediate), _ee(c, (3, 0, 0))),
    ),
    Case(
        "3 1 1 of another key",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [_stale_digest(3, 1, 1)]),
    ),
    Case(
        "3 1 1 of the intermediate is not the leaf",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.intermediate, 3, 1, 1)]),
    ),
    Case(
        "leaf not first in the file, 3 1 1",
        True,
        lambda c: Setup((c.intermediate, c.leaf), _ee(c, (3, 1, 1)), leaf=c.leaf),
    ),
    Case(
        "leaf last after root and intermediate with text around the blocks, 3 1 1",
        True,
        lambda c: Setup((c.root, c.intermediate, c.leaf), _ee(c, (3, 1, 1)), noise=True),
    ),
    Case(
        "missing intermediate, 3 1 1 still matches",
        True,
        lambda c: Setup((c.leaf,), _ee(c, (3, 1, 1))),
    ),
    Case(
        "expired leaf, 3 1 1 (DANE-EE ignores dates)",
        True,
        lambda c: Setup((c.expired_leaf, c.intermediate), [rdata(c.expired_leaf, 3, 1, 1)]),
    ),
    Case(
        "leaf not yet valid, 3 1 1",
        True,
        lambda c: Setup((c.future_leaf, c.intermediate), [rdata(c.future_leaf, 3, 1, 1)]),
    ),
    Case(
        "expired intermediate, 3 1 1 on the leaf",
        True,
        lambda c: Setup(
            (c.leaf_of_expired_intermediate, c.expired_intermediate),
            [rdata(c.leaf_of_expired_intermediate, 3, 1, 1)],
        ),
    ),
    Case(
        "3 1 1 with a name the leaf does not carry (DANE-EE ignores names)",
        True,
        lambda c: Setup((c.leaf, c.intermediate), _ee(c, (3, 1, 1))),
        host="other.example.test",
    ),
    Case(
        "self-signed leaf, 3 1 1",
        True,
        lambda c: Setup((c.self_signed,), [rdata(c.self_signed, 3, 1, 1)]),
    ),
    # DANE-TA(2): an issuer on the verified path, or a full anchor that signs its top.
    Case(
        "2 1 1 on the intermediate",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
    ),
    Case(
        "2 0 1 on the intermediate",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.intermediate, 2, 0, 1)]),
    ),
    Case(
        "2 1 2 on the intermediate",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 2)]),
    ),
    Case(
        "2 1 1 on a sibling intermediate",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.other_intermediate, 2, 1, 1)]),
    ),
    Case(
        "2 1 1 on the root, root sent",
        True,
        lambda c: Setup((c.leaf, c.intermediate, c.root), [rdata(c.root, 2, 1, 1)]),
    ),
    Case(
        "2 0 1 on the root, root sent",
        True,
        lambda c: Setup((c.leaf, c.intermediate, c.root), [rdata(c.root, 2, 0, 1)]),
    ),
    Case(
        "2 1 2 on the root, root sent",
        True,
        lambda c: Setup((c.leaf, c.intermediate, c.root), [rdata(c.root, 2, 1, 2)]),
    ),
    Case(
        "2 1 1 on the root, root not sent",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.root, 2, 1, 1)]),
    ),
    Case(
        "2 0 1 on the root, root not sent",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.root, 2, 0, 1)]),
    ),
    Case(
        "2 1 2 on the root, root not sent",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.root, 2, 1, 2)]),
    ),
    Case(
        "2 0 0 full root certificate, root not sent (anchor from DNS)",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.root, 2, 0, 0)]),
    ),
    Case(
        "2 1 0 full root SPKI, root not sent (bare key signs the intermediate)",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.root, 2, 1, 0)]),
    ),
    Case(
        "2 0 0 full root certificate, root sent",
        True,
        lambda c: Setup((c.leaf, c.intermediate, c.root), [rdata(c.root, 2, 0, 0)]),
    ),
    Case(
        "2 1 0 full SPKI of the intermediate, intermediate sent",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 0)]),
    ),
    Case(
        "2 1 1 of the leaf itself (DANE-TA never matches depth 0)",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.leaf, 2, 1, 1)]),
    ),
    Case(
        "self-signed leaf, 2 0 1 of itself",
        False,
        lambda c: Setup((c.self_signed,), [rdata(c.self_signed, 2, 0, 1)]),
    ),
    Case(
        "self-signed leaf, 2 1 0 of its own key (the bare key verifies its signature)",
        True,
        lambda c: Setup((c.self_signed,), [rdata(c.self_signed, 2, 1, 0)]),
    ),
    Case(
        "self-signed leaf, 2 0 0 of itself",
        False,
        lambda c: Setup((c.self_signed,), [rdata(c.self_signed, 2, 0, 0)]),
    ),
    # Bundles: extra, missing, misordered certificates.
    Case(
        "extra unrelated CA in the bundle, 2 1 1 on the intermediate",
        True,
        lambda c: Setup((c.leaf, c.unrelated_ca, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
    ),
    Case(
        "extra unrelated CA in the bundle, 2 1 1 on that CA",
        False,
        lambda c: Setup((c.leaf, c.intermediate, c.unrelated_ca), [rdata(c.unrelated_ca, 2, 1, 1)]),
    ),
    Case(
        "wrong order: root before intermediate, 2 1 1 on the root",
        True,
        lambda c: Setup((c.leaf, c.root, c.intermediate), [rdata(c.root, 2, 1, 1)]),
    ),
    Case(
        "wrong order: intermediate first, leaf last, 2 1 1 on the intermediate",
        True,
        lambda c: Setup(
            (c.root, c.intermediate, c.leaf), [rdata(c.intermediate, 2, 1, 1)], leaf=c.leaf
        ),
    ),
    Case(
        "missing intermediate, 2 1 1 on it",
        False,
        lambda c: Setup((c.leaf,), [rdata(c.intermediate, 2, 1, 1)]),
    ),
    Case(
        "missing intermediate, 2 1 1 on the root, root sent",
        False,
        lambda c: Setup((c.leaf, c.root), [rdata(c.root, 2, 1, 1)]),
    ),
    Case(
        "missing intermediate, 2 0 0 full intermediate certificate (anchor from DNS)",
        True,
        lambda c: Setup((c.leaf,), [rdata(c.intermediate, 2, 0, 0)]),
    ),
    Case(
        "missing intermediate, 2 1 0 full intermediate SPKI",
        True,
        lambda c: Setup((c.leaf,), [rdata(c.intermediate, 2, 1, 0)]),
    ),
    Case(
        "missing intermediate, 2 0 0 full root certificate",
        False,
        lambda c: Setup((c.leaf,), [rdata(c.root, 2, 0, 0)]),
    ),
    # Dates on the DANE-TA path (OpenSSL's internal_verify: the anchor's own dates only
    # when it is self-issued).
    Case(
        "expired leaf, 2 1 1 on the intermediate",
        False,
        lambda c: Setup((c.expired_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
    ),
    Case(
        "leaf not yet valid, 2 1 1 on the intermediate",
        False,
        lambda c: Setup((c.future_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
    ),
    Case(
        "expired intermediate, 2 1 1 on it (a trust anchor's dates are not checked)",
        True,
        lambda c: Setup(
            (c.leaf_of_expired_intermediate, c.expired_intermediate),
            [rdata(c.expired_intermediate, 2, 1, 1)],
        ),
    ),
    Case(
        "expired intermediate, 2 1 1 on the root, root sent",
        False,
        lambda c: Setup(
            (c.leaf_of_expired_intermediate, c.expired_intermediate, c.root),
            [rdata(c.root, 2, 1, 1)],
        ),
    ),
    Case(
        "expired intermediate, 2 1 1 on it and on the root (the lowest match is the anchor)",
        True,
        lambda c: Setup(
            (c.leaf_of_expired_intermediate, c.expired_intermediate, c.root),
            [rdata(c.root, 2, 1, 1), rdata(c.expired_intermediate, 2, 1, 1)],
        ),
    ),
    Case(
        "expired intermediate not sent, 2 0 0 of it",
        True,
        lambda c: Setup(
            (c.leaf_of_expired_intermediate,), [rdata(c.expired_intermediate, 2, 0, 0)]
        ),
    ),
    Case(
        "expired root sent, 2 1 1 on the root",
        False,
        lambda c: Setup(
            (c.leaf_of_expired_root, c.intermediate_of_expired_root, c.expired_root),
            [rdata(c.expired_root, 2, 1, 1)],
        ),
    ),
    Case(
        "expired root sent, 2 1 1 on the intermediate",
        True,
        lambda c: Setup(
            (c.leaf_of_expired_root, c.intermediate_of_expired_root, c.expired_root),
            [rdata(c.intermediate_of_expired_root, 2, 1, 1)],
        ),
    ),
    Case(
        "expired root not sent, 2 0 0 of it (a self-issued anchor's dates are checked)",
        False,
        lambda c: Setup(
            (c.leaf_of_expired_root, c.intermediate_of_expired_root),
            [rdata(c.expired_root, 2, 0, 0)],
        ),
    ),
    Case(
        "expired root not sent, 2 1 0 of its key (a bare key has no dates)",
        True,
        lambda c: Setup(
            (c.leaf_of_expired_root, c.intermediate_of_expired_root),
            [rdata(c.expired_root, 2, 1, 0)],
        ),
    ),
    Case(
        "expired and renewed intermediate both sent, 2 0 1 of the renewed one",
        True,
        lambda c: Setup(
            (c.leaf, c.intermediate_expired_copy, c.intermediate),
            [rdata(c.intermediate, 2, 0, 1)],
        ),
    ),
    Case(
        "expired and renewed intermediate both sent, 2 0 1 of the expired one",
        False,
        lambda c: Setup(
            (c.leaf, c.intermediate_expired_copy, c.intermediate),
            [rdata(c.intermediate_expired_copy, 2, 0, 1)],
        ),
    ),
    # Cross-signed root: leaf <- intermediate B1 <- root B (cross-signed by root A).
    Case(
        "cross-signed, 2 1 1 on the intermediate",
        True,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root_cross_signed),
            [rdata(c.new_intermediate, 2, 1, 1)],
        ),
    ),
    Case(
        "cross-signed, 2 1 1 on root B's key (matches the cross-signed certificate)",
        True,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root_cross_signed),
            [rdata(c.new_root, 2, 1, 1)],
        ),
    ),
    Case(
        "cross-signed, 2 0 1 on self-signed root B, not sent",
        False,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root_cross_signed),
            [rdata(c.new_root, 2, 0, 1)],
        ),
    ),
    Case(
        "cross-signed, 2 0 1 on the cross-signed certificate",
        True,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root_cross_signed),
            [rdata(c.new_root_cross_signed, 2, 0, 1)],
        ),
    ),
    Case(
        "cross-signed, 2 1 1 on root A, not sent",
        False,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root_cross_signed),
            [rdata(c.root, 2, 1, 1)],
        ),
    ),
    Case(
        "cross-signed, 2 1 1 on root A, sent",
        True,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root_cross_signed, c.root),
            [rdata(c.root, 2, 1, 1)],
        ),
    ),
    Case(
        "cross-signed, 2 0 0 full root A certificate, not sent",
        True,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root_cross_signed),
            [rdata(c.root, 2, 0, 0)],
        ),
    ),
    Case(
        "cross-signed, 2 1 0 full root A SPKI, not sent",
        True,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root_cross_signed),
            [rdata(c.root, 2, 1, 0)],
        ),
    ),
    Case(
        "cross-signed and self-signed root B both sent (self-signed first), 2 1 1 on root A",
        False,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root, c.new_root_cross_signed, c.root),
            [rdata(c.root, 2, 1, 1)],
        ),
    ),
    Case(
        "cross-signed and self-signed root B both sent (cross-signed first), 2 1 1 on root A",
        True,
        lambda c: Setup(
            (c.new_leaf, c.new_intermediate, c.new_root_cross_signed, c.new_root, c.root),
            [rdata(c.root, 2, 1, 1)],
        ),
    ),
    # Bogus issuer: intermediate A1's name on another key.
    Case(
        "impostor intermediate before the real one, 2 1 1 on the real one",
        True,
        lambda c: Setup((c.leaf, c.impostor, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
    ),
    Case(
        "impostor intermediate only, 2 1 1 on the impostor",
        False,
        lambda c: Setup((c.leaf, c.impostor), [rdata(c.impostor, 2, 1, 1)]),
    ),
    Case(
        "impostor intermediate only, 2 1 1 on the root, root sent",
        False,
        lambda c: Setup((c.leaf, c.impostor, c.root), [rdata(c.root, 2, 1, 1)]),
    ),
    Case(
        "impostor intermediate only, 2 0 0 of the real intermediate",
        True,
        lambda c: Setup((c.leaf, c.impostor), [rdata(c.intermediate, 2, 0, 0)]),
    ),
    Case(
        "no key identifiers, impostor after the real intermediate, 2 1 1 on the real one",
        True,
        lambda c: Setup(
            (c.plain_leaf, c.plain_intermediate, c.plain_impostor),
            [rdata(c.plain_intermediate, 2, 1, 1)],
        ),
    ),
    Case(
        "no key identifiers, impostor before the real intermediate, 2 1 1 on the real one",
        False,
        lambda c: Setup(
            (c.plain_leaf, c.plain_impostor, c.plain_intermediate),
            [rdata(c.plain_intermediate, 2, 1, 1)],
        ),
    ),
    Case(
        "no key identifiers, impostor before the real intermediate, 2 1 1 on the root, all sent",
        False,
        lambda c: Setup(
            (c.plain_leaf, c.plain_impostor, c.plain_intermediate, c.plain_root),
            [rdata(c.plain_root, 2, 1, 1)],
        ),
    ),
    Case(
        "no key identifiers, impostor before the real intermediate, 3 1 1",
        True,
        lambda c: Setup(
            (c.plain_leaf, c.plain_impostor, c.plain_intermediate),
            [rdata(c.plain_leaf, 3, 1, 1)],
        ),
    ),
    Case(
        "no key identifiers, impostor only, 2 0 0 of the real intermediate (anchors first)",
        True,
        lambda c: Setup((c.plain_leaf, c.plain_impostor), [rdata(c.plain_intermediate, 2, 0, 0)]),
    ),
    Case(
        "no key identifiers, impostor only, 2 1 0 of the real intermediate",
        False,
        lambda c: Setup((c.plain_leaf, c.plain_impostor), [rdata(c.plain_intermediate, 2, 1, 0)]),
    ),
    Case(
        "no key identifiers, impostor only, 2 1 0 of the root (it signs the impostor)",
        False,
        lambda c: Setup((c.plain_leaf, c.plain_impostor), [rdata(c.plain_root, 2, 1, 0)]),
    ),
    Case(
        "no key identifiers, intermediate sent, 2 0 0 of the impostor, 2 1 1 on the real one",
        False,
        lambda c: Setup(
            (c.plain_leaf, c.plain_intermediate),
            [rdata(c.plain_impostor, 2, 0, 0), rdata(c.plain_intermediate, 2, 1, 1)],
        ),
    ),
    Case(
        "impostor intermediate before the real one, 2 1 0 of the real one",
        True,
        lambda c: Setup((c.leaf, c.impostor, c.intermediate), [rdata(c.intermediate, 2, 1, 0)]),
    ),
    # 2 0 0 certificates come first among the issuers OpenSSL considers (build_chain puts
    # dane->certs ahead of what the server sends), and the first valid now is taken.
    Case(
        "expired copy of the intermediate sent alone, 2 0 0 of the renewed one",
        True,
        lambda c: Setup((c.leaf, c.intermediate_expired_copy), [rdata(c.intermediate, 2, 0, 0)]),
    ),
    Case(
        "expired and renewed intermediate both sent, 2 0 0 of the renewed one",
        True,
        lambda c: Setup(
            (c.leaf, c.intermediate_expired_copy, c.intermediate),
            [rdata(c.intermediate, 2, 0, 0)],
        ),
    ),
    # RFC 5280 restrictions on the path (OpenSSL's check_chain, check_purpose,
    # check_name_constraints): they count for DANE-TA, from the leaf up to the anchor, and
    # never for DANE-EE.
    *[
        Case(f"intermediate {what}, 3 1 1 on the leaf", True, _restricted(what, "leaf"))
        for what in (
            "not a CA",
            "no keyCertSign",
            "clientAuth only",
            "other names",
            "v1",
            "with a critical private extension",
        )
    ],
    *[
        Case(f"intermediate {what}, 2 1 1 on the {pin}", verdict, _restricted(what, pin))
        for what, on_intermediate, on_root in INTERMEDIATE_VERDICTS
        for pin, verdict in (("intermediate", on_intermediate), ("root", on_root))
    ],
    Case(
        "intermediate other names, leaf without subjectAltName, CN the host, 2 1 1 on it",
        False,
        lambda c: Setup(
            c.restricted_cn_leaf("other names", HOST),
            [rdata(c.restricted_cn_leaf("other names", HOST)[1], 2, 1, 1)],
        ),
    ),
    Case(
        "intermediate permits example.test, leaf without subjectAltName, CN the host, 2 1 1",
        True,
        lambda c: Setup(
            c.restricted_cn_leaf("permits example.test", HOST),
            [rdata(c.restricted_cn_leaf("permits example.test", HOST)[1], 2, 1, 1)],
        ),
    ),
    Case(
        "intermediate other names, leaf with CN *.example.test only (not host-like), 2 1 1",
        True,
        lambda c: Setup(
            c.restricted_cn_leaf("other names", "*.example.test"),
            [rdata(c.restricted_cn_leaf("other names", "*.example.test")[1], 2, 1, 1)],
        ),
    ),
    *[
        Case(
            f"intermediate with nameConstraints, leaf with {label}, 2 1 1 on the intermediate",
            verdict,
            _constrained(label, profile, name),
        )
        for label, profile, name, verdict in OTHER_NAME_VERDICTS
    ],
    Case(
        "leaf for clientAuth only, 3 1 1",
        True,
        lambda c: Setup((c.client_auth_leaf, c.intermediate), [rdata(c.client_auth_leaf, 3, 1, 1)]),
    ),
    *[
        Case(
            f"leaf {what}, 2 1 1 on the intermediate",
            verdict,
            functools.partial(_restricted_leaf, what, "2 1 1 on the intermediate"),
        )
        for what, verdict in LEAF_VERDICTS
    ],
    *[
        Case(
            f"leaf {what}, {record}",
            True,
            functools.partial(_restricted_leaf, what, record),
        )
        for what, record in (
            ("with a critical private extension", "3 1 1"),
            ("with an empty keyUsage", "3 1 1"),
            # OpenSSL links no invalid certificate to an issuer; a bare key needs no link.
            ("with an empty keyUsage", "2 1 0 of the intermediate, not sent"),
        )
    ],
    *[
        Case(f"root {what}, {record}", verdict, _restricted_root(what, record))
        for what, *verdicts in ROOT_VERDICTS
        for record, verdict in zip(
            (*ROOT_RECORDS, "2 1 1 on the intermediate"), verdicts, strict=True
        )
    ],
    Case(
        "root with path length 0 above an intermediate, 2 1 1 on the intermediate",
        True,
        lambda c: Setup(
            (*c.too_long_path, c.short_path_root), [rdata(c.too_long_path[1], 2, 1, 1)]
        ),
    ),
    Case(
        "root with path length 0 above an intermediate, 2 1 1 on the root",
        False,
        lambda c: Setup((*c.too_long_path, c.short_path_root), [rdata(c.short_path_root, 2, 1, 1)]),
    ),
    Case(
        "root with path length 0 above an intermediate, 2 0 0 of the root",
        False,
        lambda c: Setup(c.too_long_path, [rdata(c.short_path_root, 2, 0, 0)]),
    ),
    Case(
        "root with path length 0 above an intermediate, 2 1 0 of the root (a key has none)",
        True,
        lambda c: Setup(c.too_long_path, [rdata(c.short_path_root, 2, 1, 0)]),
    ),
    Case(
        "root with path length 0 above its own renewed key (self-issued), 2 1 1 on the root",
        True,
        lambda c: Setup(
            (*c.rollover_of_short_path_root, c.short_path_root),
            [rdata(c.short_path_root, 2, 1, 1)],
        ),
    ),
    *[
        Case(
            f"intermediate with path length 0 above another, 2 1 1 on the {pin}",
            verdict,
            functools.partial(_short_path_intermediate, pin),
        )
        for pin, verdict in (("lower one", True), ("upper one", False), ("root", False))
    ],
    # Digest algorithm agility (RFC 7671 §9): per usage and selector, the strongest only.
    Case(
        "correct 3 1 1 + stale 3 1 2",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [*_ee(c, (3, 1, 1)), _stale_digest(3, 1, 2)]),
    ),
    Case(
        "correct 3 1 2 + stale 3 1 1",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [_stale_digest(3, 1, 1), *_ee(c, (3, 1, 2))]),
    ),
    Case(
        "correct 2 1 1 + stale 2 1 2",
        False,
        lambda c: Setup(
            (c.leaf, c.intermediate),
            [rdata(c.intermediate, 2, 1, 1), rdata(c.other_intermediate, 2, 1, 2)],
        ),
    ),
    Case(
        "correct 2 1 2 + stale 2 1 1",
        True,
        lambda c: Setup(
            (c.leaf, c.intermediate),
            [rdata(c.other_intermediate, 2, 1, 1), rdata(c.intermediate, 2, 1, 2)],
        ),
    ),
    Case(
        "correct 3 1 1 + stale 3 0 2 (another selector)",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [*_ee(c, (3, 1, 1)), _stale_digest(3, 0, 2)]),
    ),
    Case(
        "correct 3 1 1 + stale 2 1 2 (another usage)",
        True,
        lambda c: Setup(
            (c.leaf, c.intermediate), [*_ee(c, (3, 1, 1)), rdata(c.other_intermediate, 2, 1, 2)]
        ),
    ),
    Case(
        "correct 3 1 0 + stale 3 1 2 (Full is always used)",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [*_ee(c, (3, 1, 0)), _stale_digest(3, 1, 2)]),
    ),
    Case(
        "correct 3 1 1 + 3 1 2 of the wrong length (unusable, supersedes nothing)",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [*_ee(c, (3, 1, 1)), WRONG_LENGTH_SHA512]),
    ),
    Case(
        "2 1 1 on the intermediate + 2 1 2 on the root, root sent",
        True,
        lambda c: Setup(
            (c.leaf, c.intermediate, c.root),
            [rdata(c.intermediate, 2, 1, 1), rdata(c.root, 2, 1, 2)],
        ),
    ),
    Case(
        "stale 3 1 1 + stale 3 1 2 + correct 2 1 1",
        True,
        lambda c: Setup(
            (c.leaf, c.intermediate),
            [_stale_digest(3, 1, 1), _stale_digest(3, 1, 2), rdata(c.intermediate, 2, 1, 1)],
        ),
    ),
    # Unusable records are ignored, never a match.
    Case(
        "usage 7 only",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.leaf, 7, 1, 1)]),
    ),
    Case(
        "usage 7 + correct 3 1 1",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.leaf, 7, 1, 1), *_ee(c, (3, 1, 1))]),
    ),
    Case(
        "selector 2 only",
        False,
        lambda c: Setup((c.leaf, c.intermediate), ["3 2 1 " + "ab" * 32]),
    ),
    Case(
        "matching type 3 only",
        False,
        lambda c: Setup((c.leaf, c.intermediate), ["3 1 3 " + "ab" * 32]),
    ),
    Case(
        "SHA-256 digest of 31 bytes only",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [WRONG_LENGTH_SHA256]),
    ),
    Case(
        "SHA-256 digest of 31 bytes + correct 3 1 1",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [WRONG_LENGTH_SHA256, *_ee(c, (3, 1, 1))]),
    ),
    Case(
        "2 0 0 that is not a certificate + correct 2 1 1",
        True,
        lambda c: Setup(
            (c.leaf, c.intermediate), [NOT_A_CERTIFICATE, rdata(c.intermediate, 2, 1, 1)]
        ),
    ),
    Case(
        "2 1 0 that is not a key + correct 3 1 1",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [NOT_A_KEY, *_ee(c, (3, 1, 1))]),
    ),
    Case(
        "3 0 0 that is not a certificate + correct 3 1 1",
        True,
        lambda c: Setup(
            (c.leaf, c.intermediate), ["3 0 0 " + "30820122" + "00" * 40, *_ee(c, (3, 1, 1))]
        ),
    ),
    # PKIX-TA(0) and PKIX-EE(1): unusable for SMTP (RFC 7672 §3.1.3). OpenSSL would do PKIX
    # validation for them; it is run with no trust store at all, so that path always fails
    # and OpenSSL is still the oracle here. (With the test root in its CAfile, OpenSSL would
    # accept these; an SMTP client must not, and dane-hook reports them unusable.)
    Case(
        "1 1 1 matching the leaf",
        False,
        lambda c: Setup((c.leaf, c.intermediate), _ee(c, (1, 1, 1))),
    ),
    Case(
        "0 1 1 matching the root, root sent",
        False,
        lambda c: Setup((c.leaf, c.intermediate, c.root), [rdata(c.root, 0, 1, 1)]),
    ),
    Case(
        "0 0 0 full root certificate, root not sent",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.root, 0, 0, 0)]),
    ),
    Case(
        "1 1 1 matching + stale 3 1 1",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [*_ee(c, (1, 1, 1)), _stale_digest(3, 1, 1)]),
    ),
    Case(
        "1 1 1 matching + correct 2 1 1",
        True,
        lambda c: Setup(
            (c.leaf, c.intermediate), [*_ee(c, (1, 1, 1)), rdata(c.intermediate, 2, 1, 1)]
        ),
    ),
    # Names: a DANE-TA match needs the leaf to cover the host (RFC 7672 §3.2.3).
    Case(
        "2 1 1 on the intermediate, host the leaf does not cover",
        False,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="other.example.test",
    ),
    Case(
        "2 1 1 on the intermediate, host in upper case",
        True,
        lambda c: Setup((c.leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="MX.Example.TEST",
    ),
    Case(
        "wildcard *.example.test covers mx1.example.test, 2 1 1",
        True,
        lambda c: Setup((c.wildcard_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="mx1.example.test",
    ),
    Case(
        "wildcard *.example.test does not cover a.mx1.example.test, 2 1 1",
        False,
        lambda c: Setup((c.wildcard_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="a.mx1.example.test",
    ),
    Case(
        "wildcard *.example.test does not cover example.test, 2 1 1",
        False,
        lambda c: Setup((c.wildcard_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="example.test",
    ),
    Case(
        "wildcard leaf, host not covered, 3 1 1 (DANE-EE ignores names)",
        True,
        lambda c: Setup((c.wildcard_leaf, c.intermediate), [rdata(c.wildcard_leaf, 3, 1, 1)]),
        host="a.mx1.example.test",
    ),
    Case(
        "partial wildcard mx*.example.test does not cover mx1.example.test, 2 1 1",
        False,
        lambda c: Setup(
            (c.partial_wildcard_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]
        ),
        host="mx1.example.test",
        s_client_differs=POSTFIX_NO_PARTIAL_WILDCARDS,
    ),
    Case(
        "leaf without subjectAltName, CN is the host, 2 1 1",
        True,
        lambda c: Setup((c.common_name_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
    ),
    Case(
        "leaf without subjectAltName, CN is not the host, 2 1 1",
        False,
        lambda c: Setup((c.common_name_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="other.example.test",
    ),
    Case(
        "leaf with dNSName alt.example.test and CN mx.example.test, host the CN, 2 1 1",
        False,
        lambda c: Setup((c.alt_name_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
    ),
    Case(
        "wildcard *.example.test does not cover m_x.example.test (letters, digits, hyphens), 2 1 1",
        False,
        lambda c: Setup((c.wildcard_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="m_x.example.test",
    ),
    Case(
        "wildcard *.example.test covers -mx.example.test (hyphens anywhere), 2 1 1",
        True,
        lambda c: Setup((c.wildcard_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="-mx.example.test",
    ),
    Case(
        "wildcard *.test does not cover example.test (two labels after the star), 2 1 1",
        False,
        lambda c: Setup((c.tld_wildcard_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="example.test",
    ),
    Case(
        "leaf dNSName mx.example.test. (trailing dot) does not cover mx.example.test, 2 1 1",
        False,
        lambda c: Setup((c.trailing_dot_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
    ),
    Case(
        "wildcard *.example.test covers an A-label xn--mx-fka.example.test, 2 1 1",
        True,
        lambda c: Setup((c.wildcard_leaf, c.intermediate), [rdata(c.intermediate, 2, 1, 1)]),
        host="xn--mx-fka.example.test",
    ),
    # Key types of leaves and CAs.
    *[
        Case(
            f"{key_type.value} leaf, {usage} 1 1 on the {where}",
            True,
            functools.partial(_typed_leaf, key_type, usage, where),
        )
        for key_type in (RSA, P384, ED25519)
        for usage, where in ((3, "leaf"), (2, "intermediate"))
    ],
    *[
        Case(
            f"{ca} CAs, {key_type.value} leaf, {usage} 1 1 on the {where}",
            True,
            functools.partial(_typed_chain, ca, key_type, usage, where),
        )
        for ca in ("RSA-2048", "ECDSA-P384")
        for key_type in (P256, ED25519)
        for usage, where in ((3, "leaf"), (2, "intermediate"), (2, "root"))
    ],
    Case(
        "RSA-2048 leaf, stale 3 1 1 of an Ed25519 key",
        False,
        lambda c: Setup(
            (c.leaf_of_type(RSA), c.intermediate), [rdata(c.leaf_of_type(ED25519), 3, 1, 1)]
        ),
    ),
]


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory.mktemp("s_server"))
    try:
        yield pool
    finally:
        pool.stop_all()


def _dane_hook_verdict(setup: Setup, host: str, folder: Path) -> MatchResult:
    """Load the bundle the way users give it: a PEM file through the file source."""
    bundle = folder / "bundle.pem"
    bundle.write_bytes(pem_bundle(setup.bundle, noise=setup.noise))
    chain = build_chain(load_certificates(bundle), now=NOW, source=str(bundle))
    records = [TLSARecord.from_text(text) for text in setup.records]
    return authenticate(chain, records, host=host, now=NOW)


def _openssl_verdict(setup: Setup, host: str, servers: ServerPool) -> OpenSSLVerdict:
    leaf = setup.served_leaf()
    rest = [issued for issued in setup.bundle if issued is not leaf]
    server = servers.serving(leaf.pem(), leaf.key_pem(), pem_bundle(rest))
    return server.verdict(setup.records, host, NOW)


def _describe(ours: MatchResult, theirs: OpenSSLVerdict) -> str:
    lines = [f"OpenSSL: {theirs.detail}", f"dane-hook: {ours.reason}"]
    lines += [f"  {v.record.short()}: {v.status.value} ({v.reason})" for v in ours.records]
    return "\n".join(lines)


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case.name, marks=case.marks) for case in CASES]
)
def test_verdict_equals_openssl(case: Case, servers: ServerPool, tmp_path: Path) -> None:
    setup = case.build(cast())
    theirs = _openssl_verdict(setup, case.host, servers)
    ours = _dane_hook_verdict(setup, case.host, tmp_path)
    if case.s_client_differs is not None:
        assert theirs.authenticated is not case.authenticated, case.s_client_differs
    else:
        assert theirs.authenticated is case.authenticated, f"the oracle: {theirs.transcript}"
        if ours.authenticated is not theirs.authenticated:
            raise Disagreement(_describe(ours, theirs))
    assert ours.authenticated is case.authenticated, _describe(ours, theirs)

    if ours.authenticated and theirs.authenticated:
        # Same place: OpenSSL's matching record is one dane-hook finds at the same depth.
        assert ours.depth == theirs.anchor_depth, _describe(ours, theirs)
        assert theirs.record is not None
        params, tail = theirs.record
        at_depth = [
            v.record
            for v in ours.records
            if v.status is RecordStatus.MATCHED and v.depth == ours.depth
        ]
        assert any(
            f"{r.usage} {r.selector} {r.mtype}" == params and r.data.hex().endswith(tail.strip("."))
            for r in at_depth
        ), _describe(ours, theirs)

    # The records OpenSSL refuses to load are the ones dane-hook reports unusable; dane-hook
    # also sets aside PKIX-TA(0)/PKIX-EE(1), which OpenSSL loads (RFC 7672 §3.1.3).
    refused = set(theirs.refused)
    for text, verdict in zip(setup.records, ours.records, strict=True):
        if text in refused:
            assert verdict.status is RecordStatus.UNUSABLE, _describe(ours, theirs)
        elif verdict.status is RecordStatus.UNUSABLE:
            assert verdict.record.usage in (0, 1), _describe(ours, theirs)
