"""The DNS lookups the rest of dane-hook uses, gathered from the modules that hold them.

Published TLSA RRsets, as a validating resolver and as each authoritative server serves them.
The parts, in the order a lookup uses them:
- `exchange`: one question to one server within a time budget (UDP, retries, TCP fallback);
- `validation`: the TLSA lookup and its status (secure, insecure and why, bogus and its EDE);
- `zones`: the zone of a name, its NS set and their addresses;
- `authority`: the TLSA RRset on every authoritative server, their serials, who lags.
Nothing here prints or exits: a lookup returns an answer with a status, and raises
`LookupFailure` only when there is no status to give (no resolver configured, no zone or name
servers found for the authoritative view).
"""

from __future__ import annotations

from dane_hook.dns.authority import (
    AuthoritativeView,
    Authorities,
    ServerAnswer,
    authoritative_view,
    serial_newer,
)
from dane_hook.dns.exchange import (
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    EDNS_PAYLOAD,
    ExtendedError,
    Resolver,
)
from dane_hook.dns.validation import (
    DNSSEC_EDE_CODES,
    MAX_CNAME_HOPS,
    InsecureCause,
    Status,
    TLSAAnswer,
    lookup_tlsa,
)
from dane_hook.dns.zones import find_zone

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TRIES",
    "DNSSEC_EDE_CODES",
    "EDNS_PAYLOAD",
    "MAX_CNAME_HOPS",
    "AuthoritativeView",
    "Authorities",
    "ExtendedError",
    "InsecureCause",
    "Resolver",
    "ServerAnswer",
    "Status",
    "TLSAAnswer",
    "authoritative_view",
    "find_zone",
    "lookup_tlsa",
    "serial_newer",
]
