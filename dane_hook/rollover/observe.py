"""What the world publishes for each endpoint: a validated lookup, every authoritative server,
and the first-seen times kept in the state store, joined into the decision's `Published`."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from dane_hook.certs.chain import ServedChain
from dane_hook.certs.names import dns_names
from dane_hook.dns.lookup import (
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    AuthoritativeView,
    Authorities,
    Resolver,
    Status,
    TLSAAnswer,
    lookup_tlsa,
)
from dane_hook.errors import LookupFailure
from dane_hook.rollover.decision import Publication, Published
from dane_hook.rollover.state import State
from dane_hook.tlsa.record import endpoint_name, owner_name

_PUBLICATION = {
    Status.SECURE: Publication.SECURE,
    Status.INSECURE: Publication.INSECURE,
    Status.NO_DANE: Publication.NO_DANE,
    Status.BOGUS: Publication.BOGUS,
    Status.TIMEOUT: Publication.FAILED,
    Status.FAILED: Publication.FAILED,
}

# Lookups are I/O bound: a few dozen in flight keep a local resolver busy without flooding it.
MAX_PARALLEL_LOOKUPS = 32
MIN_ENDPOINTS_PER_PROCESS = 200
"""Below this a worker process costs more than it saves."""


@dataclass(frozen=True)
class Settings:
    resolver: Resolver
    timeout: float = DEFAULT_TIMEOUT
    tries: int = DEFAULT_TRIES
    auth_port: int | None = None
    """Port the authoritative servers are asked on (53; another only in test setups)."""


@dataclass(frozen=True)
class Observation:
    """One endpoint as observed now: the decision's input and what explains it."""

    published: Published
    answer: TLSAAnswer
    view: AuthoritativeView | None
    view_error: str | None = None

    @property
    def endpoint(self) -> str:
        return self.published.endpoint


def parse_endpoint(text: str, default_port: int = 25) -> str:
    """`_25._tcp.mx.example.com`, or `mx.example.com[:PORT]` (TCP), as a TLSA owner name."""
    return endpoint_name(text, default_port)


def host_of(endpoint: str) -> str:
    """The host of `_PORT._PROTO.HOST.`, the name a DANE-TA match must cover."""
    labels = endpoint.rstrip(".").split(".")
    return ".".join(labels[2:]) if len(labels) > 2 and labels[0].startswith("_") else endpoint


def endpoints_of(chain: ServedChain, explicit: Sequence[str], ports: Sequence[int]) -> list[str]:
    """The endpoints to check: those given, else each DNS name of the leaf at each port."""
    if explicit:
        return list(dict.fromkeys(parse_endpoint(e) for e in explicit))
    names = [n for n in dns_names(chain.leaf) if not n.startswith("*.")]
    return list(dict.fromkeys(owner_name(n, port) for n in names for port in ports))


def _look(
    endpoint: str, settings: Settings, authorities: Authorities
) -> tuple[TLSAAnswer, AuthoritativeView | None, str | None]:
    answer = lookup_tlsa(
        endpoint, settings.resolver, timeout=settings.timeout, tries=settings.tries
    )
    if answer.status is not Status.SECURE:
        return answer, None, None
    try:
        view = authorities.view(answer.target, answer.zone)
    except LookupFailure as exc:
        return answer, None, exc.diagnostics()
    return answer, view, None


_Looked = tuple[TLSAAnswer, AuthoritativeView | None, str | None]


def look_all(endpoints: Sequence[str], settings: Settings) -> list[_Looked]:
    """Every endpoint's answer and authoritative view, looked up by threads of this process."""
    workers = max(1, min(MAX_PARALLEL_LOOKUPS, len(endpoints)))
    # One per run: the endpoints of a zone share its name servers, asked for once.
    authorities = Authorities(
        settings.resolver,
        auth_port=settings.auth_port,
        timeout=settings.timeout,
        tries=settings.tries,
    )
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda e: _look(e, settings, authorities), endpoints))


def _look_in_processes(
    endpoints: Sequence[str], settings: Settings, processes: int
) -> list[_Looked]:
    """The lookups split over `processes` forked workers, each with its threads.

    Parsing answers is CPU work that one Python process does on one core at a time; a large
    check has thousands. Workers are forked before this process starts any thread, and they
    only look up and return what they found: the state store stays with this process.
    """
    size = -(-len(endpoints) // processes)
    chunks = [list(endpoints[i : i + size]) for i in range(0, len(endpoints), size)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(chunks), mp_context=context) as pool:
        parts = list(pool.map(look_all, chunks, [settings] * len(chunks)))
    return [looked for part in parts for looked in part]


def observe(
    endpoints: Sequence[str],
    settings: Settings,
    state: State,
    now: datetime,
    *,
    processes: int = 1,
) -> list[Observation]:
    """Look every endpoint up (concurrently) and update the first-seen times in `state`.

    `processes` > 1 spreads a large set of endpoints over that many worker processes.
    """
    if processes > 1 and len(endpoints) >= MIN_ENDPOINTS_PER_PROCESS * 2:
        looked = _look_in_processes(endpoints, settings, processes)
    else:
        looked = look_all(endpoints, settings)
    observations: list[Observation] = []
    for endpoint, (answer, view, view_error) in zip(endpoints, looked, strict=True):
        first_seen = {}
        if view is not None:
            # RFC 7671 §8.1: the 2 x TTL clock starts when every authoritative server serves
            # the record, so only those are recorded as seen.
            first_seen = state.observe(endpoint, view.published, now)
        elif answer.status is Status.SECURE:
            # The servers could not be asked: keep what earlier runs saw, start no new clock.
            known = state.known(endpoint)
            first_seen = {r: t for r, t in known.items() if r in answer.records}
        ttls = [answer.signed_ttl, answer.ttl]
        if view is not None:
            ttls += [s.ttl for s in view.servers]
        ttl = max((t for t in ttls if t is not None), default=0)
        reason = answer.reason
        published = Published(
            endpoint,
            _PUBLICATION[answer.status],
            answer.records,
            ttl,
            first_seen,
            reason,
        )
        observations.append(Observation(published, answer, view, view_error))
    return observations
