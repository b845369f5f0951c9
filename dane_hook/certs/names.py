"""Reference identifiers: does a certificate carry the name a client expects (RFC 7672 §3.2.3)?

Names are matched as OpenSSL's X509_check_host() matches them (crypto/x509/v3_utl.c) with the one
host flag Postfix sets, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS (tls_client.c: "RFC6125: No
part-label wildcards for SMTP"). SSL_dane_enable() itself sets no host flags: it only makes the
TLSA base domain the reference identifier.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

_LDH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def dns_names(certificate: x509.Certificate) -> list[str]:
    """The host names a TLSA owner may be made of: the subjectAltName dNSNames of a leaf, in
    lower case without a trailing dot. A CA certificate has none (its CN names the CA, "ISRG
    Root X1", never a host), and a CN is never used: CAs must put every name in the SAN (CA/B
    Forum Baseline Requirements §7.1.2.7.12), and RFC 6125 §6.4.4's CN fallback is for
    matching, which `names_cover` does as OpenSSL does."""
    if is_ca(certificate):
        return []
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except Exception:  # absent, or an extension cryptography cannot parse
        return []
    return [name.lower().rstrip(".") for name in names if name]


def is_ca(certificate: x509.Certificate) -> bool:
    """basicConstraints cA is set (RFC 5280 §4.2.1.9). A self-signed leaf is not a CA: DANE-EE
    (RFC 7672 §3.1.1) serves such certificates."""
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except Exception:  # absent, or an extension cryptography cannot parse
        return False


def _written_names(certificate: x509.Certificate) -> list[str]:
    """subjectAltName dNSNames as written, else the CNs: OpenSSL reads the CN only when there is
    no dNSName (v3_utl.c do_x509_check)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    except Exception:
        names = []
    if names:
        return names
    try:
        common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except Exception:
        return []
    return [a.value for a in common if isinstance(a.value, str)]


def name_matches(pattern: str, host: str) -> bool:
    """Whether the certificate name `pattern` covers `host` (RFC 7672 §3.2.3, RFC 6125 §6.4.3).

    As OpenSSL's equal_wildcard() with X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS decides: equal
    apart from the case of ASCII letters; or `pattern` is "*." and two or more letter-digit-
    hyphen labels (valid_star), and the "*" stands for one label of letters, digits and hyphens
    only, or for a literal "*" (wildcard_match). The certificate's name is taken as written (a
    trailing dot there matches nothing); a trailing dot on `host` is dropped, as Postfix passes
    names from DNS without it.
    """
    if host.endswith(".") and len(host) > 1:
        host = host[:-1]
    if "\0" in pattern or not pattern or not host:
        return False
    if _ascii_lower(pattern) == _ascii_lower(host):
        return True
    if not _is_wildcard(pattern) or host.startswith("."):
        return False
    suffix = pattern[1:]  # ".example.test": the "*" must stand for one character at least
    if len(host) <= len(suffix) or _ascii_lower(host[-len(suffix) :]) != _ascii_lower(suffix):
        return False
    label = host[: -len(suffix)]
    return label == "*" or all(char in _LDH for char in label)


def _is_wildcard(pattern: str) -> bool:
    """valid_star() under NO_PARTIAL_WILDCARDS: "*" alone as the left-most label, then two or
    more labels of letters, digits and inner hyphens."""
    if not pattern.startswith("*."):
        return False
    labels = pattern[2:].split(".")
    return len(labels) >= 2 and all(
        label and set(label) <= _LDH and label[0] != "-" and label[-1] != "-" for label in labels
    )


def _ascii_lower(text: str) -> str:
    return "".join(char.lower() if char.isascii() else char for char in text)


def names_cover(certificate: x509.Certificate, host: str) -> bool:
    return any(name_matches(pattern, host) for pattern in _written_names(certificate))
