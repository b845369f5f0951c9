"""Promote or hold: decide for a renewed chain and change the served view only when it is safe.

The ACME client has already written the new chain into its own tree (certbot's deploy hook runs
after live/ points at it; acme.sh's reloadcmd after it copied the files). dane-hook copies the
candidate into its state directory, decides, and either installs it into the served view and
runs the reload commands, or keeps it held until `release` finds it safe.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from dane_hook.certs.chain import ServedChain, build_chain, not_after
from dane_hook.config import Config
from dane_hook.errors import Error
from dane_hook.rollover.decision import Decision, Published, decide
from dane_hook.rollover.observe import Observation, Settings, endpoints_of, host_of, observe
from dane_hook.rollover.plan import Plan, make_plan
from dane_hook.rollover.served_view import ChainFiles, ServedView, discard, write_complete_dir
from dane_hook.rollover.state import Enrollment, Held, State
from dane_hook.sources.files import parse_certificates, parse_public_key

RELOAD_TIMEOUT = 300
"""Seconds a reload command may take before it is stopped."""
EXPIRY_LIMIT = timedelta(days=1)
"""How long before the served certificate expires the expiry action applies."""


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
class Outcome:
    lineage: str
    action: str
    decision: Decision
    plan: Plan
    observations: tuple[Observation, ...]
    warnings: tuple[str, ...] = ()
    reloads: tuple[ReloadResult, ...] = ()
    version: str = ""

    @property
    def reload_failed(self) -> bool:
        return any(r.returncode != 0 for r in self.reloads)


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
) -> Judgement:
    """Observe the candidate's endpoints (updating first-seen times in `state`) and decide."""
    endpoints = endpoints_of(candidate, explicit, context.config.ports)
    observations = tuple(observe(endpoints, context.settings, state, context.now))
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
    plan = make_plan(candidate, [], judged.published, decision, context.now, host_of=hosts)
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
        return outcome(Action.PROMOTED, run_reloads(commands))
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
