"""Probe many addresses at once: bounded threads, one result per address, a budget per run.

Addresses are independent, so they are probed side by side (at most `MAX_WORKERS` at a time):
a domain with 3 MX hosts x 2 addresses x 2 ports takes about one exchange, not twelve. Each
address has its own deadline (`Limits.deadline`) and the run as a whole one more (`budget`),
so a probe that waited in the queue gets only the time the run has left.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dane_hook.probe.targets import Target
from dane_hook.probe.wire import Handshake, Limits, ProbeStatus, Protocol, handshake

MAX_WORKERS = 16
"""Connections open at the same time."""


@dataclass(frozen=True)
class AddressResult:
    """What one address presented on the wire."""

    host: str
    address: str
    port: int
    protocol: Protocol
    tlsa_owner: str
    status: ProbeStatus
    reason: str
    """One line: what happened, or what went wrong and where."""
    chain: tuple[bytes, ...] = ()
    """The presented certificates, DER, leaf first, as sent."""
    digests: tuple[str, ...] = ()
    """SHA-256 of each presented certificate's DER, hex, in the order of `chain`."""
    tls_version: str | None = None
    elapsed: float = 0.0
    secure: bool = True
    """The target's MX and address records were DNSSEC-validated (targets.Target.secure)."""

    @classmethod
    def of(cls, target: Target, outcome: Handshake) -> AddressResult:
        return cls(
            host=target.host,
            address=target.address,
            port=target.port,
            protocol=target.protocol,
            tlsa_owner=target.tlsa_owner,
            status=outcome.status,
            reason=outcome.reason,
            chain=outcome.chain,
            digests=tuple(hashlib.sha256(der).hexdigest() for der in outcome.chain),
            tls_version=outcome.tls_version,
            elapsed=outcome.elapsed,
            secure=target.secure,
        )

    @property
    def where(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.host} {address}:{self.port}"

    def line(self) -> str:
        """`HOST ADDRESS:PORT STATUS: reason`: the one line a report shows."""
        return f"{self.where} {self.status.value}: {self.reason}"


def probe_one(
    target: Target,
    *,
    limits: Limits | None = None,
    helo: str | None = None,
    deadline: float | None = None,
) -> AddressResult:
    """One target; never raises for anything the server does."""
    try:
        outcome = handshake(
            target.address,
            target.port,
            target.protocol,
            target.host,
            limits=limits,
            helo=helo,
            deadline=deadline,
        )
    except Exception as exc:  # a bug must still give its line, not end the run
        outcome = Handshake(ProbeStatus.PROTOCOL_ERROR, f"probe failed: {type(exc).__name__}")
    return AddressResult.of(target, outcome)


def probe_all(
    targets: Sequence[Target],
    *,
    limits: Limits | None = None,
    budget: float | None = None,
    workers: int = MAX_WORKERS,
    helo: str | None = None,
) -> tuple[AddressResult, ...]:
    """Every target, at most `workers` at a time; results in the order of `targets`.

    `budget`: seconds for the whole run (default: one address's deadline, as they run side
    by side); an address still waiting in the queue when it ends gets a timeout line.
    """
    if not targets:
        return ()
    chosen = limits or Limits()
    end = time.monotonic() + (budget if budget is not None else chosen.deadline)
    count = max(1, min(workers, len(targets)))
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="dane-hook-probe") as pool:
        return tuple(
            pool.map(lambda t: probe_one(t, limits=chosen, helo=helo, deadline=end), targets)
        )
