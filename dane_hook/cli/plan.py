"""`dane-hook plan`: which records to add now, when to serve the new chain, what to remove."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from dane_hook.cli.check import add_source_arguments, exit_of, print_warnings, request_of
from dane_hook.cli.lineage import config_of, settings_of
from dane_hook.config import Config
from dane_hook.errors import UsageError
from dane_hook.render.check import PLAN_RENDERERS, PlanFormat, PlanReport
from dane_hook.rollover.assess import (
    Candidate,
    CheckRequest,
    EnrolledInUse,
    enrolled_in_use,
    plan_chains,
)
from dane_hook.rollover.lineages import NotEnrolled
from dane_hook.rollover.state import StateStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument(
        "--cert-name",
        metavar="NAME",
        help="an enrolled lineage (certbot or acme.sh): the plan of its held chain, else of "
        "the chain it serves, at its endpoints",
    )
    parser.add_argument(
        "--format",
        choices=[f.value for f in PlanFormat],
        default=PlanFormat.ZONE.value,
        help="zone lines with the three steps as comments (default), the nsupdate script of "
        "step 1 (nsupdate-add) or of step 3 (nsupdate-remove), or JSON",
    )


def _lineages(config: Config, state_dir: Path) -> list[EnrolledInUse]:
    """The enrolled lineages' chains and staged keys, read without the lock (a question)."""
    return enrolled_in_use(replace(config, state_dir=state_dir), StateStore(state_dir).read())


def _lineage_request(
    args: argparse.Namespace, config: Config, lineages: list[EnrolledInUse]
) -> CheckRequest:
    """`--cert-name NAME`: its held chain (served next), else its served chain, judged at its
    endpoints with the served chain as the one served now."""
    if args.chain or args.cert or args.lineage:
        raise UsageError("give --cert-name or --chain/--cert/--lineage, not both")
    found = next((e for e in lineages if e.name == args.cert_name), None)
    if found is None or (found.served is None and found.held is None):
        raise NotEnrolled(
            f"{args.cert_name} is not enrolled (no served view)",
            "run dane-hook enroll (certbot) or acme.sh's reload wrapper first, or give --chain",
        )
    chain = found.held or found.served
    assert chain is not None
    label = f"{found.name} ({'held' if found.held is not None else 'served'})"
    return CheckRequest(
        candidates=(Candidate(label, chain),),
        current=found.served,
        endpoints=tuple(args.endpoint) or found.endpoints,
        ports=tuple(args.port or config.ports),
        settings=settings_of(args, config),
        state_dir=Path(args.state_dir) if args.state_dir else config.state_dir,
        strict=args.strict or config.strict,
    )


def execute(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc)
    config = config_of(args)
    state_dir = Path(args.state_dir) if args.state_dir else config.state_dir
    lineages = _lineages(config, state_dir)
    request = _lineage_request(args, config, lineages) if args.cert_name else request_of(args)
    result, plans = plan_chains(request, now, lineages)
    print_warnings(result)
    for problem in (p for lineage in lineages for p in lineage.problems):
        print(f"dane-hook: warning: {problem}", file=sys.stderr)
    report = PlanReport(
        [
            (c.candidate.label, c.decision, plan)
            for c, plan in zip(result.checked, plans, strict=True)
        ],
        now,
    )
    sys.stdout.write(PLAN_RENDERERS[PlanFormat(args.format)](report))
    return exit_of(result)
