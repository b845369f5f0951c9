"""`dane-hook acme-sh pre|reload`: acme.sh's --pre-hook, and a wrapper for its --reloadcmd.

acme.sh 3.1.x (acme.sh, _on_before_issue): a pre-hook that exits non-zero aborts the issuance
("Error occurred when running pre hook", then _on_issue_err), before any key is made or order
placed; the cron job tries again at its next run. So `pre` can refuse a renewal outright.

acme.sh 3.1.x (acme.sh, _installcert): the reloadcmd runs after acme.sh copied the new files to
their install paths, without a backup on renewal; a non-zero status is reported as "Reload
error for: DOMAIN" and makes the run fail, and _ensure_install() runs the reloadcmd again at the
next cron run (Le_InstallCertSuccessTime older than Le_CertCreateTime). So `reload` owns the
files services read (the served view), promotes or holds there, and runs the wrapped command
only for a chain it serves.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from dane_hook.catalog import load_catalog
from dane_hook.catalog.coverage import Coverage
from dane_hook.certs.chain import ServedChain, build_chain
from dane_hook.certs.keys import PublicKey
from dane_hook.cli.check import coverage_by_endpoint
from dane_hook.cli.inputs import EXIT_FOR_VERDICT, add_endpoint_argument
from dane_hook.cli.lineage import (
    add_common_arguments,
    config_of,
    context_of,
    exit_for,
    journal,
    print_outcome,
    print_reloads,
    served_dir_of,
    store_of,
    summary,
)
from dane_hook.config import Config
from dane_hook.errors import BadInput, Error
from dane_hook.exitcodes import ExitCode
from dane_hook.render.check import PLAN_RENDERERS, PlanFormat, PlanReport, when
from dane_hook.rollover.decision import SERVABLE, SEVERITY, Decision, Publication, Verdict
from dane_hook.rollover.observe import Observation, parse_endpoint
from dane_hook.rollover.plan import Plan, make_plan
from dane_hook.rollover.promotion import (
    Action,
    chain_of,
    consider,
    explicit_endpoints,
    judge,
    run_reloads,
)
from dane_hook.rollover.served_view import ChainFiles, ServedView
from dane_hook.rollover.state import Enrollment, State
from dane_hook.sources import acmesh
from dane_hook.sources.files import load_certificates, load_public_key
from dane_hook.tlsa.generate import certificate_record, key_record
from dane_hook.tlsa.record import Selector, TLSARecord, Usage

DEFAULT_TTL = 3600
"""TTL for zone lines of an endpoint whose RRset gave none."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    hooks = parser.add_subparsers(dest="acme_sh_command", metavar="HOOK", required=True)
    pre = hooks.add_parser(
        "pre",
        help="--pre-hook: refuse an issuance whose key is not yet safely published",
        description="acme.sh --pre-hook: exit 0 only when the key of the coming issuance is "
        "authenticated by records published long enough (or by 2 x x records of its CA); "
        "otherwise print the records to add and exit non-zero, which makes acme.sh abort.",
    )
    pre.add_argument(
        "--key",
        metavar="PATH",
        help='the domain key (acme.sh: "$CERT_KEY_PATH"); default DOMAIN.key in $DOMAIN_PATH',
    )
    pre.add_argument("--domain", metavar="NAME", help="the main domain (default $Le_Domain)")
    add_endpoint_argument(pre)
    add_common_arguments(pre)
    wrapper = hooks.add_parser(
        "reload",
        help="--reloadcmd wrapper: promote the new chain or hold it, then run CMD",
        description="acme.sh --reloadcmd wrapper: check the chain acme.sh installed; when it "
        "is safe, serve it from the served view and run CMD, exiting with CMD's status; "
        "otherwise hold it, do not run CMD, print the plan and exit non-zero.",
    )
    wrapper.add_argument(
        "--served", metavar="DIR", help="the served view (default SERVED_DIR/$Le_Domain)"
    )
    wrapper.add_argument(
        "--name",
        metavar="NAME",
        help="name in dane-hook's state (default $Le_Domain; give one to an RSA and an ECDSA "
        "certificate of the same domain each)",
    )
    add_endpoint_argument(wrapper)
    add_common_arguments(wrapper)
    # Not "command": the top-level parser keeps the subcommand's name there.
    wrapper.add_argument(
        "wrapped",
        nargs=argparse.REMAINDER,
        metavar="-- CMD [ARG ...]",
        help="the reload command, run once the chain is served",
    )


def execute(args: argparse.Namespace) -> int:
    if args.acme_sh_command == "pre":
        return _pre(args)
    return _reload(args)


# -- pre -------------------------------------------------------------------------------------


def _pre(args: argparse.Namespace) -> int:
    environment = os.environ
    folder = acmesh.locate(
        key=args.key, domain=args.domain, environment=environment, cwd=Path.cwd()
    )
    conf = folder.read_conf()
    if folder.first_issuance(conf):
        line = (
            f"{folder.name}: first issuance: acme.sh makes the key after this hook, so there is "
            "nothing to check yet; `dane-hook acme-sh reload` checks the chain before serving it"
        )
        print(line)
        journal().info(line)
        return ExitCode.OK
    force_new_key = acmesh.is_set(environment.get("Le_ForceNewDomainKey")) or acmesh.is_set(
        conf.get("Le_ForceNewDomainKey")
    )
    coming = acmesh.coming_key(folder, force_new_key)
    latest = _latest_chain(folder)
    domain = environment.get("Le_Domain") or conf.get("Le_Domain") or folder.name
    alt = environment.get("Le_Alt") if "Le_Domain" in environment else conf.get("Le_Alt")
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    # Unknown key (acme.sh makes it at issuance): a throwaway one, which no record matches.
    key = coming.key or _throwaway_key()
    candidate = acmesh.prospective_chain(latest, key, acmesh.names_of(domain, alt), now)
    with store_of(config).locked(now) as state:
        current = _served_chain(config, state, folder.name) or latest
        enrollment = state.enrolled.get(folder.name)
        explicit = explicit_endpoints(config, folder.name, enrollment, args.endpoint)
        judged = judge(candidate, current, explicit, context, state)
    observations, hosts, published = judged.observations, judged.hosts, judged.published
    decision = judged.decision
    catalog = load_catalog(config.state_dir, now)
    coverage = coverage_by_endpoint(candidate, tuple(observations), catalog, now)
    decision = _require_catalog_coverage(decision, coverage)
    plan = _plan_before_issuance(
        make_plan(candidate, [], published, decision, now, host_of=hosts, current=current),
        candidate,
        known=coming.key is not None,
    )
    plan = _add_coverage(plan, coverage)
    lines = _pre_report(folder.name, coming, decision)
    for line in lines:
        print(line)
    journal().info(lines[1])
    if not decision.servable:
        report = PlanReport([(folder.name, decision, plan)], now)
        sys.stdout.write(PLAN_RENDERERS[PlanFormat.ZONE](report))
    return EXIT_FOR_VERDICT[decision.verdict]


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


def _pre_report(name: str, coming: acmesh.ComingKey, decision: Decision) -> list[str]:
    if coming.key is not None:
        record = key_record(coming.key, Usage.DANE_EE, 1).to_text()
        first = f"{name}: the coming issuance uses the {coming.source} {coming.path} ({record})"
    else:
        first = (
            f"{name}: Le_ForceNewDomainKey is 1 and no key is staged in {coming.path}: acme.sh "
            "makes a new key at issuance, which no 3 1 1 record can name ahead"
        )
    verdict = decision.verdict
    reason = next(
        (f"{d.endpoint}: {d.reason}" for d in decision.endpoints if d.verdict is verdict),
        verdict.value,
    )
    label = verdict.value.upper()
    if decision.servable:
        second = f"{name}: renewal let through ({label}): {reason}"
    elif verdict is Verdict.WAIT:
        second = (
            f"{name}: renewal refused until {when(decision.earliest)} ({label}): {reason}; "
            "acme.sh aborts it now and tries again at its next run, it is let through from then"
        )
    else:
        second = f"{name}: renewal refused ({label}): {reason}; acme.sh aborts it"
    lines = [first, second]
    lines += [f"  {d.endpoint} {d.verdict.value}: {d.reason}" for d in decision.endpoints]
    return lines


# -- reload ----------------------------------------------------------------------------------


def _reload(args: argparse.Namespace) -> int:
    command = tuple(args.wrapped[1:] if args.wrapped[:1] == ["--"] else args.wrapped)
    installed = acmesh.installed_from_environment(os.environ, args.name)
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
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    log = journal()
    with store_of(config).locked(now) as state:
        enrollment = _enroll(config, state, name, args, command)
        outcome = consider(
            name,
            files,
            enrollment=enrollment,
            context=context,
            state=state,
            extra_reload=[command] if command else [],
        )
    print_outcome(outcome, now)
    log.info(summary(outcome))
    _print_staged(installed, staged, staged_error, outcome.observations)
    if outcome.action == Action.HELD:
        print(
            f"{name}: not running {' '.join(command) or 'any reload command'}: "
            "`dane-hook release` serves the chain and runs it once it is safe"
        )
        return exit_for([outcome])
    if not command:
        return exit_for([outcome])
    if outcome.action == Action.PROMOTED:
        return next(r.returncode for r in outcome.reloads if r.command == command)
    # Already served, or warn mode: the service may still run the old chain (acme.sh runs the
    # reloadcmd again after a failed one, with the same files), so reload it.
    results = run_reloads([command])
    print_reloads(results)
    return results[0].returncode


def _enroll(
    config: Config, state: State, name: str, args: argparse.Namespace, command: tuple[str, ...]
) -> Enrollment:
    """The domain's enrollment, made on first use and kept up to date with the hook's options."""
    existing = state.enrolled.get(name)
    if args.served:
        served = Path(args.served)
    elif existing is not None:
        served = Path(existing.served_dir)
    else:
        served = served_dir_of(config, name)
    endpoints = tuple(parse_endpoint(e) for e in args.endpoint) or (
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


def _print_staged(
    installed: acmesh.Installed,
    staged: PublicKey | None,
    error: str | None,
    observations: tuple[Observation, ...],
) -> None:
    """The 3 1 1 of the key acme.sh staged for the next issuance ("current + next")."""
    if error is not None:
        print(f"dane-hook: warning: the staged next key: {error}", file=sys.stderr)
    if staged is None:
        if installed.force_new_key:
            print(f"; {installed.domain}: Le_ForceNewDomainKey is 1 but no next key is staged")
        return
    record = key_record(staged, Usage.DANE_EE, 1)
    use = (
        "acme.sh uses it at the next renewal"
        if installed.force_new_key
        else "acme.sh uses it only with --always-force-new-domain-key"
    )
    print(f"; current + next: the next key {installed.next_key} ({use})")
    print("; publish its 3 1 1 now, next to the records of the key in use:")
    for observation in observations:
        print(_staged_line(observation, record))


def _staged_line(observation: Observation, record: TLSARecord) -> str:
    published = observation.published
    endpoint = observation.endpoint
    if published.status is not Publication.SECURE:
        return f";   {endpoint}: {published.status.value}, nothing to publish"
    if not any(r.usage == Usage.DANE_EE for r in published.records):
        return f";   {endpoint}: pins the CA only (2 x x), no 3 1 1 needed"
    if record in published.records:
        return f";   {endpoint}: already published"
    return f"{endpoint} {published.ttl or DEFAULT_TTL} IN TLSA {record.to_text()}"
