"""Promote or hold: decide for a renewed chain and change the served view only when it is safe.

The ACME client has already written the new chain into its own tree (certbot's deploy hook runs
after live/ points at it; acme.sh's reloadcmd after it copied the files). dane-hook copies the
candidate into its state directory, decides, and either installs it into the served view and
runs the reload commands, or keeps it held until `release` finds it safe.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from dane_hook.certs.chain import ServedChain, build_chain, not_after
from dane_hook.config import Config
from dane_hook.errors import Error
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.decision import Decision, Published, decide
from dane_hook.rollover.observe import Observation, Settings, endpoints_of, host_of, observe
from dane_hook.rollover.plan import Plan, make_plan
from dane_hook.rollover.served_view import ChainFiles, ServedView, discard, write_complete_dir
from dane_hook.rollover.state import Enrollment, Held, State
from dane_hook.sources.files import parse_certificates, parse_public_key

if TYPE_CHECKING:
    from dane_hook.probe.report import ProbeReport

RELOAD_TIMEOUT = 300
"""Seconds a reload command may take before it is stopped."""
EXPIRY_LIMIT = timedelta(days=1)
"""How long before the served certificate expires the expiry action applies."""
PROBE_SETTLE = (1.0, 3.0)
"""Seconds to wait before probing again while a DANE sender would refuse: a reload that
returns before the service has restarted (systemctl reload of a forking service) gets time."""


class Action:
    PROMOTED = "promoted"
    """The candidate is now served."""
    HELD = "held"
    """The candidate is kept back; the served view is unchanged."""
    SERVED = "already-served"
    """The candidate is the version served now."""
    CHECKED = "checked"
    """Warn mode or not enrolled: checked and planned, nothing served by dane-hook."""


@dataclass(frozen=True)
class ReloadResult:
    command: tuple[str, ...]
    returncode: int
    error: str = ""


@dataclass(frozen=True)
class AfterPromotion:
    """The live probe after a promotion and its reload (issue 13)."""

    report: ProbeReport
    """What the lineage's addresses presented after the reload."""
    rolled_back: str | None = None
    """The version served again (rollback_on_probe_failure), None without a rollback."""
    reloads: tuple[ReloadResult, ...] = ()
    """The reload commands run again after the rollback."""
    after: ProbeReport | None = None
    """The probe after the rollback."""

    @property
    def failed(self) -> bool:
        """A DANE sender would have refused the promoted chain as presented."""
        return self.report.refuses


@dataclass(frozen=True)
class Outcome:
    lineage: str
    action: str
    decision: Decision
    plan: Plan
    observations: tuple[Observation, ...]
    warnings: tuple[str, ...] = ()
    reloads: tuple[ReloadResult, ...] = ()
    version: str = ""
    probe: AfterPromotion | None = None
    """The probe after a promotion; None when it did not run (see LineageConfig.probe)."""

    @property
    def reload_failed(self) -> bool:
        return any(r.returncode != 0 for r in self.reloads)

    @property
    def probe_failed(self) -> bool:
        return self.probe is not None and self.probe.failed


def probe_exit(outcomes: Sequence[Outcome]) -> ExitCode:
    """1 (unsafe) when a probe after a promotion found that a DANE sender would refuse, else
    0: the promotion commands exit non-zero then, rolled back or not."""
    return ExitCode.UNSAFE if any(o.probe_failed for o in outcomes) else ExitCode.OK


@dataclass(frozen=True)
class Context:
    config: Config
    settings: Settings
    now: datetime


def chain_of(files: ChainFiles, source: str) -> ServedChain:
    """The served chain of a version: the fullchain, with the leaf chosen by the key."""
    key = parse_public_key(files.privkey, f"{source} (key)")
    return build_chain(
        parse_certificates(files.fullchain, f"{source} (fullchain)"), key, source=source
    )


def candidate_dir(config: Config, lineage: str) -> Path:
    return config.state_dir / "candidates" / lineage


def store_candidate(config: Config, lineage: str, files: ChainFiles) -> None:
    """Copy the candidate out of the ACME client's tree, which may change it behind us."""
    folder = candidate_dir(config, lineage)
    version = files.version_id
    names = ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem")
    write_complete_dir(folder / version, {n: (files.content(n), 0o600) for n in names}, mode=0o700)
    # A newer renewal replaces an older held candidate.
    for entry in folder.iterdir():
        if entry.name != version:
            discard(entry)


def read_candidate(config: Config, lineage: str, version: str) -> ChainFiles:
    folder = candidate_dir(config, lineage) / version
    return ChainFiles.read(
        folder / "privkey.pem", folder / "cert.pem", folder / "chain.pem", folder / "fullchain.pem"
    )


def drop_candidate(config: Config, lineage: str) -> None:
    discard(candidate_dir(config, lineage))


def run_reloads(commands: Sequence[Sequence[str]]) -> tuple[ReloadResult, ...]:
    """Run each reload command (argv, no shell); a failure is reported, never raised."""
    results = []
    for command in commands:
        argv = tuple(command)
        try:
            done = subprocess.run(argv, timeout=RELOAD_TIMEOUT, check=False)
            results.append(ReloadResult(argv, done.returncode))
        except (OSError, subprocess.SubprocessError) as exc:
            results.append(ReloadResult(argv, 127, str(exc)))
    return tuple(results)


def reload_commands(
    config: Config, lineage: str, enrollment: Enrollment | None
) -> list[tuple[str, ...]]:
    commands = [tuple(shlex.split(c)) for c in config.lineage(lineage).reload]
    if enrollment is not None:
        commands += [c for c in enrollment.reload if c not in commands]
    return commands


def _expiry(current: ServedChain | None, config: Config, now: datetime) -> tuple[list[str], bool]:
    """Warnings about the served certificate's expiry, and whether the limit is reached."""
    if current is None:
        return [], False
    expires = not_after(current.leaf)
    if now < expires - timedelta(days=config.expiry_warn_days):
        return [], False
    limit = now >= expires - EXPIRY_LIMIT
    warning = (
        f"the served certificate expires {expires:%Y-%m-%d %H:%M} UTC and the renewal is held: "
        "publish the records of the plan now"
    )
    if limit:
        action = (
            "serving the renewal anyway (expiry_action = serve)"
            if config.expiry_action == "serve"
            else "still holding it (expiry_action = hold)"
        )
        warning += f"; the expiry limit is reached, {action}"
    return [warning], limit


def explicit_endpoints(
    config: Config, lineage: str, enrollment: Enrollment | None, given: Sequence[str] = ()
) -> tuple[str, ...]:
    """The endpoints named for a lineage: on the command line, else in the configuration,
    else at enrollment; none means every name of the certificate at the configured ports."""
    return (
        tuple(given)
        or config.lineage(lineage).endpoints
        or (enrollment.endpoints if enrollment else ())
    )


@dataclass(frozen=True)
class Judgement:
    """A chain's endpoints as observed now, and the decision for serving it."""

    observations: tuple[Observation, ...]
    hosts: dict[str, str]
    """Endpoint -> the host name a DANE-TA match must cover (RFC 7672 §3.2.3)."""
    decision: Decision

    @property
    def published(self) -> list[Published]:
        return [o.published for o in self.observations]


def judge(
    candidate: ServedChain,
    current: ServedChain | None,
    explicit: Sequence[str],
    context: Context,
    state: State,
    observed: Mapping[str, Observation] | None = None,
) -> Judgement:
    """Observe the candidate's endpoints (updating first-seen times in `state`) and decide.

    `observed`: endpoints a caller already observed in one batch for many lineages (status);
    only those missing from it are looked up here."""
    endpoints = endpoints_of(candidate, explicit, context.config.ports)
    known = observed or {}
    missing = [e for e in endpoints if e not in known]
    looked = observe(missing, context.settings, state, context.now) if missing else []
    fresh = {o.endpoint: o for o in looked}
    observations = tuple(known[e] if e in known else fresh[e] for e in endpoints)
    hosts = {o.endpoint: host_of(o.endpoint) for o in observations}
    decision = decide(
        candidate,
        current,
        [o.published for o in observations],
        context.now,
        strict=context.config.strict,
        host_of=hosts,
    )
    return Judgement(observations, hosts, decision)


def consider(
    lineage: str,
    files: ChainFiles,
    *,
    enrollment: Enrollment | None,
    context: Context,
    state: State,
    extra_reload: Sequence[Sequence[str]] = (),
) -> Outcome:
    """Decide for a candidate and promote or hold it (the caller holds the state lock)."""
    config = context.config
    lineage_config = config.lineage(lineage)
    candidate = chain_of(files, f"candidate of {lineage}")
    view = ServedView(Path(enrollment.served_dir)) if enrollment else None
    current_files = view.read_current() if view is not None and view.exists() else None
    current = chain_of(current_files, f"served {lineage}") if current_files else None
    judged = judge(
        candidate, current, explicit_endpoints(config, lineage, enrollment), context, state
    )
    observations, hosts, decision = judged.observations, judged.hosts, judged.decision
    # What other lineages at these endpoints serve or hold, and this one's staged next key,
    # stay in step 3 (issue 15, 8b). assess imports this module: imported here.
    from dane_hook.rollover.assess import enrolled_in_use, in_use_at

    in_use = in_use_at(candidate, list(hosts), enrolled_in_use(config, state), replacing=lineage)
    plan = make_plan(
        candidate, [], judged.published, decision, context.now, host_of=hosts, in_use=in_use
    )
    warnings, at_limit = (
        _expiry(current, config, context.now) if not decision.servable else ([], False)
    )
    version = files.version_id

    def outcome(action: str, reloads: tuple[ReloadResult, ...] = ()) -> Outcome:
        return Outcome(
            lineage, action, decision, plan, observations, tuple(warnings), reloads, version
        )

    if view is None or lineage_config.policy == "warn":
        return outcome(Action.CHECKED)
    if current_files is not None and current_files.version_id == version:
        state.held.pop(lineage, None)
        drop_candidate(config, lineage)
        return outcome(Action.SERVED)
    serve = decision.servable or (at_limit and config.expiry_action == "serve")
    commands = reload_commands(config, lineage, enrollment)
    # acme.sh's wrapped command is both enrolled (for rollback) and held with the candidate.
    commands += [tuple(c) for c in extra_reload if tuple(c) not in commands]
    if serve:
        view.install(files)
        state.held.pop(lineage, None)
        drop_candidate(config, lineage)
        reloads = run_reloads(commands)
        probed = probe_after_promotion(
            lineage,
            view,
            [o.endpoint for o in observations],
            commands,
            context,
            can_roll_back=current_files is not None,
        )
        if probed is not None:
            warnings.extend(probe_warnings(lineage, probed, context.config))
        return replace(outcome(Action.PROMOTED, reloads), probe=probed)
    store_candidate(config, lineage, files)
    previous = state.held.get(lineage)
    since = previous.since if previous and previous.version == version else context.now
    state.held[lineage] = Held(
        version,
        since,
        decision.verdict.value,
        _reason(decision),
        decision.earliest,
        tuple(tuple(c) for c in extra_reload),
    )
    return outcome(Action.HELD)


def _probe(
    endpoints: Sequence[str], view: ServedView, context: Context, *, local_only: bool
) -> ProbeReport | None:
    """The endpoints' addresses probed and judged; None: nothing to probe (auto mode)."""
    from dane_hook.probe.report import (
        ProbeSettings,
        local_targets,
        probe_targets,
        served_ders,
        targets_of_endpoints,
    )
    from dane_hook.probe.wire import Limits

    # Shorter than an interactive probe's 30 s: a hook that waits on a hung service still ends
    # (at most 3 probes before and 3 after a rollback, PROBE_SETTLE apart).
    limits = Limits(connect_timeout=5.0, read_timeout=5.0, deadline=10.0)
    settings = ProbeSettings(
        context.settings.resolver, context.settings.timeout, context.settings.tries, limits
    )
    found = targets_of_endpoints(endpoints, settings)
    if local_only:
        found = local_targets(found)
        if not found.targets:
            return None
    served = served_ders(view.read_current().fullchain, f"served view {view.root}")
    report = probe_targets(found, settings, served=served, now=context.now)
    for pause in PROBE_SETTLE:
        if not report.refuses:
            break
        time.sleep(pause)
        report = probe_targets(found, settings, served=served, now=context.now)
    return report


def probe_after_promotion(
    lineage: str,
    view: ServedView,
    endpoints: Sequence[str],
    commands: Sequence[Sequence[str]],
    context: Context,
    *,
    can_roll_back: bool,
) -> AfterPromotion | None:
    """Probe what the lineage's addresses present now; roll back when configured and refused.

    `probe = true` probes every address of the endpoints; unset, only those of this host
    (and nothing when there is none); false, nothing. A DANE sender refuses an address whose
    presented chain the published records do not authenticate (RFC 7672 §2.2): the served
    files are right, so the service did not reload, or reads other files.
    """
    settings = context.config.lineage(lineage)
    if settings.probe is False or not endpoints:
        return None
    report = _probe(endpoints, view, context, local_only=settings.probe is None)
    if report is None:
        return None
    if not report.refuses or not settings.rollback_on_probe_failure or not can_roll_back:
        return AfterPromotion(report)
    version = view.rollback()
    reloads = run_reloads(commands)
    after = _probe(endpoints, view, context, local_only=settings.probe is None)
    return AfterPromotion(report, version, reloads, after)


def probe_warnings(lineage: str, probed: AfterPromotion, config: Config) -> list[str]:
    """What the promotion's output says about the probe: nothing when all is well."""
    report = probed.report
    lines = [f"{lineage}: probe after the reload: {line}" for line in report.problems]
    stale = [
        v for v in report.verdicts if report.in_served_view(v) is False and not v.sender_refuses
    ]
    if stale:
        # Delivered today, by records of the chain still presented: once those records are
        # retired (RFC 7671 §8.1, step 3 of the plan), DANE senders refuse. Said now.
        lines.append(
            f"{lineage}: probe after the reload: {len(stale)} address(es) still present another "
            "chain than the served view (the reload did not take effect, or the service reads "
            "other files); do not retire the old records before they present it:"
        )
        lines += [f"{lineage}:   {report.line_of(v)}" for v in stale]
    if not report.refuses:
        return lines
    refusing = report.refusing
    lines.append(
        f"{lineage}: probe after the reload: a DANE sender would refuse delivery at "
        f"{len(refusing)} of {len(report.verdicts)} addresses (RFC 7672 §2.2):"
    )
    lines += [f"{lineage}:   {report.line_of(v)}" for v in refusing]
    if probed.rolled_back is None:
        why = (
            "there is no previous version to roll back to"
            if config.lineage(lineage).rollback_on_probe_failure
            else "rollback_on_probe_failure is off"
        )
        lines.append(
            f"{lineage}: the new chain stays served ({why}): make the service present the "
            "served view's files after its reload"
        )
        return lines
    failed = [r for r in probed.reloads if r.returncode != 0]
    after = probed.after
    now = (
        "no DANE sender would refuse now"
        if after is not None and not after.refuses
        else f"still refused: {after.reason() if after is not None else 'not probed'}"
    )
    lines.append(
        f"{lineage}: rolled back to version {probed.rolled_back} and ran the reload again"
        + (f" ({len(failed)} failed)" if failed else "")
        + f"; {now}. The new chain is not served: make the service present the served view's "
        "files, then promote it again (certbot: dane-hook deploy --lineage live/NAME; acme.sh: "
        "its next --install-cert or renewal)"
    )
    return lines


def _reason(decision: Decision) -> str:
    worst = [d for d in decision.endpoints if d.verdict is decision.verdict]
    if not worst:
        return decision.verdict.value
    return f"{worst[0].endpoint}: {worst[0].reason}"


def release(context: Context, state: State, names: Sequence[str] | None = None) -> list[Outcome]:
    """Check every held candidate again; promote those that are now safe."""
    outcomes = []
    for lineage in sorted(state.held):
        if names and lineage not in names:
            continue
        held = state.held[lineage]
        enrollment = state.enrolled.get(lineage)
        try:
            files = read_candidate(context.config, lineage, held.version)
        except Error:
            # The copy is gone: nothing to promote; the next renewal brings a new candidate.
            state.held.pop(lineage, None)
            continue
        outcomes.append(
            consider(
                lineage,
                files,
                enrollment=enrollment,
                context=context,
                state=state,
                extra_reload=held.reload,
            )
        )
    return outcomes
