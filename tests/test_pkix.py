"""The RFC 5280 checks of a DANE-TA path (dane_hook.certs.pkix) without a network.

test_matching_openssl.py holds dane-hook's verdicts against OpenSSL's for whole chains; these
tests pin the rules underneath: which certificates OpenSSL checks, what each reason says, and
the name comparisons of v3_ncons.c (nc_dns, nc_email, nc_uri, nc_ip, nc_dn, cn2dnsid) case by case.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID, ObjectIdentifier

from dane_hook.certs import pkix
from dane_hook.certs.pkix import checked_chain, path_problem
from tests.pki import (
    HOST,
    VALID,
    Issued,
    KeyType,
    Profile,
    ca_name,
    cast,
    intermediate,
    leaf,
    private_key,
    root,
)


def certificates(*issued: Issued) -> list[x509.Certificate]:
    return [i.certificate for i in issued]


def issue(
    subject: x509.Name,
    issuer: Issued,
    names: Sequence[x509.GeneralName] = (),
    *,
    key_label: str,
    ca: bool = False,
) -> Issued:
    """A certificate with any subject and subjectAltNames (tests.pki writes dNSNames only)."""
    key = private_key(key_label)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(VALID.not_before)
        .not_valid_after(VALID.not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def named_leaf(issuer: Issued, common_name: str, names: Sequence[x509.GeneralName]) -> Issued:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return issue(subject, issuer, names, key_label=f"leaf {common_name}")


def name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    """A name of one attribute per RDN, in the order given (the encoded order)."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


# Which certificates OpenSSL's chain holds for a DANE-TA match.
def test_the_chain_ends_at_the_anchor() -> None:
    c = cast()
    path = certificates(c.leaf, c.intermediate, c.root)
    assert checked_chain(path, 1) == tuple(path[:2])
    assert checked_chain(path, 2) == tuple(path)
    sent = path[:2]
    assert checked_chain(sent, 2, c.root.certificate) == (*sent, c.root.certificate)
    assert checked_chain(sent, 2) == tuple(sent)  # a bare 2 1 0 key: no certificate


def test_a_public_ca_chain_has_no_problem() -> None:
    c = cast()
    path = certificates(c.leaf, c.intermediate, c.root)
    for depth in (1, 2):
        assert path_problem(path, depth) is None
    assert path_problem(path[:2], 2, c.root.certificate) is None
    assert path_problem(certificates(c.self_signed), 1) is None


@pytest.mark.parametrize(
    ("what", "at_fault", "fragment"),
    [
        ("not a CA", 1, "basicConstraints cA is false"),
        ("no keyCertSign", 1, "keyUsage lacks keyCertSign"),
        ("clientAuth only", 1, "extendedKeyUsage without serverAuth"),
        ("anyExtendedKeyUsage only", 1, "extendedKeyUsage without serverAuth"),
        ("without basicConstraints", 1, "not a CA by basicConstraints"),
        ("only a Netscape S/MIME CA", 1, "not a CA by basicConstraints"),
        ("v1", 1, "v1 certificate is a CA only as a self-signed root"),
        ("with a critical private extension", 1, "critical extension OpenSSL does not process"),
        ("with an empty keyUsage", 1, "keyUsage with no bit set"),
        ("other names", 0, "outside the permitted subtrees 'other.test'"),
        ("excludes example.test", 0, "inside the excluded subtree 'example.test'"),
        ("permits dirName O=other", 0, "its subject directoryName 'CN=mx.example.test' is"),
    ],
)
def test_an_intermediate_in_the_middle_is_refused_with_its_reason(
    what: str, at_fault: int, fragment: str
) -> None:
    c = cast()
    leaf_, ca = c.restricted_chain(what)
    problem = path_problem(certificates(leaf_, ca, c.root), 2)
    assert problem is not None
    assert problem.startswith(f"the certificate at depth {at_fault} ")
    assert fragment in problem


@pytest.mark.parametrize(
    ("what", "as_anchor"),
    [
        ("without basicConstraints", None),  # keyCertSign alone makes the top a CA
        ("only a Netscape SSL CA", None),
        ("only a Netscape S/MIME CA", "Netscape cert type that is not for SSL"),
        ("v1", "v1 certificate"),  # not self-signed: a v1 certificate is a CA only as a root
        ("not a CA", "basicConstraints cA is false"),
    ],
)
def test_the_top_may_be_a_ca_by_the_old_forms(what: str, as_anchor: str | None) -> None:
    c = cast()
    leaf_, ca = c.restricted_chain(what)
    problem = path_problem(certificates(leaf_, ca), 1)
    if as_anchor is None:
        assert problem is None
    else:
        assert problem is not None and as_anchor in problem


def test_a_v1_root_is_a_ca_at_the_top() -> None:
    c = cast()
    leaf_, ca, top = c.restricted_root_chain("v1")
    assert path_problem(certificates(leaf_, ca, top), 2) is None
    assert path_problem(certificates(leaf_, ca), 2, top.certificate) is None


@pytest.mark.parametrize(
    ("what", "fragment"),
    [
        ("for clientAuth only", "extendedKeyUsage without serverAuth"),
        ("for anyExtendedKeyUsage only", "extendedKeyUsage without serverAuth"),
        ("without extendedKeyUsage", None),
        ("for Netscape Server Gated Crypto only", None),
        ("with keyCertSign only", "none of digitalSignature, keyEncipherment, keyAgreement"),
        ("with keyEncipherment only", None),
        ("marked Netscape SSL client", "Netscape cert type without SSL server"),
        ("marked Netscape SSL server", None),
        ("with a critical private extension", "critical extension"),
        ("in X.509 v1", None),
        ("with an empty keyUsage", "keyUsage with no bit set"),
    ],
)
def test_the_leaf_is_for_a_tls_server(what: str, fragment: str | None) -> None:
    c = cast()
    leaf_ = c.restricted_leaf(what)
    problem = path_problem(certificates(leaf_, c.intermediate), 1)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem
        assert problem.startswith("the certificate at depth 0 ")


def test_an_invalid_leaf_alone_passes_under_a_bare_key() -> None:
    """OpenSSL links no invalid certificate to an issuer, but a 2 1 0 key verifies the leaf's
    signature directly and the purpose check cannot tell (X509_check_purpose gives -1)."""
    c = cast()
    leaf_ = c.restricted_leaf("with an empty keyUsage")
    assert path_problem(certificates(leaf_), 1) is None
    assert path_problem(certificates(leaf_), 1, c.intermediate.certificate) is not None


# pathLenConstraint (RFC 5280 §6.1.4 (l), (m)): CA certificates below, self-issued ones aside.
def test_path_length_counts_the_cas_below() -> None:
    c = cast()
    leaf_, lower, upper = c.short_path_intermediate
    path = certificates(leaf_, lower, upper, c.root)
    assert path_problem(path, 1) is None
    problem = path_problem(path, 2)
    assert problem is not None
    assert problem.startswith("the certificate at depth 2 ")
    assert "allows 0 CA certificate(s) below it" in problem and "1 follow" in problem
    assert path_problem(path, 3) == problem


def test_a_self_issued_ca_does_not_count_against_path_length() -> None:
    c = cast()
    renewed_leaf, renewed = c.rollover_of_short_path_root
    assert path_problem(certificates(renewed_leaf, renewed, c.short_path_root), 2) is None
    too_long = certificates(*c.too_long_path, c.short_path_root)
    assert path_problem(too_long, 2) is not None
    assert path_problem(too_long[:2], 2) is None  # bare 2 1 0 key of root L


# Name constraints (RFC 5280 §4.2.1.10 as check_name_constraints applies them).
def constrained(label: str, profile: Profile) -> Issued:
    return intermediate(f"constrained {label}", cast().root, profile=profile)


def test_constraints_of_every_certificate_above_count() -> None:
    top = root("constrained root Q", profile=Profile(permitted=("other.test",)))
    middle = intermediate("intermediate under Q", top)
    leaf_ = leaf(middle, label="leaf under Q")
    path = certificates(leaf_, middle, top)
    assert path_problem(path, 1) is None  # the match below ends the chain: Q is not on it
    problem = path_problem(path, 2)
    assert problem is not None
    assert "depth 0" in problem and "the certificate at depth 2" in problem
    assert path_problem(path[:2], 2, top.certificate) == problem
    assert path_problem(path[:2], 2) is None  # a bare key carries no constraints


def test_a_self_issued_intermediate_is_not_held_to_the_constraints_above() -> None:
    """RFC 5280 §6.1.3 (b): a self-issued certificate other than the leaf is not checked."""
    top_name = ca_name("constrained root S")
    top = root("constrained root S", profile=Profile(excluded=(x509.DirectoryName(top_name),)))
    renewed = issue(top_name, top, key_label="constrained root S new key", ca=True)
    leaf_ = named_leaf(renewed, "mx.other.test", [x509.DNSName("mx.other.test")])
    assert path_problem(certificates(leaf_, renewed, top), 2) is None
    below = x509.Name([*top_name, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "mail")])
    other = issue(below, top, key_label="constrained root S unit", ca=True)
    leaf_ = named_leaf(other, "mx.other.test", [x509.DNSName("mx.other.test")])
    problem = path_problem(certificates(leaf_, other, top), 2)
    assert problem is not None and problem.startswith("the certificate at depth 1 ")
    assert "inside the excluded subtree" in problem


def test_the_common_name_counts_only_without_a_dns_name() -> None:
    c = cast()
    cn_leaf, ca = c.restricted_cn_leaf("other names", HOST)
    problem = path_problem(certificates(cn_leaf, ca), 1)
    assert problem is not None and f"its CN '{HOST}' is outside" in problem
    with_san = named_leaf(ca, HOST, [x509.DNSName("mx.other.test")])
    assert path_problem(certificates(with_san, ca), 1) is None
    wildcard_cn, ca = c.restricted_cn_leaf("other names", "*.example.test")
    assert path_problem(certificates(wildcard_cn, ca), 1) is None


OTHER_TYPE = ObjectIdentifier("1.3.6.1.4.1.55555.1")


@pytest.mark.parametrize(
    ("names", "profile", "fragment"),
    [
        pytest.param(
            [x509.RFC822Name("postmaster@example.test")],
            Profile(permitted=(x509.RFC822Name("other.test"),)),
            "outside the permitted subtrees",
            id="email outside",
        ),
        pytest.param(
            [x509.RFC822Name("postmaster@mail.other.test")],
            Profile(permitted=(x509.RFC822Name(".other.test"),)),
            None,
            id="email under .domain",
        ),
        pytest.param(
            [x509.IPAddress(ipaddress.ip_address("192.0.2.7"))],
            Profile(permitted=(x509.IPAddress(ipaddress.ip_network("192.0.2.0/24")),)),
            None,
            id="IPv4 inside",
        ),
        pytest.param(
            [x509.IPAddress(ipaddress.ip_address("198.51.100.7"))],
            Profile(excluded=(x509.IPAddress(ipaddress.ip_network("198.51.100.0/24")),)),
            "inside the excluded subtree",
            id="IPv4 excluded",
        ),
        pytest.param(
            [x509.IPAddress(ipaddress.ip_address("2001:db8::1"))],
            Profile(permitted=(x509.IPAddress(ipaddress.ip_network("192.0.2.0/24")),)),
            "outside the permitted subtrees",
            id="IPv6 under IPv4 subtrees only",
        ),
        pytest.param(
            [x509.UniformResourceIdentifier("https://mx.example.test/")],
            Profile(permitted=(x509.UniformResourceIdentifier(".example.test"),)),
            None,
            id="URI host under .domain",
        ),
        pytest.param(
            [x509.UniformResourceIdentifier("https://example.test/")],
            Profile(permitted=(x509.UniformResourceIdentifier(".example.test"),)),
            "outside the permitted subtrees",
            id="URI host is the .domain",
        ),
        pytest.param(
            [x509.OtherName(OTHER_TYPE, b"\x0c\x01a")],
            Profile(permitted=(x509.OtherName(OTHER_TYPE, b"\x0c\x00"),)),
            "cannot compare",
            id="otherName of the subtree's type",
        ),
        pytest.param(
            [x509.OtherName(OTHER_TYPE, b"\x0c\x01a")],
            Profile(
                permitted=(x509.OtherName(ObjectIdentifier("1.3.6.1.4.1.55555.2"), b"\x0c\x00"),)
            ),
            None,
            id="otherName of another type",
        ),
        pytest.param(
            [x509.DNSName(HOST)],
            Profile(permitted=(x509.RFC822Name("other.test"),)),
            None,
            id="dNSName under email subtrees only",
        ),
    ],
)
def test_other_name_types(
    request: pytest.FixtureRequest,
    names: list[x509.GeneralName],
    profile: Profile,
    fragment: str | None,
) -> None:
    ca = constrained(request.node.callspec.id, profile)
    subject_leaf = named_leaf(ca, "leaf with other names", names)
    problem = path_problem(certificates(subject_leaf, ca), 1)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem


def test_an_email_address_in_the_subject_is_checked() -> None:
    ca = constrained("email in subject", Profile(permitted=(x509.RFC822Name("other.test"),)))
    key = private_key("leaf with emailAddress")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, HOST),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "hostmaster@example.test"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(VALID.not_before)
        .not_valid_after(VALID.not_after)
        .sign(ca.key, hashes.SHA256())
    )
    problem = path_problem([certificate, ca.certificate], 1)
    assert problem is not None and "hostmaster@example.test" in problem


# nc_dns(): the base, or the base with labels added on the left; ASCII case aside.
@pytest.mark.parametrize(
    ("name", "base", "within"),
    [
        ("mx.example.test", "example.test", True),
        ("example.test", "example.test", True),
        ("MX.Example.Test", "example.TEST", True),
        ("mx.example.test", ".example.test", True),
        ("example.test", ".example.test", False),
        ("mx.example.test", "ample.test", False),
        ("mx.example.test", "", True),
        ("*.example.test", "example.test", True),
        ("test", "example.test", False),
    ],
)
def test_dns_subtrees(name: str, base: str, within: bool) -> None:
    assert pkix._dns_within(name, base) is within


# nc_email(): a mailbox (local part exact), a host, or ".domain" for hosts below it.
@pytest.mark.parametrize(
    ("email", "base", "within"),
    [
        ("pm@example.test", "example.test", True),
        ("pm@EXAMPLE.test", "example.TEST", True),
        ("pm@mx.example.test", "example.test", False),
        ("pm@mx.example.test", ".example.test", True),
        ("pm@example.test", ".example.test", False),
        ("pm@example.test", "pm@example.test", True),
        ("PM@example.test", "pm@example.test", False),
        ("pm@example.test", "@example.test", True),
    ],
)
def test_email_subtrees(email: str, base: str, within: bool) -> None:
    assert pkix._email_within(email, base) is within


def test_an_email_without_at_cannot_be_compared() -> None:
    with pytest.raises(pkix._Unsupported):
        pkix._email_within("postmaster", "example.test")


# nc_dn(): the constraint's RDNs begin the subject, as canonical encodings compare them.
COUNTRY, ORG = NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME


@pytest.mark.parametrize(
    ("subject", "base", "within"),
    [
        (name((COUNTRY, "DE"), (ORG, "Example")), name((COUNTRY, "DE")), True),
        (name((COUNTRY, "DE"), (ORG, "Example")), name((COUNTRY, "DE"), (ORG, "Example")), True),
        (name((COUNTRY, "DE"), (ORG, "Example")), name((COUNTRY, "de"), (ORG, "  EXAMPLE ")), True),
        (
            name((COUNTRY, "DE"), (ORG, "Exa \t mple")),
            name((COUNTRY, "DE"), (ORG, "exa mple")),
            True,
        ),
        (name((COUNTRY, "DE"), (ORG, "Example")), name((ORG, "Example")), False),
        (name((COUNTRY, "DE")), name((COUNTRY, "DE"), (ORG, "Example")), False),
        (name((COUNTRY, "DE"), (ORG, "Other")), name((COUNTRY, "DE"), (ORG, "Example")), False),
        (name((COUNTRY, "DE"), (ORG, "Example")), name(), True),
    ],
)
def test_directory_name_subtrees(subject: x509.Name, base: x509.Name, within: bool) -> None:
    assert pkix._within(x509.DirectoryName(subject), x509.DirectoryName(base)) is within


# cn2dnsid(): which CNs count as host names (two labels or more, LDH and "_").
@pytest.mark.parametrize(
    ("common_name", "host"),
    [
        ("mx.example.test", "mx.example.test"),
        ("MX.Example.Test", "MX.Example.Test"),
        ("_smtp.example.test", "_smtp.example.test"),
        ("mx.example.test\0", "mx.example.test"),
        ("localhost", None),
        ("*.example.test", None),
        ("mx..example.test", None),
        ("-mx.example.test", None),
        ("mx-.example.test", None),
        ("mx.example.test.", None),
        ("Mail Server", None),
        ("mx.exämple.test", None),
    ],
)
def test_which_common_names_look_like_hosts(common_name: str, host: str | None) -> None:
    assert pkix._host_like(common_name) == host


def test_a_common_name_with_a_nul_inside_cannot_be_compared() -> None:
    with pytest.raises(pkix._Unsupported):
        pkix._host_like("mx.example.test\0.other.test")


def test_names_compare_as_canonical_encodings() -> None:
    """X509_NAME_cmp(): what decides self-issued (EXFLAG_SI) and directoryName subtrees."""
    assert pkix._same_name(name((ORG, "Root  A")), name((ORG, " root a ")))
    assert not pkix._same_name(name((ORG, "Root A")), name((ORG, "RootA")))
    assert not pkix._same_name(
        name((ORG, "Root A"), (COUNTRY, "DE")), name((COUNTRY, "DE"), (ORG, "Root A"))
    )


# ossl_x509_likely_issued(): how OpenSSL links a certificate to its issuer, no signature checked.
def test_key_identifiers_tell_same_named_issuers_apart() -> None:
    c = cast()
    assert pkix.likely_issued(c.intermediate.certificate, c.leaf.certificate)
    assert not pkix.likely_issued(c.impostor.certificate, c.leaf.certificate)
    # Without key identifiers only the names are compared: the impostor fits.
    assert pkix.likely_issued(c.plain_impostor.certificate, c.plain_leaf.certificate)
    assert not pkix.likely_issued(c.root.certificate, c.leaf.certificate)


def test_the_issuer_key_must_be_of_the_kind_of_the_signature() -> None:
    c = cast()
    rsa_leaf = c.leaf_of_type(KeyType.RSA_2048)  # signed by A1 with ECDSA
    assert pkix.likely_issued(c.intermediate.certificate, rsa_leaf.certificate)
    rsa_named_a1 = intermediate("intermediate A1", c.root, key_type=KeyType.RSA_2048)
    assert rsa_named_a1.subject == c.intermediate.subject
    plain = leaf(c.intermediate, label="leaf without key ids", key_ids=False)
    assert not pkix.likely_issued(rsa_named_a1.certificate, plain.certificate)


def test_an_invalid_certificate_is_linked_to_nothing() -> None:
    c = cast()
    invalid_leaf = c.restricted_leaf("with an empty keyUsage")
    assert not pkix.likely_issued(c.intermediate.certificate, invalid_leaf.certificate)
    _, invalid_ca = c.restricted_chain("with an empty keyUsage")
    assert not pkix.likely_issued(c.root.certificate, invalid_ca.certificate)


def test_self_signed_is_judged_without_the_signature() -> None:
    c = cast()
    assert pkix.self_signed(c.root.certificate)
    assert pkix.self_signed(c.plain_root.certificate)
    assert pkix.self_signed(c.self_signed.certificate)
    assert not pkix.self_signed(c.intermediate.certificate)
    # Root L's new key certified by its old one: self-issued, key identifiers differ.
    _, renewed = c.rollover_of_short_path_root
    assert not pkix.self_signed(renewed.certificate)
