"""acme.sh's hooks: judge the coming issuance (--pre-hook), serve or hold what it installed
(--reloadcmd).

acme.sh 3.1.x (acme.sh, _on_before_issue): a pre-hook that exits non-zero aborts the issuance
("Error occurred when running pre hook", then _on_issue_err), before any key is made or order
placed; the cron job tries again at its next run. So the pre-hook can refuse a renewal outright.

acme.sh 3.1.4 (acme.sh, _installcert): the reloadcmd runs after acme.sh copied the new files to
their install paths, without a backup on renewal; a failing reload command is only logged
("Reload error for: DOMAIN") and nothing runs it again later. So the wrapper owns the files
services read (the served view), promotes or holds there, and runs the wrapped command only for
a chain it serves; `dane-hook release` runs it when a held chain is promoted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from dane_hook.catalog import load_catalog
from dane_hook.catalog.coverage import Coverage
from dane_hook.certs.chain import ServedChain, build_chain
from dane_hook.certs.keys import PublicKey
from dane_hook.config import Config
from dane_hook.errors import BadInput, Error
from dane_hook.rollover.assess import coverage_by_endpoint, enrolled_in_use, in_use_at
from dane_hook.rollover.decision import SERVABLE, SEVERITY, Decision, Verdict
from dane_hook.rollover.ledger import load_ledger
from dane_hook.rollover.lineages import served_dir_of
from dane_hook.rollover.observe import parse_endpoint
from dane_hook.rollover.plan import Plan, make_plan
from dane_hook.rollover.promotion import (
    Action,
    Context,
    Outcome,
    ReloadResult,
    chain_of,
    consider,
    explicit_endpoints,
    judge,
    run_reloads,
)
from dane_hook.rollover.publishing import PublishReport, publish_due, remember_next_key
from dane_hook.rollover.served_view import ChainFiles, ServedView
from dane_hook.rollover.state import Enrollment, State
from dane_hook.sources import acmesh
from dane_hook.sources.files import load_certificates, load_public_key
from dane_hook.tlsa.generate import certificate_record
from dane_hook.tlsa.record import Selector, Usage

# -- pre ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issuance:
    """The pre-hook's answer for the coming issuance of one acme.sh domain."""

    name: str
    coming: acmesh.ComingKey
    decision: Decision
    plan: Plan


def is_first_issuance(folder: acmesh.DomainFolder) -> bool:
    """acme.sh makes the key after the pre-hook of a first --issue: nothing to check yet."""
    return folder.first_issuance(folder.read_conf())


def judge_issuance(
    folder: acmesh.DomainFolder,
    environment: Mapping[str, str],
    explicit: Sequence[str],
    context: Context,
    state: State,
) -> Issuance:
    """May acme.sh issue now? The coming key (the domain key, or the staged next one) must be
    authenticated by records published long enough, or by 2 x x records covering every
    intermediate the CA may issue from. The caller holds the state lock."""
    conf = folder.read_conf()
    config, now = context.config, context.now
    force_new_key = acmesh.is_set(environment.get("Le_ForceNewDomainKey")) or acmesh.is_set(
        conf.get("Le_ForceNewDomainKey")
    )
    coming = acmesh.coming_key(folder, force_new_key)
    latest = _latest_chain(folder)
    domain = environment.get("Le_Domain") or conf.get("Le_Domain") or folder.name
    alt = environment.get("Le_Alt") if "Le_Domain" in environment else conf.get("Le_Alt")
    # Unknown key (acme.sh makes it at issuance): a throwaway one, which no record matches.
    key = coming.key or _throwaway_key()
    candidate = acmesh.prospective_chain(latest, key, acmesh.names_of(domain, alt), now)
    current = _served_chain(config, state, folder.name) or latest
    enrollment = state.enrolled.get(folder.name)
    endpoints = explicit_endpoints(config, folder.name, enrollment, explicit)
    judged = judge(candidate, current, endpoints, context, state)
    catalog = load_catalog(config.state_dir, now)
    coverage = coverage_by_endpoint(candidate, judged.observations, catalog, now)
    decision = _require_catalog_coverage(judged.decision, coverage)
    # What other lineages at these endpoints serve or hold, and the staged next key, stay.
    in_use = in_use_at(
        candidate, list(judged.hosts), enrolled_in_use(config, state), replacing=folder.name
    )
    plan = _plan_before_issuance(
        make_plan(
            candidate,
            [],
            judged.published,
            decision,
            now,
            host_of=judged.hosts,
            current=current,
            in_use=in_use,
        ),
        candidate,
        known=coming.key is not None,
    )
    return Issuance(folder.name, coming, decision, _add_coverage(plan, coverage))


def _require_catalog_coverage(decision: Decision, coverage: dict[str, Coverage]) -> Decision:
    """An issuance let through by DANE-TA records alone must be covered whatever intermediate
    the CA picks: it issues from several at random and may switch to a backup unannounced."""
    endpoints = []
    for d in decision.endpoints:
        cover = coverage.get(d.endpoint)
        by = d.match.by if d.match is not None else None
        relies_on_ta = by is not None and by.usage == Usage.DANE_TA
        if (
            d.verdict in SERVABLE
            and relies_on_ta
            and cover is not None
            and cover.issuers.checkable
            and not cover.covered
        ):
            notes = "; ".join(cover.notes()[:3])
            d = replace(d, verdict=Verdict.UNSAFE, reason=f"{cover.summary()} ({notes})")
        endpoints.append(d)
    worst = (
        max(endpoints, key=lambda e: SEVERITY[e.verdict]).verdict if endpoints else decision.verdict
    )
    return replace(decision, verdict=worst, endpoints=tuple(endpoints))


def _add_coverage(plan: Plan, coverage: dict[str, Coverage]) -> Plan:
    """Step 1 also publishes the issuer records of the CA's other intermediates."""
    endpoints = []
    for endpoint in plan.endpoints:
        cover = coverage.get(endpoint.endpoint)
        extra = [r for r in (cover.to_add if cover else ()) if r not in endpoint.add]
        endpoints.append(replace(endpoint, add=(*endpoint.add, *extra)))
    return replace(plan, endpoints=tuple(endpoints))


def _latest_chain(folder: acmesh.DomainFolder) -> ServedChain | None:
    """The chain acme.sh issued last (fullchain.cer), None before the first issuance."""
    if not folder.fullchain.is_file():
        return None
    certificates = load_certificates(folder.fullchain)
    try:
        key = load_public_key(folder.key) if folder.key.is_file() else None
    except Error:
        key = None
    try:
        return build_chain(certificates, key, source=str(folder.fullchain))
    except Error:
        return build_chain(certificates, source=str(folder.fullchain))


def _served_chain(config: Config, state: State, name: str) -> ServedChain | None:
    """What dane-hook serves for this domain, when it owns a served view for it."""
    enrollment = state.enrolled.get(name)
    served = Path(enrollment.served_dir) if enrollment else served_dir_of(config, name)
    view = ServedView(served)
    if not view.exists():
        return None
    return chain_of(view.read_current(), f"served {name}")


def _throwaway_key() -> PublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


def _plan_before_issuance(plan: Plan, candidate: ServedChain, *, known: bool) -> Plan:
    """The plan for a certificate that does not exist yet: its key is all that can be
    published ahead (3 1 x), never its certificate (3 0 x); when even the key is unknown, only
    the issuer's 2 1 1 can cover it."""
    endpoints = []
    for endpoint in plan.endpoints:
        add = [
            r
            for r in endpoint.add
            if r.usage != Usage.DANE_EE or (known and r.selector == Selector.SPKI)
        ]
        if not known and candidate.issuers:
            issuer = certificate_record(candidate.issuers[0], 2, 1, 1)
            if issuer not in add and issuer not in endpoint.keep:
                add.append(issuer)
        endpoints.append(replace(endpoint, add=tuple(add)))
    return replace(plan, endpoints=tuple(endpoints))


# -- reload ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """What the reload wrapper did with the files acme.sh installed."""

    outcome: Outcome
    staged: PublicKey | None
    """The next key acme.sh staged (current + next), if any."""
    staged_error: str | None
    reloads: tuple[ReloadResult, ...]
    """The wrapped command's runs: at promotion, or again for a chain already served."""
    returncode: int | None
    """The wrapped command's status; None when it did not run (held, or no command)."""
    publication: PublishReport | None = None
    """With a publisher: the held chain's records, or the staged next key's 3 1 1 once served."""


def serve_installed(
    installed: acmesh.Installed,
    command: tuple[str, ...],
    *,
    served: str | None,
    endpoints: Sequence[str],
    context: Context,
    state: State,
) -> Installed:
    """acme.sh's --reloadcmd: promote the installed chain (and run the command) or hold it.
    The caller holds the state lock."""
    files = ChainFiles(*installed.read())
    name = installed.domain
    # Refuse files that do not fit together before anything changes.
    chain = chain_of(files, f"CERT_FULLCHAIN_PATH={installed.fullchain}")
    if load_certificates(installed.cert)[0] != chain.leaf:
        raise BadInput(
            f"CERT_PATH={installed.cert} is not the leaf of CERT_FULLCHAIN_PATH",
            "check acme.sh's domain folder",
        )
    staged, staged_error = _staged(installed)
    enrollment = _enroll(context.config, state, name, served, endpoints, command)
    outcome = consider(
        name,
        files,
        enrollment=enrollment,
        context=context,
        state=state,
        extra_reload=[command] if command else [],
    )
    report = None
    if outcome.action != Action.CHECKED:
        # current + next: the staged key's 3 1 1 goes out while this chain is served, so the
        # next renewal finds it 2 x TTL old already (RFC 7671 §8.1).
        ledger = load_ledger(context.config.state_dir)
        if staged_error is None:
            remember_next_key(ledger, name, staged)
        report = publish_due(name, context=context, state=state, ledger=ledger)
    if outcome.action == Action.HELD or not command:
        return Installed(outcome, staged, staged_error, (), None, report)
    if outcome.action == Action.PROMOTED:
        ran = tuple(r for r in outcome.reloads if r.command == command)
        return Installed(outcome, staged, staged_error, (), ran[0].returncode, report)
    # Already served, or warn mode: the service may still run the old chain (the same files
    # may come again after a failed reload), so reload it.
    results = run_reloads([command])
    return Installed(outcome, staged, staged_error, results, results[0].returncode, report)


def _enroll(
    config: Config,
    state: State,
    name: str,
    served_dir: str | None,
    given_endpoints: Sequence[str],
    command: tuple[str, ...],
) -> Enrollment:
    """The domain's enrollment, made on first use and kept up to date with the hook's options."""
    existing = state.enrolled.get(name)
    if served_dir:
        served = Path(served_dir)
    elif existing is not None:
        served = Path(existing.served_dir)
    else:
        served = served_dir_of(config, name)
    endpoints = tuple(parse_endpoint(e) for e in given_endpoints) or (
        existing.endpoints if existing else ()
    )
    reload = (command,) if command else (existing.reload if existing else ())
    enrollment = Enrollment("acme.sh", str(served), endpoints, reload)
    if enrollment != existing:
        state.enrolled[name] = enrollment
    return enrollment


def _staged(installed: acmesh.Installed) -> tuple[PublicKey | None, str | None]:
    try:
        return acmesh.staged_key(installed.next_key), None
    except Error as exc:
        return None, exc.diagnostics()
