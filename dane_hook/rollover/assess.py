"""Chains given by hand, judged against what DNS securely publishes: `check` and `plan`.

Every endpoint is observed once however many candidates name it, then each candidate is
decided, and (where DANE-TA records are published) its CA's intermediates are checked for
coverage. The lineage commands judge one enrolled chain at a time through `promotion.judge`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dane_hook.certs.chain import ServedChain
from dane_hook.rollover.decision import Decision, Publication, decide
from dane_hook.rollover.observe import Observation, Settings, endpoints_of, host_of, observe
from dane_hook.rollover.plan import Plan, make_plan
from dane_hook.rollover.state import StateStore
from dane_hook.tlsa.record import Usage

if TYPE_CHECKING:  # the catalog is imported only when DANE-TA records are published
    from dane_hook.catalog import Catalog
    from dane_hook.catalog.coverage import Coverage

MAX_PROCESSES = 4
"""Lookup worker processes of a large check; several cores help only thousands of answers."""


@dataclass(frozen=True)
class Candidate:
    label: str
    """How the candidate is named in the output: its file, or the lineage directory's name."""
    chain: ServedChain


@dataclass(frozen=True)
class CheckRequest:
    candidates: tuple[Candidate, ...]
    current: ServedChain | None
    """The chain served now: its records count as in use."""
    endpoints: tuple[str, ...]
    """Endpoints named explicitly; none means every DNS name of each leaf at `ports`."""
    ports: tuple[int, ...]
    settings: Settings
    state_dir: Path
    strict: bool = False
    """An incomplete RRset (RFC 7671 §8) counts as unsafe."""


@dataclass(frozen=True)
class Checked:
    candidate: Candidate
    decision: Decision
    observations: tuple[Observation, ...]
    coverage: dict[str, Coverage]
    """Endpoint -> how its DANE-TA records cover the CA's intermediates (secure ones only)."""


@dataclass(frozen=True)
class CheckResult:
    checked: tuple[Checked, ...]
    warnings: tuple[str, ...]


def coverage_by_endpoint(
    chain: ServedChain, observations: Sequence[Observation], catalog: Catalog, now: datetime
) -> dict[str, Coverage]:
    """Per securely published endpoint: do its 2 x x records cover every intermediate the
    chain's CA may issue the next certificate from?"""
    from dane_hook.catalog.coverage import coverage_of, issuers_for

    issuers = issuers_for(chain, catalog, now)
    return {
        o.endpoint: coverage_of(o.endpoint, issuers, o.published.records, catalog)
        for o in observations
        if o.published.status is Publication.SECURE
    }


def check_chains(request: CheckRequest, now: datetime) -> CheckResult:
    """Observe every endpoint of every candidate once (first-seen times kept in the state
    directory), then decide for each candidate."""
    ports = request.ports or (25,)
    wanted = {c.label: endpoints_of(c.chain, request.endpoints, ports) for c in request.candidates}
    every = list(dict.fromkeys(e for endpoints in wanted.values() for e in endpoints))
    with StateStore(request.state_dir).locked(now) as state:
        processes = min(os.cpu_count() or 1, MAX_PROCESSES)
        observed = {
            o.endpoint: o for o in observe(every, request.settings, state, now, processes=processes)
        }
        warnings = list(state.warnings)
    # The CA catalog only matters where DANE-TA records are published; loading it costs more
    # than a whole lookup, so a check of DANE-EE-only endpoints does not pay for it.
    catalog = None
    if any(
        o.published.status is Publication.SECURE
        and any(r.usage == Usage.DANE_TA for r in o.published.records)
        for o in observed.values()
    ):
        from dane_hook.catalog import load_catalog

        catalog = load_catalog(request.state_dir, now)
        warnings += catalog.warnings
    checked = []
    for candidate in request.candidates:
        observations = tuple(observed[e] for e in wanted[candidate.label])
        decision = decide(
            candidate.chain,
            request.current,
            [o.published for o in observations],
            now,
            strict=request.strict,
            host_of={o.endpoint: host_of(o.endpoint) for o in observations},
        )
        coverage = (
            coverage_by_endpoint(candidate.chain, observations, catalog, now) if catalog else {}
        )
        checked.append(Checked(candidate, decision, observations, coverage))
    return CheckResult(tuple(checked), tuple(warnings))


def plan_chains(request: CheckRequest, now: datetime) -> tuple[CheckResult, list[Plan]]:
    """`check_chains`, and for each candidate the three-step plan (RFC 7671 §8.1)."""
    result = check_chains(request, now)
    plans = []
    for c in result.checked:
        # The name a DANE-TA match must cover is the endpoint's host (RFC 7672 §3.2.3).
        hosts = {o.endpoint: host_of(o.endpoint) for o in c.observations}
        plans.append(
            make_plan(
                c.candidate.chain,
                [],
                [o.published for o in c.observations],
                c.decision,
                now,
                host_of=hosts,
                coverage=c.coverage,
                current=request.current,
            )
        )
    return result, plans
