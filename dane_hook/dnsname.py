"""Host names and TLSA owner names as people write them, as DNS holds them.

At the start of the pipeline: the configuration's endpoints are checked when the file is read,
and every stage after it takes names through here (dane_hook.tlsa.record re-exports them).
"""

from __future__ import annotations

import contextlib

from dane_hook.errors import UsageError, shown

PROTOCOLS = ("tcp", "udp", "sctp")


def owner_name(host: str, port: int = 25, proto: str = "tcp") -> str:
    """`_PORT._PROTO.HOST.`, the TLSA owner name of RFC 6698 §3 (absolute, lowercase)."""
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is not between 1 and 65535")
    if proto not in PROTOCOLS:
        raise UsageError(f"protocol {shown(proto)} is not one of {', '.join(PROTOCOLS)}")
    host_name = absolute_name(host, what="host name")
    return absolute_name(f"_{port}._{proto}.{host_name}", what="owner name")


def endpoint_name(text: str, default_port: int = 25) -> str:
    """`_25._tcp.mx.example.com`, or `mx.example.com[:PORT]` (TCP), as a TLSA owner name."""
    spec = text.strip()
    if spec.startswith("_"):
        return absolute_name(spec)
    host, _, port = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if port and not (port.isascii() and port.isdigit()):
        raise UsageError(f"endpoint {shown(text)}: the port is not a number")
    return owner_name(host, int(port) if port else default_port)


# IDNA label separators that UTS #46 maps to "." (ideographic and fullwidth full stops).
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_LDH_UNDERSCORE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def absolute_name(text: str, what: str = "DNS name") -> str:
    """A host or owner name as DNS holds it: A-labels, lowercase, with its trailing dot.

    Checked by hand rather than by dnspython: only the limits of RFC 1035 §2.3.4, the letters,
    digits, hyphens and underscores of host and service labels (RFC 1123 §2.1, RFC 6698 §3),
    and the conversion of U-labels matter here, and `records` should not pay for importing a
    DNS library. U-labels become A-labels by `a_label()`, so the zone publishes the owner
    that DANE clients query (they look up the A-label form, RFC 5890 §2.3.2.1).
    """
    if any("\udc80" <= char <= "\udcff" for char in text):
        # PEP 383: bytes that are not UTF-8 arrive as lone surrogates.
        raise UsageError(f"not a DNS name: the {what} holds bytes that are not UTF-8")
    name = text.strip().translate(_DOTS).rstrip(".")
    labels = name.split(".")
    if not name or any(not label for label in labels):
        raise UsageError(f"not a DNS name: {shown(text)} (empty label)")
    labels = [a_label(label, text) for label in labels]
    if any(len(label) > 63 for label in labels):
        raise UsageError(f"not a DNS name: {shown(text)} (a label is longer than 63 octets)")
    name = ".".join(labels)
    if len(name) + 2 > 255:
        raise UsageError(f"not a DNS name: {shown(text)} (longer than 255 octets)")
    return f"{name}."


def a_label(label: str, whole: str = "") -> str:
    """One label as DNS holds it: ASCII lowercased and checked, a U-label as its A-label.

    The rule is IDNA 2008's (RFC 5891 §4-5) as far as it goes without its tables: the label
    is normalized to NFC and lowercased (UTS #46 maps letters so), every character must be a
    letter, a combining mark, a decimal digit or a hyphen, the first not a mark, no hyphen
    first or last nor in the third and fourth positions (§4.2.3.1); the A-label is "xn--"
    and the Punycode (RFC 3492). Python's "idna" codec is not used: it is IDNA 2003, whose
    nameprep maps "ß" to "ss" and final sigma to sigma, so it names other owners than
    registries and IDNA 2008 clients use; the `idna` package (IDNA 2008 with its tables) is
    not a dependency. Joiners (ZWJ, ZWNJ: CONTEXTJ) and symbols are refused outright.
    """
    import unicodedata

    whole = whole or label
    if label.isascii():
        lowered = label.lower()
        if not set(lowered) <= _LDH_UNDERSCORE:
            raise UsageError(
                f"not a DNS name: {shown(whole)} (a label has a character other than letters, "
                "digits, '-' and '_')"
            )
        return lowered
    normal = unicodedata.normalize("NFC", label).lower()
    allowed = all(
        char == "-" or unicodedata.category(char)[0] in "LM" or unicodedata.category(char) == "Nd"
        for char in normal
    )
    if (
        not allowed
        or unicodedata.category(normal[0])[0] == "M"
        or normal.startswith("-")
        or normal.endswith("-")
        or normal[2:4] == "--"
    ):
        raise UsageError(
            f"not a DNS name: {shown(whole)} (a label is not a valid IDNA 2008 U-label)"
        )
    return "xn--" + normal.encode("punycode").decode("ascii")


def u_label_form(name: str) -> str:
    """A name with its A-labels shown as U-labels, for people (RFC 5890 §2.3.2.1)."""
    shown_labels = []
    for label in name.rstrip(".").split("."):
        if label.startswith("xn--"):
            with contextlib.suppress(UnicodeError, ValueError):
                label = label[4:].encode("ascii").decode("punycode")
        shown_labels.append(label)
    return ".".join(shown_labels) + ("." if name.endswith(".") else "")
