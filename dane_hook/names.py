"""Reference identifiers: does a certificate carry the name a client expects (RFC 7672 §3.2.3)?"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID


def dns_names(certificate: x509.Certificate) -> list[str]:
    """The certificate's DNS names: subjectAltName dNSNames, else its CN (RFC 6125 §6.4.4)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    except Exception:
        names = []
    if names:
        return [n.lower().rstrip(".") for n in names]
    try:
        common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except Exception:
        return []
    return [str(a.value).lower().rstrip(".") for a in common if isinstance(a.value, str)]


def name_matches(pattern: str, host: str) -> bool:
    """RFC 7672 §3.2.3 / RFC 6125 §6.4.3: exact, or "*" as the whole left-most label only.

    This is OpenSSL's X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, which SSL_dane_enable() sets.
    """
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    # "*" stands for exactly one label, and never for a label of a public suffix alone.
    if "." not in suffix or "*" in suffix:
        return False
    head, _, rest = host.partition(".")
    return bool(head) and rest == suffix


def names_cover(certificate: x509.Certificate, host: str) -> bool:
    return any(name_matches(pattern, host) for pattern in dns_names(certificate))
