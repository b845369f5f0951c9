"""Enrolled lineages as the hooks, the timer and people ask about them.

One function per question: enroll a certbot lineage, deploy a renewed one, roll one back, the
preflight before certbot's renewals, and the status of each lineage. Every function takes the
state (the caller holds its lock) and returns a typed result; nothing here prints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from dane_hook.certs.chain import ServedChain, not_after
from dane_hook.config import Config
from dane_hook.errors import BadInput, Error
from dane_hook.rollover.assess import MAX_PROCESSES, coverage_by_endpoint
from dane_hook.rollover.decision import Decision
from dane_hook.rollover.ledger import load_ledger
from dane_hook.rollover.observe import Observation, endpoints_of, observe
from dane_hook.rollover.promotion import (
    Action,
    Context,
    Outcome,
    ReloadResult,
    chain_of,
    consider,
    explicit_endpoints,
    judge,
    read_candidate,
    release,
    reload_commands,
    run_reloads,
    store_candidate,
)
from dane_hook.rollover.publishing import PublishReport, publish_due
from dane_hook.rollover.renewal import EndpointOutlook, ari_warning, outlook
from dane_hook.rollover.served_view import ChainFiles, ServedView
from dane_hook.rollover.state import Enrollment, State
from dane_hook.sources.certbot import Lineage, all_lineages, read_lineage
from dane_hook.storage import check_lineage_name
from dane_hook.tlsa.generate import certificate_record

if TYPE_CHECKING:
    from dane_hook.catalog import Catalog
    from dane_hook.rollover.state import Held


def served_dir_of(config: Config, name: str) -> Path:
    # The name becomes a path component here and under the state directory's candidates/.
    check_lineage_name(name)
    return config.lineage(name).served_dir or config.served_dir / name


def enrollment_of(config: Config, state: State, name: str) -> Enrollment | None:
    """The lineage's enrollment; a served view on disk counts even if the state was lost."""
    enrollment = state.enrolled.get(name)
    if enrollment is not None:
        return enrollment
    served = served_dir_of(config, name)
    if ServedView(served).exists():
        return Enrollment("certbot", str(served))
    return None


def live_files(lineage: Lineage) -> ChainFiles:
    """The files certbot's live/NAME links to now (the version it considers current)."""
    return ChainFiles.read(*(lineage.live(k) for k in ("privkey", "cert", "chain", "fullchain")))


def served_chain(view: ServedView, name: str) -> ServedChain | None:
    """The chain a served view serves now, None before its first version."""
    return chain_of(view.read_current(), f"served {name}") if view.exists() else None


# -- enroll, deploy, rollback ---------------------------------------------------------------


@dataclass(frozen=True)
class Enrolled:
    served_dir: Path
    version: str
    """The version served from the served view now (installed by this enrollment, or kept)."""


def enroll(config: Config, state: State, lineage: Lineage, endpoints: Sequence[str]) -> Enrolled:
    """Let dane-hook own the files a service reads for a certbot lineage (see `adopt`)."""
    files = live_files(lineage)
    chain_of(files, f"lineage {lineage.name}")  # refuse a lineage whose files do not fit
    served = served_dir_of(config, lineage.name)
    view = ServedView(served)
    version = view.install(files) if not view.exists() else view.current
    state.enrolled[lineage.name] = Enrollment("certbot", str(served), tuple(endpoints))
    return Enrolled(served, version or "")


def adopt(context: Context, state: State, name: str) -> PublishReport | None:
    """`enroll --adopt`: the records that authenticate the served chain become dane-hook's
    (the first rollover retires them), and what is due is published. Without a publisher
    nothing could ever retire them: a usage error (exit 2), and nothing is enrolled."""
    from dane_hook.errors import UsageError

    if context.config.lineage(name).publish is None:
        raise UsageError(
            f"--adopt: lineage {name} has no publisher",
            f'set publish = "NAME" in [lineage."{name}"] and a [publisher.NAME] table, '
            "or enroll without --adopt",
        )
    ledger = load_ledger(context.config.state_dir)
    return publish_due(name, context=context, state=state, ledger=ledger, adopt=True)


@dataclass(frozen=True)
class Deployed:
    outcome: Outcome
    """The renewed lineage: promoted, held or only checked."""
    released: tuple[Outcome, ...]
    """Other lineages' held chains that became safe meanwhile."""
    publication: PublishReport | None = None
    """What was published for the renewed lineage (step 1 of its plan), if it has a publisher."""


def deploy(context: Context, state: State, lineage: Lineage) -> Deployed:
    """certbot's deploy hook: promote or hold the renewed chain, then release the others."""
    check_lineage_name(lineage.name)  # joined into the served view's and the candidates' paths
    outcome = consider(
        lineage.name,
        live_files(lineage),
        enrollment=enrollment_of(context.config, state, lineage.name),
        context=context,
        state=state,
    )
    # With a publisher, step 1 of the held chain's plan goes out now (RFC 7671 §8.1); for a
    # promoted chain this starts the retire_after clock and publishes the issuer records.
    report = None
    if outcome.action != Action.CHECKED:
        ledger = load_ledger(context.config.state_dir)
        report = publish_due(lineage.name, context=context, state=state, ledger=ledger)
    # Other held candidates may have become safe meanwhile (release runs after every deploy).
    others = tuple(o for o in release(context, state) if o.lineage != lineage.name)
    return Deployed(outcome, others, report)


@dataclass(frozen=True)
class RolledBack:
    version: str
    reloads: tuple[ReloadResult, ...]
    held: bool = False
    """The previous chain's records were retired: re-published, and the chain held until safe."""
    publication: PublishReport | None = None
    warnings: tuple[str, ...] = ()


class NotEnrolled(BadInput):
    """A lineage command for a lineage dane-hook does not serve (exit 3, like a missing file)."""


class NoPreviousVersion(BadInput):
    """`rollback` of a served view that keeps no previous version (exit 3): nothing to serve."""


def rollback(
    config: Config,
    state: State,
    name: str,
    *,
    context: Context | None = None,
    force: bool = False,
) -> RolledBack:
    """Serve the previous version again at once, and run the reload commands.

    With a publisher (and `context` to look records up): when no published record authenticates
    the previous chain any more (its records were retired), it is not served on a guess: it is
    held like a renewal, its records are re-published, and the timer serves it once safe
    (RFC 7671 §8.1). `force` serves it at once anyway, with a warning.
    """
    enrollment = enrollment_of(config, state, name)
    if enrollment is None:
        raise NotEnrolled(f"{name} is not enrolled", "run dane-hook enroll first")
    view = ServedView(Path(enrollment.served_dir))
    if view.previous is None:
        # A refusal, not a failure to decide: nothing was changed (README, exit status 3).
        kept = f"keeps only version {view.current}" if view.current else "serves no version"
        raise NoPreviousVersion(
            f"{name}: no previous version to roll back to ({view.root} {kept})",
            "a previous version exists once a renewal has been served",
        )
    warnings: list[str] = []
    if context is not None and config.lineage(name).publish is not None:
        previous = view.previous
        assert previous is not None  # refused above
        files = ChainFiles.read(
            *(
                view.version_path(previous, n)
                for n in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem")
            )
        )
        chain = chain_of(files, f"previous version of {name}")
        current = served_chain(view, name)
        explicit = explicit_endpoints(config, name, enrollment)
        judged = judge(chain, current, explicit, context, state)
        if not judged.decision.servable:
            if not force:
                store_candidate(config, name, files)
                state.held[name] = _held_for_rollback(files.version_id, judged.decision, context)
                ledger = load_ledger(config.state_dir)
                report = publish_due(name, context=context, state=state, ledger=ledger)
                return RolledBack(previous, (), True, report)
            warnings.append(
                f"{name}: the previous chain is {judged.decision.verdict.value} against what is "
                "published; served anyway (--force): DANE senders may refuse delivery"
            )
    version = view.rollback()
    reloads = run_reloads(reload_commands(config, name, enrollment))
    return RolledBack(version, reloads, warnings=tuple(warnings))


def _held_for_rollback(version: str, decision: Decision, context: Context) -> Held:
    from dane_hook.rollover.state import Held

    reason = next((f"{d.endpoint}: {d.reason}" for d in decision.endpoints), "")
    return Held(
        version, context.now, decision.verdict.value, f"rollback: {reason}", decision.earliest
    )


# -- the next renewal ------------------------------------------------------------------------


def renewal_window(
    lineage: Lineage | None, served: ServedChain, timeout: float
) -> tuple[datetime | None, str]:
    """The CA's ARI window start for the lineage (RFC 9773), or None, with one line."""
    if lineage is None or not lineage.server:
        return None, "no ACME server known for this lineage: no renewal window"
    from dane_hook.rollover.ari import renewal_window as ask

    issuer = served.issuers[0] if served.issuers else None
    # certbot trusts REQUESTS_CA_BUNDLE for its ACME server; so does this request.
    window, reason = ask(
        lineage.server,
        served.leaf,
        issuer,
        timeout=timeout,
        ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE"),
    )
    return (window.start if window else None), reason


@dataclass(frozen=True)
class NextRenewal:
    """Will certbot's next renewal be covered by what is published, and when may it come?"""

    window_start: datetime | None
    window_reason: str
    outlooks: tuple[EndpointOutlook, ...]
    warning: str | None
    """The renewal window opens before the records that would cover it are old enough."""


def next_renewal(
    lineage: Lineage | None,
    served: ServedChain,
    observations: Sequence[Observation],
    hosts: dict[str, str],
    catalog: Catalog,
    *,
    timeout: float,
    now: datetime,
) -> NextRenewal:
    coverage = coverage_by_endpoint(served, observations, catalog, now)
    outlooks = outlook(
        served,
        [o.published for o in observations],
        coverage,
        reuse_key=bool(lineage and lineage.reuse_key),
        hosts=hosts,
        now=now,
    )
    start, reason = renewal_window(lineage, served, timeout)
    return NextRenewal(start, reason, tuple(outlooks), ari_warning(start, outlooks, now))


# -- certbot's pre-hook ----------------------------------------------------------------------


@dataclass(frozen=True)
class Preflight:
    lineage: Lineage
    decision: Decision
    """The served chain judged against what is published now."""
    renewal: NextRenewal


def preflight(
    context: Context, state: State, catalog: Catalog, *, timeout: float
) -> list[Preflight]:
    """Before certbot renews: is each lineage's served chain safe, and is its renewal covered?"""
    found = []
    config = context.config
    for lineage in all_lineages(config.certbot_dir):
        enrollment = enrollment_of(config, state, lineage.name)
        view = ServedView(Path(enrollment.served_dir)) if enrollment else None
        # Without a served view, what certbot's live/ links to is what services read.
        exists = view is not None and view.exists()
        files = view.read_current() if view is not None and exists else live_files(lineage)
        served = chain_of(files, f"served {lineage.name}")
        explicit = explicit_endpoints(config, lineage.name, enrollment)
        judged = judge(served, served, explicit, context, state)
        renewal = next_renewal(
            lineage,
            served,
            judged.observations,
            judged.hosts,
            catalog,
            timeout=timeout,
            now=context.now,
        )
        found.append(Preflight(lineage, judged.decision, renewal))
    return found


# -- status ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageStatus:
    """What `status` shows of one lineage; `to_json()` is the JSON output's lineage object."""

    lineage: str
    enrollment: Enrollment | None
    view: ServedView | None
    served: ServedChain | None
    held: dict[str, Any] | None
    """The held candidate as the state keeps it (version, since, verdict, reason, earliest)."""
    decision: Decision | None
    """The held candidate's decision, else the served chain's; None when there is neither."""
    renewal: NextRenewal | None = None
    next_renewal_note: str | None = None
    observations: tuple[Observation, ...] = ()
    """The endpoints as this run observed them, for monitoring (no second lookup)."""

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"lineage": self.lineage, "enrolled": self.enrollment is not None}
        if self.enrollment is not None:
            entry["served_dir"] = self.enrollment.served_dir
        if self.served is not None and self.view is not None:
            entry["served"] = {
                "version": self.view.current,
                "previous": self.view.previous,
                "subject": self.served.leaf.subject.rfc4514_string(),
                "not_after": not_after(self.served.leaf).isoformat(),
                "tlsa_3_1_1": certificate_record(self.served.leaf, 3, 1, 1).to_text(),
            }
        if self.held is not None:
            entry["held"] = self.held
        if self.decision is None:
            entry["endpoints"] = []
            return entry
        if self.next_renewal_note is not None:
            entry["next_renewal_note"] = self.next_renewal_note
        if self.renewal is not None:
            start = self.renewal.window_start
            entry["renewal_window"] = {
                "start": start.isoformat() if start else None,
                "reason": self.renewal.window_reason,
            }
            entry["next_renewal"] = [
                {"endpoint": o.endpoint, "covered": o.covered, "reason": o.reason}
                for o in self.renewal.outlooks
            ]
            entry["warning"] = self.renewal.warning
        entry["checked"] = "held candidate" if self.held is not None else "served chain"
        entry["verdict"] = self.decision.verdict.value
        entry["endpoints"] = [
            {"endpoint": d.endpoint, "verdict": d.verdict.value, "reason": d.reason}
            for d in self.decision.endpoints
        ]
        return entry


class _Pending(NamedTuple):
    """One lineage between `status`'s first pass (what to judge) and its decision."""

    name: str
    enrollment: Enrollment | None
    view: ServedView | None
    served: ServedChain | None
    held: dict[str, Any] | None
    candidate: ServedChain | None
    explicit: tuple[str, ...]
    endpoints: list[str]


def status(
    context: Context, state: State, names: Sequence[str] | None, *, timeout: float
) -> list[LineageStatus]:
    """Per lineage (enrolled, configured or held): what is served, what is held and why."""
    config = context.config
    known = set(state.enrolled) | set(config.lineages) | set(state.held)
    for name in names or ():  # known names passed the lineage-name rule when they were loaded
        if name not in known:
            # Like `rollback` of an unknown lineage: a name that names nothing is refused.
            raise NotEnrolled(
                f"{name} is not enrolled, configured or held",
                "see 'dane-hook status' for the lineages dane-hook knows",
            )
    # Pass 1: each lineage's candidate and endpoints; pass 2 looks every endpoint of every
    # lineage up in one observe() (threads, and worker processes for many), as `check` does,
    # instead of one lookup pool per lineage; pass 3 decides per lineage.
    pending: list[_Pending] = []
    for name in sorted(known):
        if names and name not in names:
            continue
        enrollment = enrollment_of(config, state, name)
        view = ServedView(Path(enrollment.served_dir)) if enrollment is not None else None
        served = served_chain(view, name) if view is not None else None
        held_state = state.held.get(name)
        held: dict[str, Any] | None = None
        candidate = served
        if held_state is not None:
            held = {
                "version": held_state.version,
                "since": held_state.since.isoformat(),
                "verdict": held_state.verdict,
                "reason": held_state.reason,
                "earliest": held_state.earliest.isoformat() if held_state.earliest else None,
            }
            try:
                files = read_candidate(config, name, held_state.version)
                candidate = chain_of(files, f"held {name}")
            except Error as exc:
                held["error"] = exc.diagnostics()
        explicit = explicit_endpoints(config, name, enrollment)
        endpoints = endpoints_of(candidate, explicit, config.ports) if candidate is not None else []
        pending.append(
            _Pending(name, enrollment, view, served, held, candidate, explicit, endpoints)
        )
    every = list(dict.fromkeys(e for entry in pending for e in entry.endpoints))
    processes = min(os.cpu_count() or 1, MAX_PROCESSES)
    observed = {
        o.endpoint: o
        for o in observe(every, context.settings, state, context.now, processes=processes)
    }
    catalog: Catalog | None = None
    found = []
    for name, enrollment, view, served, held, candidate, explicit, _ in pending:
        if candidate is None:
            found.append(LineageStatus(name, enrollment, view, served, held, None))
            continue
        judged = judge(candidate, served, explicit, context, state, observed)
        renewal = None
        note = None
        if served is not None and enrollment is not None and enrollment.source != "certbot":
            # acme.sh: `dane-hook acme-sh pre` judges the coming key before each issuance.
            note = "checked by 'dane-hook acme-sh pre' before each issuance"
        elif served is not None:
            if catalog is None:  # once per run, not once per lineage
                from dane_hook.catalog import load_catalog

                catalog = load_catalog(config.state_dir, context.now)
            try:
                lineage: Lineage | None = read_lineage(config.certbot_dir, name)
            except Error:
                lineage = None
            renewal = next_renewal(
                lineage,
                served,
                judged.observations,
                judged.hosts,
                catalog,
                timeout=timeout,
                now=context.now,
            )
        found.append(
            LineageStatus(
                name,
                enrollment,
                view,
                served,
                held,
                judged.decision,
                renewal,
                note,
                judged.observations,
            )
        )
    return found
