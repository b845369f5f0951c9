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

from dane_hook.certs.chain import ServedChain, build_chain
from dane_hook.config import Config
from dane_hook.errors import Error
from dane_hook.rollover.decision import Decision, Publication, decide, same_chain
from dane_hook.rollover.ledger import load_ledger
from dane_hook.rollover.observe import Observation, Settings, endpoints_of, host_of, observe
from dane_hook.rollover.plan import InUse, Plan, make_plan
from dane_hook.rollover.promotion import candidate_dir, explicit_endpoints
from dane_hook.rollover.served_view import ServedView
from dane_hook.rollover.state import State, StateStore
from dane_hook.sources.files import load_certificates
from dane_hook.tlsa.record import TLSARecord, Usage

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
    # A question: it keeps first-seen times where it can, answers without them otherwise.
    with StateStore(request.state_dir).for_question(now) as state:
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


@dataclass(frozen=True)
class EnrolledInUse:
    """What an enrolled lineage has in use at its endpoints: whatever chain a plan is made
    for, the records of these stay (issue 15, 8b: removing the staged next key's 3 1 1 breaks
    the renewal that uses it)."""

    name: str
    source: str
    """"certbot" or "acme.sh"."""
    endpoints: tuple[str, ...]
    served: ServedChain | None
    held: ServedChain | None
    next_key: TLSARecord | None
    """The 3 1 1 of the key acme.sh staged for the next issuance (current + next)."""
    problems: tuple[str, ...] = ()
    """Why a served or held chain could not be read (then its records may be listed for
    removal): one line each, for the caller to show."""


def _public_chain(fullchain: Path) -> ServedChain:
    """The chain of a served or held version from its fullchain.pem alone: which records are
    in use needs no private key, so a plan by a user who may not read keys still counts it."""
    return build_chain(load_certificates(fullchain), source=str(fullchain))


def enrolled_in_use(config: Config, state: State) -> list[EnrolledInUse]:
    """Every enrolled lineage's served chain, held chain and staged next key, read from the
    served views, the held copies and the ledger; a copy that cannot be read counts as none."""
    if not state.enrolled:
        return []
    # An unreadable ledger is an error (exit 3), not "no staged key": a guess here would
    # propose removing the record the next renewal needs.
    next_keys = load_ledger(config.state_dir).next_keys
    found = []
    for name, enrollment in sorted(state.enrolled.items()):
        served = held = None
        problems = []
        view = ServedView(Path(enrollment.served_dir))
        try:
            version = view.current
            if version is not None:
                served = _public_chain(view.version_path(version, "fullchain.pem"))
        except (Error, OSError) as exc:
            problems.append(f"{name}: the served chain is not counted as in use: {exc}")
        if name in state.held:
            folder = candidate_dir(config, name) / state.held[name].version
            try:
                held = _public_chain(folder / "fullchain.pem")
            except Error as exc:
                problems.append(f"{name}: the held chain is not counted as in use: {exc}")
        explicit = explicit_endpoints(config, name, enrollment)
        endpoints = [
            e
            for c in (served, held)
            if c is not None
            for e in endpoints_of(c, explicit, config.ports)
        ]
        staged = next_keys.get(name)
        found.append(
            EnrolledInUse(
                name,
                enrollment.source,
                tuple(dict.fromkeys(endpoints)),
                served,
                held,
                TLSARecord.from_text(staged) if staged else None,
                tuple(problems),
            )
        )
    return found


def in_use_at(
    candidate: ServedChain,
    endpoints: Sequence[str],
    lineages: Sequence[EnrolledInUse],
    *,
    replacing: str | None = None,
) -> dict[str, InUse]:
    """Per endpoint, what the enrolled lineages there have in use besides `candidate`.

    The served chain of the lineage the candidate replaces does not count: `replacing` names
    it (a renewal judged by the hooks; it replaces a held chain too), and a candidate that is a
    lineage's held chain replaces that lineage's. Step 3 of such a plan removes the records of
    the chain replaced once the candidate is served (RFC 7671 §8.1); the staged next key stays.
    """
    found: dict[str, InUse] = {}
    for endpoint in endpoints:
        chains: list[ServedChain] = []
        records: list[TLSARecord] = []
        for lineage in lineages:
            if endpoint not in lineage.endpoints:
                continue
            renewed = lineage.name == replacing  # a newer renewal replaces a held one too
            promoting_held = same_chain(candidate, lineage.held)
            if lineage.served is not None and not renewed and not promoting_held:
                chains.append(lineage.served)
            if lineage.held is not None and not renewed:
                chains.append(lineage.held)
            if lineage.next_key is not None:
                records.append(lineage.next_key)
        if chains or records:
            found[endpoint] = InUse(tuple(chains), tuple(dict.fromkeys(records)))
    return found


def plan_chains(
    request: CheckRequest, now: datetime, lineages: Sequence[EnrolledInUse] = ()
) -> tuple[CheckResult, list[Plan]]:
    """`check_chains`, and for each candidate the three-step plan (RFC 7671 §8.1); what the
    enrolled `lineages` serve, hold or have staged at an endpoint is never proposed for removal."""
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
                in_use=in_use_at(c.candidate.chain, list(hosts), lineages),
            )
        )
    return result, plans
