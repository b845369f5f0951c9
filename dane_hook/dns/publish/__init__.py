"""Publishing dane-hook's own TLSA records: RFC 2136 + TSIG, the PowerDNS API, or a command.

    [publisher.primary]                 [publisher.pdns]              [publisher.script]
    type = "rfc2136"                    type = "powerdns"             type = "exec"
    key_file = "tlsa.key"               url = "http://127.0.0.1:8081" command = ["/usr/local/bin/x"]
    server = "192.0.2.53"  # optional   api_key_file = "pdns.key"     timeout = 30
    port = 53                           server_id = "localhost"       zone = "example.com."
    zone = "example.com."  # optional   zone = "example.com."
    key_name, timeout, resolver,        timeout, ttl                  ttl
    resolver_port, ttl

`publisher_from_table()` turns one such table into a `Publisher`; every publisher offers
`read(owner)` and `apply(changes)` (see base.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dane_hook.dns.publish.base import (
    Change,
    Outcome,
    Publisher,
    PublishError,
    RRsetView,
    Settings,
)
from dane_hook.dns.publish.command import CommandPublisher
from dane_hook.dns.publish.powerdns import PowerDnsPublisher
from dane_hook.dns.publish.rfc2136 import Rfc2136Publisher
from dane_hook.dns.publish.tsig import TsigKey, load_tsig_key
from dane_hook.errors import BadInput

__all__ = [
    "KINDS",
    "Change",
    "CommandPublisher",
    "Outcome",
    "PowerDnsPublisher",
    "PublishError",
    "Publisher",
    "RRsetView",
    "Rfc2136Publisher",
    "TsigKey",
    "load_tsig_key",
    "publisher_from_table",
]

KINDS: Mapping[str, Callable[[Settings], Publisher]] = {
    Rfc2136Publisher.kind: Rfc2136Publisher.from_table,
    PowerDnsPublisher.kind: PowerDnsPublisher.from_table,
    CommandPublisher.kind: CommandPublisher.from_table,
}


def publisher_from_table(
    name: str, table: Mapping[str, Any], source: Path | None = None
) -> Publisher:
    """The publisher a `[publisher.NAME]` table describes; BadInput names the key at fault.

    `source` is the configuration file: errors name it, relative paths start at its directory.
    Key files are read (and their permissions checked) here, once.
    """
    settings = Settings(name, table, source)
    kind = table.get("type")
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadInput(
            f"{source}: publisher.{name}.type: expected " + " or ".join(repr(k) for k in KINDS)
            if source is not None
            else f"publisher.{name}.type: expected " + " or ".join(repr(k) for k in KINDS)
        )
    return KINDS[kind](settings)
