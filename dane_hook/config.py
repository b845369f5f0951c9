"""The configuration file (TOML): global settings and one table per lineage.

    resolver = "127.0.0.1"           # default: /etc/resolv.conf
    state_dir = "/var/lib/dane-hook"
    served_dir = "/etc/dane-hook/served"
    certbot_dir = "/etc/letsencrypt"
    ports = [25]                     # for endpoints discovered from certificate names
    strict = false                   # an incomplete RRset (RFC 7671 §8) holds the chain
    expiry_warn_days = 14
    expiry_action = "hold"           # or "serve": what to do when the served chain expires
    auth_port = 53                   # port the authoritative servers are asked on

    [lineage."mail.example.com"]
    endpoints = ["_25._tcp.mail.example.com"]
    policy = "hold"                  # or "warn": check and plan only, never hold
    reload = ["systemctl reload postfix"]
    served_dir = "/etc/dane-hook/served/mail.example.com"
    publish = "primary"              # dane-hook adds and retires its own records there
    retire_after = 7200              # seconds the old records stay after promotion (2 x TTL)
    adopt = true                     # the records in use at enrollment become dane-hook's
    issuer_records = true            # also publish 2 1 1 of every intermediate the CA may use
    probe = true                     # probe the endpoints after each promotion (default: when
                                     # an endpoint has an address of this host)
    rollback_on_probe_failure = true # a DANE sender would refuse: serve the previous chain

    [publisher.primary]              # see dane_hook/dns/publish: rfc2136, powerdns or exec
    type = "rfc2136"
    key_file = "/etc/dane-hook/tsig.key"

expiry_action "hold" is the default: an expired certificate still authenticates by DANE-EE
(RFC 7672 §3.1.1 ignores dates), and DANE-TA senders, PKIX and MTA-STS senders refuse it; a
chain that no published record authenticates fails every DANE sender. "serve" prefers the
PKIX/MTA-STS senders and gives up DANE delivery until the records are published.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dane_hook.dnsname import endpoint_name
from dane_hook.errors import BadInput, UsageError, shown
from dane_hook.storage import (
    DEFAULT_CERTBOT_DIR,
    DEFAULT_SERVED_DIR,
    DEFAULT_STATE_DIR,
    LineageNameError,
    check_lineage_name,
)

DEFAULT_CONFIG = Path("/etc/dane-hook/config.toml")
POLICIES = ("hold", "warn")
EXPIRY_ACTIONS = ("hold", "serve")


class ConfigError(BadInput):
    """The configuration file is wrong (exit 3: bad input)."""


@dataclass(frozen=True)
class LineageConfig:
    endpoints: tuple[str, ...] = ()
    policy: str = "hold"
    reload: tuple[str, ...] = ()
    served_dir: Path | None = None
    publish: str | None = None
    """The publisher (a [publisher.NAME] table) that adds and retires this lineage's records;
    None: dane-hook only prints the plan."""
    retire_after: int | None = None
    """Seconds the old chain's records stay published after the new chain is served; None:
    2 x the RRset's TTL (RFC 7671 §8.1: caches may still hold the old chain's RRset)."""
    adopt: bool = False
    """The records that authenticate the served chain become dane-hook's to retire."""
    issuer_records: bool = False
    """Publish the 2 1 1 of every active and backup intermediate of the CA for the key type."""
    probe: bool | None = None
    """Probe the endpoints after each promotion and reload; None: only the addresses of this
    host, when an endpoint has one (dane_hook.probe.report.is_this_host)."""
    rollback_on_probe_failure: bool = False
    """When the probe finds that a DANE sender would refuse: serve the previous chain again,
    reload, probe again, and exit non-zero; False: warn and exit non-zero."""


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    resolver: str | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    served_dir: Path = DEFAULT_SERVED_DIR
    certbot_dir: Path = DEFAULT_CERTBOT_DIR
    ports: tuple[int, ...] = (25,)
    strict: bool = False
    expiry_warn_days: int = 14
    expiry_action: str = "hold"
    auth_port: int | None = None
    lineages: Mapping[str, LineageConfig] = field(default_factory=dict)
    publishers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """[publisher.NAME] tables as written; dane_hook.dns.publish checks and builds them."""

    def lineage(self, name: str) -> LineageConfig:
        return self.lineages.get(name, LineageConfig())


_GLOBAL_KEYS = {
    "resolver",
    "state_dir",
    "served_dir",
    "certbot_dir",
    "ports",
    "strict",
    "expiry_warn_days",
    "expiry_action",
    "auth_port",
    "lineage",
    "publisher",
}
_LINEAGE_KEYS = {
    "endpoints",
    "policy",
    "reload",
    "served_dir",
    "publish",
    "retire_after",
    "adopt",
    "issuer_records",
    "probe",
    "rollback_on_probe_failure",
}


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: expected {expected}")

    def string(self, table: Mapping[str, Any], key: str, where: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}{key}", "a non-empty string")
        return value

    def strings(self, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{where}{key}", "a list of strings")
        return tuple(value)

    def choice(
        self, table: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: str
    ) -> str:
        value = table.get(key, default)
        if value not in choices:
            raise self.fail(f"{where}{key}", " or ".join(repr(c) for c in choices))
        return str(value)

    def flag(self, table: Mapping[str, Any], key: str, where: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(f"{where}{key}", "true or false")
        return value

    def seconds(self, table: Mapping[str, Any], key: str, where: str) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        # bool is an int in Python: `retire_after = true` must not mean one second.
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{where}{key}", "a number of seconds (0 or more)")
        return value

    def port(self, table: Mapping[str, Any], key: str, where: str) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        # bool is an int in Python: `auth_port = true` must not mean port 1.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise self.fail(f"{where}{key}", "a port number between 1 and 65535")
        return value

    def resolver(self, table: Mapping[str, Any], key: str) -> str | None:
        value = self.string(table, key, "")
        if value is not None and not resolver_syntax_ok(value):
            raise ConfigError(
                f'{self.path}: {key}: expected ADDR or ADDR:PORT, for example "127.0.0.1", '
                f'"127.0.0.1:5353" or "[::1]:53"; found {shown(value)}'
            )
        return value

    def endpoints(self, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        values = self.strings(table, key, where)
        for value in values:
            try:
                endpoint_name(value)
            except UsageError as exc:
                raise ConfigError(
                    f"{self.path}: {where}{key}: expected _PORT._tcp.HOST or HOST[:PORT]; {exc}"
                ) from exc
        return values

    def unknown(self, table: Mapping[str, Any], known: set[str], where: str) -> None:
        extra = sorted(set(table) - known)
        if extra:
            raise ConfigError(
                f"{self.path}: {where}{extra[0]}: unknown key",
                f"known keys: {', '.join(sorted(known))}",
            )


def resolver_syntax_ok(text: str) -> bool:
    """`ADDR`, `ADDR:PORT`, `IPV6` or `[IPV6]:PORT`, as dane_hook.dns.exchange.Resolver reads
    a resolver; checked here so that a wrong value fails when the file is read."""
    spec = text.strip()
    port: str | None = None
    if spec.startswith("["):
        host, closed, rest = spec[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return False
        port = rest[1:] if rest else None
    elif spec.count(":") == 1:
        host, port = spec.split(":")
    else:
        host = spec
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return port is None or (port.isascii() and port.isdigit() and 0 < int(port) < 65536)


def load_config(path: Path | str | None = None) -> Config:
    """The configuration: --config, else $DANE_HOOK_CONFIG, else /etc/dane-hook/config.toml.

    A missing default file means defaults; a missing file that was named is an error.
    """
    named = path or os.environ.get("DANE_HOOK_CONFIG")
    file = Path(named) if named else DEFAULT_CONFIG
    if not file.exists():
        if named:
            raise ConfigError(f"{file}: no such configuration file")
        return Config()
    if sys.version_info < (3, 11):
        raise ConfigError(f"{file}: reading TOML needs Python 3.11 or newer (tomllib)")
    # Imported by name: the package also runs on Python 3.10, where tomllib does not exist.
    tomllib = importlib.import_module("tomllib")

    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot be read ({exc.strerror})") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc})") from exc
    reader = _Reader(file)
    reader.unknown(document, _GLOBAL_KEYS, "")
    ports = document.get("ports", [25])
    if (
        not isinstance(ports, list)
        or not ports
        or not all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports)
    ):
        raise reader.fail("ports", "a list of port numbers, e.g. [25, 465]")
    strict = document.get("strict", False)
    if not isinstance(strict, bool):
        raise reader.fail("strict", "true or false")
    warn_days = document.get("expiry_warn_days", 14)
    if isinstance(warn_days, bool) or not isinstance(warn_days, int) or warn_days < 0:
        raise reader.fail("expiry_warn_days", "a number of days (0 or more)")
    auth_port = reader.port(document, "auth_port", "")
    publishers = document.get("publisher", {})
    if not isinstance(publishers, dict) or not all(
        isinstance(v, dict) for v in publishers.values()
    ):
        raise reader.fail("publisher", 'tables like [publisher.primary] with type = "rfc2136"')
    lineages: dict[str, LineageConfig] = {}
    tables = document.get("lineage", {})
    if not isinstance(tables, dict):
        raise reader.fail("lineage", 'tables like [lineage."mail.example.com"]')
    for name, table in tables.items():
        # The table's name as written, unless it may not be quoted (errors.shown).
        where = f'lineage."{name}".' if shown(name) == repr(name.strip()) else "lineage.(name)."
        try:
            check_lineage_name(name)  # joined into paths; certbot's rule (storage.py)
        except LineageNameError as exc:
            raise ConfigError(f"{file}: {where.rstrip('.')}: {exc}", exc.hint) from exc
        if not isinstance(table, dict):
            raise reader.fail(where.rstrip("."), "a table")
        reader.unknown(table, _LINEAGE_KEYS, where)
        served = reader.string(table, "served_dir", where)
        publish = reader.string(table, "publish", where)
        if publish is not None and publish not in publishers:
            raise reader.fail(f"{where}publish", f"the name of a [publisher.NAME] table in {file}")
        if reader.flag(table, "adopt", where) and publish is None:
            # Adopted records are retired by a publisher; without one nothing could retire them.
            raise reader.fail(f"{where}adopt", 'true only with publish = "NAME"')
        lineages[name] = LineageConfig(
            endpoints=reader.endpoints(table, "endpoints", where),
            policy=reader.choice(table, "policy", where, POLICIES, "hold"),
            reload=reader.strings(table, "reload", where),
            served_dir=Path(served) if served else None,
            publish=publish,
            retire_after=reader.seconds(table, "retire_after", where),
            adopt=reader.flag(table, "adopt", where),
            issuer_records=reader.flag(table, "issuer_records", where),
            probe=reader.flag(table, "probe", where) if "probe" in table else None,
            rollback_on_probe_failure=reader.flag(table, "rollback_on_probe_failure", where),
        )

    def directory(key: str, default: Path) -> Path:
        value = reader.string(document, key, "")
        return Path(value) if value else default

    return Config(
        path=file,
        resolver=reader.resolver(document, "resolver"),
        state_dir=directory("state_dir", DEFAULT_STATE_DIR),
        served_dir=directory("served_dir", DEFAULT_SERVED_DIR),
        certbot_dir=directory("certbot_dir", DEFAULT_CERTBOT_DIR),
        ports=tuple(ports),
        strict=strict,
        expiry_warn_days=warn_days,
        expiry_action=reader.choice(document, "expiry_action", "", EXPIRY_ACTIONS, "hold"),
        auth_port=auth_port,
        lineages=lineages,
        publishers=publishers,
    )
