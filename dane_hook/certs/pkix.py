"""RFC 5280 §6.1 checks OpenSSL applies on a DANE-TA path.

A DANE-EE(3) match ends OpenSSL's verification at the leaf (x509_vfy.c dane_verify). A DANE-TA(2)
match goes on through verify_chain() over OpenSSL's chain: the leaf, its issuers up to the
certificate the record matched, or up to and including a 2 0 0 anchor from DNS, or up to the top
certificate a bare 2 1 0 key signed (the key itself is in no certificate, so nothing of it is
checked). Every certificate of that chain, the anchor included, then passes:

- check_chain() (check_chain_extensions() before 3.0): no critical extension OpenSSL does not
  handle, no proxy certificate; above the leaf a CA (X509_check_ca), strictly by
  basicConstraints below the top; the purpose "ssl_server" that libssl sets on the client side
  (v3_purp.c check_purpose_ssl_server); and pathLenConstraint, counted as RFC 5280 §6.1.4 (l),
  (m) count it.
- check_name_constraints(): each certificate's names against the nameConstraints of every
  certificate above it, the anchor's included (RFC 5280 §6.1.3 (b), (c)).

Postfix (and s_client) set no X509_V_FLAG_X509_STRICT, so the strict-only checks are not made
here. No trust setting lifts these checks: DANE anchors come from the peer or from DNS, never
with the auxiliary trust that check_purpose() would consult (X509_check_trust). The rules are
read from OpenSSL's source and pinned by cases in tests/test_matching_openssl.py, run against
Debian 12's OpenSSL 3.0; the SmtpUTF8Mailbox comparison (RFC 8398) is from the source only.
"""

from __future__ import annotations

import encodings.idna
import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

# X509_supported_extension(): the critical extensions OpenSSL 3.0's verifier understands; any
# other critical extension fails the chain (RFC 5280 §4.2: "MUST reject the certificate").
_HANDLED_CRITICAL = frozenset(
    ObjectIdentifier(oid)
    for oid in (
        "2.16.840.1.113730.1.1",  # Netscape cert type
        "2.5.29.15",  # keyUsage
        "2.5.29.17",  # subjectAltName
        "2.5.29.19",  # basicConstraints
        "2.5.29.32",  # certificatePolicies
        "2.5.29.31",  # cRLDistributionPoints
        "2.5.29.37",  # extendedKeyUsage
        "1.3.6.1.5.5.7.1.7",  # RFC 3779 IP address blocks
        "1.3.6.1.5.5.7.1.8",  # RFC 3779 AS identifiers
        "1.3.6.1.5.5.7.48.1.5",  # OCSP no check
        "2.5.29.36",  # policyConstraints
        "1.3.6.1.5.5.7.1.14",  # proxyCertInfo
        "2.5.29.30",  # nameConstraints
        "2.5.29.33",  # policyMappings
        "2.5.29.54",  # inhibitAnyPolicy
    )
)
_NETSCAPE_CERT_TYPE = ObjectIdentifier("2.16.840.1.113730.1.1")
_PROXY_CERT_INFO = ObjectIdentifier("1.3.6.1.5.5.7.1.14")
_SMTP_UTF8_MAILBOX = ObjectIdentifier("1.3.6.1.5.5.7.8.9")
# What the "ssl_server" purpose accepts in extendedKeyUsage: serverAuth, or Netscape's or
# Microsoft's Server Gated Crypto. anyExtendedKeyUsage is not among them.
_SERVER_PURPOSES = frozenset(
    {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ObjectIdentifier("2.16.840.1.113730.4.1"),  # Netscape SGC
        ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),  # Microsoft SGC
    }
)
_NS_SSL_SERVER = 0x40
_NS_SSL_CA = 0x04
_NS_ANY_CA = 0x07
_WHITESPACE = " \t\n\v\f\r"
_E = TypeVar("_E", bound=x509.ExtensionType)


class _Unsupported(Exception):
    """A name or constraint OpenSSL cannot compare: it fails the chain (an X509_V_ERR_UNSUPPORTED_*
    result of nc_match)."""


@dataclass(frozen=True)
class _Facts:
    """What OpenSSL's x509v3_cache_extensions() notes about one certificate."""

    certificate: x509.Certificate
    version1: bool
    self_issued: bool
    """Subject and issuer names equal as X509_NAME_cmp compares them (EXFLAG_SI)."""
    self_signed: bool
    """Self-issued, key identifiers agree, key type fits the signature (EXFLAG_SS): no
    signature check."""
    basic_constraints: x509.BasicConstraints | None
    key_usage: x509.KeyUsage | None
    purposes: frozenset[ObjectIdentifier] | None
    ns_cert_type: int | None
    name_constraints: x509.NameConstraints | None
    alt_names: tuple[x509.GeneralName, ...]
    unhandled_critical: ObjectIdentifier | None
    proxy: bool
    invalid: str | None = None
    """Why OpenSSL marks it invalid (EXFLAG_INVALID), for an extension it decodes but refuses."""


def checked_chain(
    path: Sequence[x509.Certificate], anchor_depth: int, anchor: x509.Certificate | None = None
) -> tuple[x509.Certificate, ...]:
    """The certificates OpenSSL checks for a DANE-TA match at `anchor_depth` of `path`.

    `anchor_depth` below len(path) is the certificate the record matched; len(path) is an anchor
    not sent: the 2 0 0 certificate `anchor`, or, when None, a bare 2 1 0 key that signed the
    top of the path.
    """
    if anchor_depth < len(path):
        return tuple(path[: anchor_depth + 1])
    return (*path, anchor) if anchor is not None else tuple(path)


def path_problem(
    path: Sequence[x509.Certificate], anchor_depth: int, anchor: x509.Certificate | None = None
) -> str | None:
    """Why OpenSSL refuses the DANE-TA chain at `anchor_depth` (see checked_chain), or None.

    The reason names the depth of the certificate at fault and the rule, as OpenSSL finds it:
    check_chain() from the leaf up, then check_name_constraints() from the top down.
    """
    chain = checked_chain(path, anchor_depth, anchor)
    facts: list[_Facts] = []
    for depth, certificate in enumerate(chain):
        noted = _facts(certificate)
        if isinstance(noted, str):
            return _at(depth, certificate, noted)
        if noted.invalid is not None and len(chain) > 1:
            # ossl_x509_likely_issued() links no invalid certificate to an issuer: only a
            # leaf that a bare 2 1 0 key signs (X509_verify, no link) gets past it.
            return _at(depth, certificate, f"{noted.invalid}, which OpenSSL treats as invalid")
        facts.append(noted)
    return _extension_problem(facts) or _name_constraint_problem(facts)


def _at(depth: int, certificate: x509.Certificate, problem: str) -> str:
    subject = certificate.subject.rfc4514_string() or "no subject"
    return f"the certificate at depth {depth} ({subject}) {problem}"


# --- check_chain() ------------------------------------------------------------------------------


def _extension_problem(chain: Sequence[_Facts]) -> str | None:
    below = 0  # CA certificates between the leaf and this one that are not self-issued
    for depth, facts in enumerate(chain):
        problem = _certificate_problem(facts, depth, top=depth == len(chain) - 1)
        if problem is None:
            limit = facts.basic_constraints.path_length if facts.basic_constraints else None
            # RFC 5280 §6.1.4 (l), (m): OpenSSL checks from depth 2, where one CA can be below.
            if depth > 1 and limit is not None and below > limit:
                problem = (
                    f"allows {limit} CA certificate(s) below it (pathLenConstraint, RFC 5280 "
                    f"§4.2.1.9), but {below} follow on the path"
                )
        if problem is not None:
            return _at(depth, facts.certificate, problem)
        if depth > 0 and not facts.self_issued:
            below += 1
    return None


def _certificate_problem(facts: _Facts, depth: int, *, top: bool) -> str | None:
    if facts.unhandled_critical is not None:
        oid = facts.unhandled_critical.dotted_string
        return f"has a critical extension OpenSSL does not process ({oid}; RFC 5280 §4.2)"
    if facts.proxy:
        return "is a proxy certificate (RFC 3820), which a TLS client does not allow"
    if depth == 0:
        return _leaf_purpose_problem(facts)
    ca = _ca_kind(facts)
    if ca == 0:
        return f"is not a CA: {_why_not_ca(facts)} (X509_check_ca)"
    if ca != 1 and not top:
        # check_chain() takes the old forms (v1 root, keyCertSign, Netscape CA) only at the
        # top of the chain; an intermediate needs basicConstraints cA.
        return "is not a CA by basicConstraints (RFC 5280 §4.2.1.9), as an intermediate must be"
    if not _server_purpose(facts):
        return "has an extendedKeyUsage without serverAuth (RFC 5280 §4.2.1.12)"
    if ca == 5 and not (facts.ns_cert_type or 0) & _NS_SSL_CA:
        return "is a CA only by a Netscape cert type that is not for SSL"
    return None


def _leaf_purpose_problem(facts: _Facts) -> str | None:
    """check_purpose_ssl_server() for the leaf: a certificate a TLS server may use."""
    if facts.invalid is not None:
        return None  # X509_check_purpose() cannot tell (-1): accepted unless X509_STRICT
    if not _server_purpose(facts):
        return "has an extendedKeyUsage without serverAuth (RFC 5280 §4.2.1.12)"
    if facts.ns_cert_type is not None and not facts.ns_cert_type & _NS_SSL_SERVER:
        return "has a Netscape cert type without SSL server"
    usage = facts.key_usage
    if usage is not None and not (
        usage.digital_signature or usage.key_encipherment or usage.key_agreement
    ):
        return (
            "has a keyUsage with none of digitalSignature, keyEncipherment, keyAgreement "
            "(RFC 5280 §4.2.1.3)"
        )
    return None


def _server_purpose(facts: _Facts) -> bool:
    return facts.purposes is None or not facts.purposes.isdisjoint(_SERVER_PURPOSES)


def _ca_kind(facts: _Facts) -> int:
    """X509_check_ca(): 0 not a CA, 1 by basicConstraints, 3 a v1 self-signed root, 4 by
    keyUsage keyCertSign alone, 5 by a Netscape CA cert type alone."""
    if facts.key_usage is not None and not facts.key_usage.key_cert_sign:
        return 0
    if facts.basic_constraints is not None:
        return 1 if facts.basic_constraints.ca else 0
    if facts.version1 and facts.self_signed:
        return 3
    if facts.key_usage is not None:
        return 4
    if facts.ns_cert_type is not None and facts.ns_cert_type & _NS_ANY_CA:
        return 5
    return 0


def _why_not_ca(facts: _Facts) -> str:
    if facts.key_usage is not None and not facts.key_usage.key_cert_sign:
        return "its keyUsage lacks keyCertSign (RFC 5280 §4.2.1.3)"
    if facts.basic_constraints is not None:
        return "its basicConstraints cA is false (RFC 5280 §4.2.1.9)"
    if facts.version1:
        return "a v1 certificate is a CA only as a self-signed root"
    return "it has no basicConstraints (RFC 5280 §4.2.1.9)"


# --- x509v3_cache_extensions() ----------------------------------------------------------------


def _facts(certificate: x509.Certificate) -> _Facts | str:
    """The certificate's facts, or why they cannot be known (OpenSSL's EXFLAG_INVALID: such a
    certificate is neither a CA nor linked to an issuer)."""
    try:
        extensions = certificate.extensions
    except Exception as exc:  # cryptography refuses a malformed extension as OpenSSL does
        return f"has an extension that cannot be decoded ({exc}), which OpenSSL treats as invalid"

    basic = _extension(extensions, x509.BasicConstraints)
    usage = _extension(extensions, x509.KeyUsage)
    purposes = _extension(extensions, x509.ExtendedKeyUsage)
    constraints = _extension(extensions, x509.NameConstraints)
    alt = _extension(extensions, x509.SubjectAlternativeName)
    invalid = None
    if usage is not None and not _any_key_usage(usage):
        invalid = "has a keyUsage with no bit set (RFC 5280 §4.2.1.3)"
    ns_cert_type: int | None = None
    unhandled: ObjectIdentifier | None = None
    proxy = False
    for extension in extensions:
        if extension.oid == _NETSCAPE_CERT_TYPE:
            ns_cert_type = _netscape_cert_type(extension.value)
            if ns_cert_type is None:
                invalid = "has a Netscape cert type that cannot be decoded"
        proxy = proxy or extension.oid == _PROXY_CERT_INFO
        if extension.critical and extension.oid not in _HANDLED_CRITICAL and unhandled is None:
            unhandled = extension.oid
    self_issued = _same_name(certificate.subject, certificate.issuer)
    return _Facts(
        certificate=certificate,
        version1=certificate.version == x509.Version.v1,
        self_issued=self_issued,
        self_signed=self_issued
        and _key_ids_fit(certificate, certificate)
        and _key_fits(certificate, certificate),
        basic_constraints=basic,
        key_usage=usage,
        purposes=frozenset(purposes) if purposes is not None else None,
        ns_cert_type=ns_cert_type,
        name_constraints=constraints,
        alt_names=tuple(alt) if alt is not None else (),
        unhandled_critical=unhandled,
        proxy=proxy,
        invalid=invalid,
    )


def _extension(extensions: x509.Extensions, kind: type[_E]) -> _E | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _any_key_usage(usage: x509.KeyUsage) -> bool:
    bits = [
        usage.digital_signature,
        usage.content_commitment,
        usage.key_encipherment,
        usage.data_encipherment,
        usage.key_agreement,
        usage.key_cert_sign,
        usage.crl_sign,
    ]
    # encipher_only and decipher_only may only be read with keyAgreement (cryptography).
    if usage.key_agreement:
        bits += [usage.encipher_only, usage.decipher_only]
    return any(bits)


def _netscape_cert_type(extension: x509.ExtensionType) -> int | None:
    """The first octet of the Netscape cert type BIT STRING (OpenSSL reads only that one)."""
    if not isinstance(extension, x509.UnrecognizedExtension):
        return None
    der = extension.value
    if len(der) < 3 or der[0] != 0x03 or der[1] != len(der) - 2:
        return None
    return der[3] if len(der) > 3 else 0


def likely_issued(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    """ossl_x509_likely_issued(): whether OpenSSL's build_chain() takes `issuer` as the issuer of
    `subject`, before any signature check. The names are equal (X509_NAME_cmp), the subject's
    authority key identifier fits the issuer (X509_check_akid), the issuer's key is of the kind
    of the subject's signature (check_sig_alg_match), and neither certificate is invalid."""
    if not _same_name(issuer.subject, subject.issuer):
        return False
    for certificate in (issuer, subject):
        facts = _facts(certificate)
        if isinstance(facts, str) or facts.invalid is not None:
            return False
    return _key_ids_fit(issuer, subject) and _key_fits(issuer, subject)


def self_signed(certificate: x509.Certificate) -> bool:
    """X509_self_signed(certificate, 0): self-issued, and its own key identifiers and key type
    fit (EXFLAG_SS). OpenSSL looks for no issuer above such a certificate."""
    facts = _facts(certificate)
    return not isinstance(facts, str) and facts.self_signed


def _key_ids_fit(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    """X509_check_akid(issuer, subject's AKID): key identifier, serial and issuer name, each
    only when present on both sides."""
    try:
        aki = subject.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return True
    if aki.key_identifier is not None:
        try:
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            ski = None
        if ski is not None and ski.digest != aki.key_identifier:
            return False
    serial = aki.authority_cert_serial_number
    if serial is not None and serial != issuer.serial_number:
        return False
    for name in aki.authority_cert_issuer or ():
        if isinstance(name, x509.DirectoryName):
            return _same_name(name.value, issuer.issuer)
    return True


def _key_fits(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    """check_sig_alg_match(): the issuer's key is of the kind the subject's signature names."""
    try:
        key = issuer.public_key()
        oid = subject.signature_algorithm_oid.dotted_string
    except Exception:
        return False
    if isinstance(key, rsa.RSAPublicKey):
        return oid.startswith("1.2.840.113549.1.1.")
    if isinstance(key, ec.EllipticCurvePublicKey):
        return oid.startswith("1.2.840.10045.4.")
    if isinstance(key, ed25519.Ed25519PublicKey):
        return oid == "1.3.101.112"
    if isinstance(key, ed448.Ed448PublicKey):
        return oid == "1.3.101.113"
    if isinstance(key, dsa.DSAPublicKey):
        return oid.startswith(("1.2.840.10040.4.3", "2.16.840.1.101.3.4.3."))
    return False


# --- names as X509_NAME_cmp compares them -----------------------------------------------------

_Canonical = tuple[frozenset[tuple[str, object]], ...]


@functools.lru_cache(maxsize=4096)
def _canonical(name: x509.Name) -> _Canonical:
    """The name as OpenSSL's canonical encoding sees it (x_name.c x509_name_canon): per RDN, each
    string value with ASCII letters in lower case, leading and trailing white space removed and
    inner runs of white space made one space."""
    return tuple(
        frozenset(
            (attribute.oid.dotted_string, _canonical_value(attribute.value)) for attribute in rdn
        )
        for rdn in name.rdns
    )


def _canonical_value(value: str | bytes) -> object:
    if isinstance(value, bytes):
        return value
    return " ".join(_ascii_lower(value).strip(_WHITESPACE).split())


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def _same_name(a: x509.Name, b: x509.Name) -> bool:
    return _canonical(a) == _canonical(b)


# --- check_name_constraints() ------------------------------------------------------------------


def _name_constraint_problem(chain: Sequence[_Facts]) -> str | None:
    for depth in range(len(chain) - 1, -1, -1):
        facts = chain[depth]
        # A self-issued CA (a key rollover) is not held to the constraints above it
        # (RFC 5280 §6.1.3 (b)); the leaf always is.
        if depth != 0 and facts.self_issued:
            continue
        for above in range(len(chain) - 1, depth, -1):
            constraints = chain[above].name_constraints
            if constraints is None:
                continue
            violation = _constraint_violation(facts, constraints, leaf=depth == 0)
            if violation is not None:
                return _at(
                    depth,
                    facts.certificate,
                    f"breaks the nameConstraints of the certificate at depth {above} "
                    f"(RFC 5280 §4.2.1.10): {violation}",
                )
    return None


def _constraint_violation(
    facts: _Facts, constraints: x509.NameConstraints, *, leaf: bool
) -> str | None:
    """NAME_CONSTRAINTS_check(): the subject name, its emailAddress values and the
    subjectAltNames; then for the leaf without a dNSName its CNs that look like host names
    (NAME_CONSTRAINTS_check_CN; Postfix sets no host flag that would change this)."""
    subject = facts.certificate.subject
    checked: list[tuple[x509.GeneralName, str]] = []
    try:
        if len(subject.rdns) > 0:
            checked.append((x509.DirectoryName(subject), "subject"))
            for attribute in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
                checked.append((x509.RFC822Name(str(attribute.value)), "subject emailAddress"))
        checked.extend((name, "subjectAltName") for name in facts.alt_names)
        if leaf and not any(isinstance(n, x509.DNSName) for n in facts.alt_names):
            for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME):
                host = _host_like(attribute.value)
                if host is not None:
                    checked.append((x509.DNSName(host), "CN"))
        for name, role in checked:
            problem = _subtree_problem(name, constraints)
            if problem is not None:
                return f"its {role} {_show(name)} is {problem}"
    except (_Unsupported, ValueError) as exc:
        return f"OpenSSL cannot compare its names with them ({exc})"
    return None


def _host_like(value: str | bytes) -> str | None:
    """cn2dnsid(): a CN that looks like a host name of two labels or more, else None.

    Letters, digits, "_" and inner "-" and "."; no "." or "-" next to a ".". An embedded NUL
    makes the name unusable (X509_V_ERR_UNSUPPORTED_NAME_SYNTAX)."""
    if isinstance(value, bytes):
        return None
    text = value.rstrip("\0")
    if "\0" in text:
        raise _Unsupported("a CN with a NUL character")
    dotted = False
    for index, char in enumerate(text):
        if char.isascii() and (char.isalnum() or char == "_"):
            continue
        inner = 0 < index < len(text) - 1
        if inner and char == "-":
            continue
        if inner and char == "." and text[index + 1] not in ".-" and text[index - 1] != "-":
            dotted = True
            continue
        return None
    return text if dotted else None


def _show(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return f"directoryName {name.value.rfc4514_string()!r}"
    if isinstance(name, x509.OtherName):
        return f"otherName {name.type_id.dotted_string}"
    return repr(str(name.value))


def _kind(name: x509.GeneralName) -> tuple[type[x509.GeneralName], ObjectIdentifier | None]:
    """A name's type as a subtree's, with an otherName's type id."""
    if isinstance(name, x509.OtherName):
        return x509.OtherName, name.type_id
    return type(name), None


def _effective_kind(
    name: x509.GeneralName,
) -> tuple[type[x509.GeneralName], ObjectIdentifier | None]:
    """nc_match()'s effective type: an SmtpUTF8Mailbox otherName is compared with email
    address subtrees (RFC 8398 §6)."""
    if isinstance(name, x509.OtherName) and name.type_id == _SMTP_UTF8_MAILBOX:
        return x509.RFC822Name, None
    return _kind(name)


def _subtree_problem(name: x509.GeneralName, constraints: x509.NameConstraints) -> str | None:
    """nc_match(): within one permitted subtree of its type, when there are any; within none
    of the excluded ones."""
    kind = _effective_kind(name)
    permitted = [s for s in constraints.permitted_subtrees or () if _kind(s) == kind]
    if permitted and not any(_within(name, subtree) for subtree in permitted):
        return "outside the permitted subtrees " + ", ".join(_show(s) for s in permitted)
    for subtree in constraints.excluded_subtrees or ():
        if _kind(subtree) == kind and _within(name, subtree):
            return f"inside the excluded subtree {_show(subtree)}"
    return None


def _within(name: x509.GeneralName, base: x509.GeneralName) -> bool:
    """nc_match_single(): whether `name` lies in the subtree `base` of the same type."""
    if isinstance(name, x509.DNSName) and isinstance(base, x509.DNSName):
        return _dns_within(name.value, base.value)
    if isinstance(name, x509.RFC822Name) and isinstance(base, x509.RFC822Name):
        return _email_within(name.value, base.value)
    if isinstance(name, x509.OtherName) and isinstance(base, x509.RFC822Name):
        return _email_within(_utf8_string(name.value), _a_labels_decoded(base.value))
    if isinstance(name, x509.DirectoryName) and isinstance(base, x509.DirectoryName):
        prefix = _canonical(base.value)
        return _canonical(name.value)[: len(prefix)] == prefix
    if isinstance(name, x509.UniformResourceIdentifier) and isinstance(
        base, x509.UniformResourceIdentifier
    ):
        return _uri_within(name.value, base.value)
    if isinstance(name, x509.IPAddress) and isinstance(base, x509.IPAddress):
        return _ip_within(name.value, base.value)
    raise _Unsupported(f"a subtree of type {type(base).__name__}")


def _dns_within(dns: str, base: str) -> bool:
    """nc_dns(): the base, or the base with labels added on the left; case aside."""
    if not base:
        return True
    if len(dns) < len(base):
        return False
    tail = dns[len(dns) - len(base) :]
    if len(dns) > len(base) and not base.startswith(".") and dns[len(dns) - len(base) - 1] != ".":
        return False
    return _ascii_lower(tail) == _ascii_lower(base)


def _email_within(email: str, base: str) -> bool:
    """nc_email(): a whole mailbox (local part exact), a host, or ".domain" for any below it."""
    at = email.rfind("@")
    if at < 0:
        raise _Unsupported("an email address without @")
    base_at = base.rfind("@")
    if base_at < 0 and base.startswith("."):
        return len(email) > len(base) and _ascii_lower(email[-len(base) :]) == _ascii_lower(base)
    host = base
    if base_at >= 0:
        if base_at > 0 and base[:base_at] != email[:at]:
            return False
        host = base[base_at + 1 :]
    return _ascii_lower(email[at + 1 :]) == _ascii_lower(host)


def _utf8_string(der: bytes) -> str:
    """The UTF8String an SmtpUTF8Mailbox otherName holds (RFC 8398 §3)."""
    if len(der) < 2 or der[0] != 0x0C:
        raise _Unsupported("an SmtpUTF8Mailbox that is not a UTF8String")
    size, offset = der[1], 2
    if size & 0x80:
        count = size & 0x7F
        size, offset = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    return der[offset : offset + size].decode("utf-8", errors="strict")


def _a_labels_decoded(base: str) -> str:
    """The constraint's host with A-labels as U-labels, as nc_email_eai compares them."""
    local, at, host = base.rpartition("@")
    try:
        labels = [encodings.idna.ToUnicode(label) if label else "" for label in host.split(".")]
    except UnicodeError as exc:
        raise _Unsupported(f"the constraint {base!r}") from exc
    return local + at + ".".join(labels)


def _uri_within(uri: str, base: str) -> bool:
    """nc_uri(): the URI's host equals the base, or ends in it when the base starts with "."."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        raise _Unsupported(f"the URI {uri!r}")
    host = parts.hostname or ""
    if base.startswith("."):
        return len(host) > len(base) and _ascii_lower(host[-len(base) :]) == _ascii_lower(base)
    return _ascii_lower(host) == _ascii_lower(base)


def _ip_within(
    address: ipaddress.IPv4Address
    | ipaddress.IPv6Address
    | ipaddress.IPv4Network
    | ipaddress.IPv6Network,
    base: ipaddress.IPv4Address
    | ipaddress.IPv6Address
    | ipaddress.IPv4Network
    | ipaddress.IPv6Network,
) -> bool:
    """nc_ip(): the address under the base's mask; IPv4 never matches IPv6."""
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        raise _Unsupported("an iPAddress name that is a network")
    if not isinstance(base, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        raise _Unsupported("an iPAddress constraint without a mask")
    if address.version != base.version:
        return False
    mask = int(base.netmask)
    return int(address) & mask == int(base.network_address) & mask
