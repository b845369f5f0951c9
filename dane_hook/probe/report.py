"""A probe run as one result: each address's verdict, the lookups that found nothing, the JSON.

This joins the stages of the probe (targets -> run -> verdict) for the callers that want "probe
these endpoints" or "probe this domain": the `probe` command, `check --probe`, `status --probe`
and the probe after a promotion. Whether the presented chain is the one in the served view is
answered here too, from the served view's fullchain: a service still pointed at the ACME
client's own copies, or not reloaded, presents another chain than the one dane-hook serves.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dane_hook.dns.exchange import DEFAULT_TIMEOUT, DEFAULT_TRIES, Resolver
from dane_hook.exitcodes import ExitCode, worst_exit
from dane_hook.probe.run import MAX_WORKERS, probe_all
from dane_hook.probe.targets import Target, TargetSet, domain_targets, endpoint_targets
from dane_hook.probe.verdict import AddressVerdict, Verdict, judge_all
from dane_hook.probe.wire import Limits, ProbeStatus, Protocol

SCHEMA_VERSION = 1
"""Of the probe document (dane_hook/render/schemas/probe.schema.json)."""

_EXIT_FOR_VERDICT = {
    Verdict.AUTHENTICATED: ExitCode.OK,
    Verdict.NO_DANE: ExitCode.OK,
    Verdict.INSECURE: ExitCode.OK,
    Verdict.NOT_AUTHENTICATED: ExitCode.UNSAFE,
    Verdict.NO_CHAIN: ExitCode.UNSAFE,
    Verdict.BOGUS: ExitCode.UNKNOWN,
    Verdict.UNKNOWN: ExitCode.UNKNOWN,
}


def exit_of_verdict(verdict: AddressVerdict) -> ExitCode:
    """1 where a DANE sender refuses, 4 where nothing can be said (bogus, no answer), else 0."""
    if verdict.verdict is Verdict.UNUSABLE:
        # RFC 7672 §2.2: unusable records still make TLS mandatory.
        return ExitCode.UNSAFE if verdict.sender_refuses else ExitCode.OK
    return _EXIT_FOR_VERDICT[verdict.verdict]


@dataclass(frozen=True)
class ProbeReport:
    """Every probed address's verdict, and one line per lookup that gave no address."""

    verdicts: tuple[AddressVerdict, ...]
    problems: tuple[str, ...] = ()
    served: tuple[bytes, ...] | None = field(default=None, repr=False)
    """The served view's fullchain, DER, leaf first; None when there is no served view."""

    def in_served_view(self, verdict: AddressVerdict) -> bool | None:
        """Whether the address presented exactly the served view's chain; None: no view or
        no chain."""
        if self.served is None or not verdict.result.chain:
            return None
        return verdict.result.chain == self.served

    @property
    def refusing(self) -> tuple[AddressVerdict, ...]:
        """The addresses a DANE sender would not deliver to now."""
        return tuple(v for v in self.verdicts if v.sender_refuses is True)

    @property
    def refuses(self) -> bool:
        return bool(self.refusing)

    def exit_code(self) -> ExitCode:
        """The worst address: unsafe over unknown over ok; a lookup problem is unknown."""
        codes = [exit_of_verdict(v) for v in self.verdicts]
        if self.problems:
            codes.append(ExitCode.UNKNOWN)
        return worst_exit(codes)

    def line_of(self, verdict: AddressVerdict) -> str:
        """One line per address: verdict and reason, what was presented, served or not."""
        parts = [verdict.line()]
        result = verdict.result
        if result.status is ProbeStatus.OK:
            parts.append(f"presented {len(result.chain)} ({result.reason})")
            served = self.in_served_view(verdict)
            if served is not None:
                parts.append("the served chain" if served else "NOT the served chain")
        elif verdict.verdict is not Verdict.NO_CHAIN:
            parts.append(f"{result.status.value}: {result.reason}")
        return "; ".join(parts)

    def lines(self) -> list[str]:
        return [self.line_of(v) for v in self.verdicts] + list(self.problems)

    def reason(self) -> str:
        """Why a DANE sender would refuse: the first refusing address, and how many more."""
        refusing = self.refusing
        if not refusing:
            return "no DANE sender would refuse"
        more = f" (and {len(refusing) - 1} more)" if len(refusing) > 1 else ""
        return f"{refusing[0].line()}{more}"

    def address_json(self, verdict: AddressVerdict) -> dict[str, Any]:
        result = verdict.result
        return {
            "host": result.host,
            "address": result.address,
            "port": result.port,
            "protocol": result.protocol.value,
            "tlsa_owner": result.tlsa_owner,
            "status": result.status.value,
            "status_reason": result.reason,
            "verdict": verdict.verdict.value,
            "reason": verdict.reason,
            "sender_refuses": verdict.sender_refuses,
            "matched": verdict.matched,
            "depth": verdict.depth,
            "digests": list(result.digests),
            "tls_version": result.tls_version,
            "in_served_view": self.in_served_view(verdict),
            "elapsed": result.elapsed,
        }

    def to_json(self) -> dict[str, Any]:
        """The fields `probe`, `check --probe` and `status --probe` print (probe.schema.json)."""
        return {
            "exit_status": int(self.exit_code()),
            "refuses": self.refuses,
            "addresses": [self.address_json(v) for v in self.verdicts],
            "problems": list(self.problems),
        }

    def document(self, now: datetime) -> dict[str, Any]:
        """The `probe --format json` document."""
        return {"schema_version": SCHEMA_VERSION, "now": now.isoformat(), **self.to_json()}


@dataclass(frozen=True)
class ProbeSettings:
    """How to look up and how long to wait."""

    resolver: Resolver
    timeout: float = DEFAULT_TIMEOUT
    tries: int = DEFAULT_TRIES
    limits: Limits = field(default_factory=Limits)
    budget: float | None = None
    """Seconds for all handshakes of a run (default: one address's deadline)."""
    protocols: Mapping[int, Protocol] | None = None


def _merge(found: Sequence[TargetSet]) -> TargetSet:
    targets = dict.fromkeys(t for s in found for t in s.targets)
    problems = dict.fromkeys(p for s in found for p in s.problems)
    return TargetSet(tuple(targets), tuple(problems))


def targets_of_endpoints(endpoints: Sequence[str], settings: ProbeSettings) -> TargetSet:
    """The addresses of each TLSA endpoint, the endpoints looked up side by side."""
    if not endpoints:
        return TargetSet(())
    workers = max(1, min(MAX_WORKERS, len(endpoints)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(
            pool.map(
                lambda e: endpoint_targets(
                    e,
                    settings.resolver,
                    protocols=settings.protocols,
                    timeout=settings.timeout,
                    tries=settings.tries,
                ),
                endpoints,
            )
        )
    return _merge(found)


def targets_of_domain(domain: str, ports: Sequence[int], settings: ProbeSettings) -> TargetSet:
    return domain_targets(
        domain,
        settings.resolver,
        ports,
        protocols=settings.protocols,
        timeout=settings.timeout,
        tries=settings.tries,
    )


def probe_targets(
    found: TargetSet,
    settings: ProbeSettings,
    *,
    served: tuple[bytes, ...] | None = None,
    now: datetime | None = None,
) -> ProbeReport:
    """Handshake with every target (bounded threads, one budget), then judge each."""
    results = probe_all(found.targets, limits=settings.limits, budget=settings.budget)
    verdicts = judge_all(
        results, settings.resolver, timeout=settings.timeout, tries=settings.tries, now=now
    )
    return ProbeReport(verdicts, found.problems, served)


def probe_endpoints(
    endpoints: Sequence[str],
    settings: ProbeSettings,
    *,
    served: tuple[bytes, ...] | None = None,
    now: datetime | None = None,
) -> ProbeReport:
    """Every address of every endpoint (`_25._tcp.mx.example.com.`), probed and judged."""
    return probe_targets(
        targets_of_endpoints(endpoints, settings), settings, served=served, now=now
    )


def is_this_host(address: str) -> bool:
    """Whether `address` is assigned to this host (and not loopback).

    Binding a socket to an address succeeds only for a local one (bind(2), EADDRNOTAVAIL).
    Loopback does not count: a sender never delivers to an MX on 127.0.0.0/8 or ::1 (Postfix
    bounces it as "mail for X loops back to myself"), so only a real listener is probed by
    default; tests and odd set-ups say `probe = true`.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback or ip.is_unspecified or ip.is_multicast:
        return False
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
    except OSError:
        return False
    return True


def local_targets(found: TargetSet) -> TargetSet:
    """Only the targets at an address of this host."""
    return TargetSet(tuple(t for t in found.targets if is_this_host(t.address)), found.problems)


def served_ders(fullchain: bytes, source: str = "fullchain.pem") -> tuple[bytes, ...]:
    """The DER certificates of a served fullchain.pem, in file order (BadInput if none)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from dane_hook.sources.files import parse_certificates

    return tuple(c.public_bytes(Encoding.DER) for c in parse_certificates(fullchain, source))


__all__ = [
    "ProbeReport",
    "ProbeSettings",
    "Target",
    "exit_of_verdict",
    "is_this_host",
    "local_targets",
    "probe_endpoints",
    "probe_targets",
    "served_ders",
    "targets_of_domain",
    "targets_of_endpoints",
]
