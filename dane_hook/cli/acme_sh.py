"""`dane-hook acme-sh pre|reload`: acme.sh's --pre-hook, and a wrapper for its --reloadcmd.

What acme.sh does around each hook, and so what these commands may do, is in
dane_hook/rollover/issuance.py, which does the work; this module parses and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from dane_hook.certs.keys import PublicKey
from dane_hook.cli.inputs import EXIT_FOR_VERDICT, add_endpoint_argument
from dane_hook.cli.lineage import (
    add_common_arguments,
    config_of,
    context_of,
    exit_for,
    journal,
    print_outcome,
    print_reloads,
    store_of,
    summary,
)
from dane_hook.exitcodes import ExitCode
from dane_hook.render.check import PLAN_RENDERERS, PlanFormat, PlanReport, when
from dane_hook.rollover.decision import Decision, Publication, Verdict
from dane_hook.rollover.issuance import is_first_issuance, judge_issuance, serve_installed
from dane_hook.rollover.observe import Observation
from dane_hook.rollover.promotion import Action, probe_exit
from dane_hook.sources import acmesh
from dane_hook.tlsa.generate import key_record
from dane_hook.tlsa.record import TLSARecord, Usage

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
    if is_first_issuance(folder):
        line = (
            f"{folder.name}: first issuance: acme.sh makes the key after this hook, so there is "
            "nothing to check yet; `dane-hook acme-sh reload` checks the chain before serving it"
        )
        print(line)
        journal().info(line)
        return ExitCode.OK
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    with store_of(config).locked(now) as state:
        issuance = judge_issuance(folder, environment, args.endpoint, context, state)
    decision = issuance.decision
    lines = _pre_report(folder.name, issuance.coming, decision)
    for line in lines:
        print(line)
    journal().info(lines[1])
    if not decision.servable:
        report = PlanReport([(folder.name, decision, issuance.plan)], now)
        sys.stdout.write(PLAN_RENDERERS[PlanFormat.ZONE](report))
    return EXIT_FOR_VERDICT[decision.verdict]


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
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    with store_of(config).locked(now) as state:
        done = serve_installed(
            installed,
            command,
            served=args.served,
            endpoints=args.endpoint,
            context=context,
            state=state,
        )
    outcome = done.outcome
    print_outcome(outcome, now)
    journal().info(summary(outcome))
    _print_staged(installed, done.staged, done.staged_error, outcome.observations)
    if outcome.action == Action.HELD:
        print(
            f"{installed.domain}: not running {' '.join(command) or 'any reload command'}: "
            "`dane-hook release` serves the chain and runs it once it is safe"
        )
    print_reloads(done.reloads)
    if done.returncode is None:
        return exit_for([outcome]) or probe_exit([outcome])
    return done.returncode or probe_exit([outcome])  # a DANE sender would refuse (issue 13)


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
