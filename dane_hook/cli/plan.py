"""`dane-hook plan`: which records to add now, when to serve the new chain, what to remove."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from dane_hook.cli.check import add_source_arguments, current_chain, exit_of, run_checks
from dane_hook.render.check import PLAN_RENDERERS, PlanFormat, PlanReport
from dane_hook.rollover.observe import host_of
from dane_hook.rollover.plan import make_plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument(
        "--format",
        choices=[f.value for f in PlanFormat],
        default=PlanFormat.ZONE.value,
        help="zone lines with the three steps as comments (default), the nsupdate script of "
        "step 1 (nsupdate-add) or of step 3 (nsupdate-remove), or JSON",
    )


def execute(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc)
    checked, warnings = run_checks(args, now)
    for warning in warnings:
        print(f"dane-hook: warning: {warning}", file=sys.stderr)
    current = current_chain(args)
    plans = []
    for c in checked:
        published = [o.published for o in c.observations]
        # The name a DANE-TA match must cover is the endpoint's host (RFC 7672 §3.2.3).
        hosts = {o.endpoint: host_of(o.endpoint) for o in c.observations}
        plan = make_plan(
            c.candidate.chain,
            [],
            published,
            c.decision,
            now,
            host_of=hosts,
            coverage=c.coverage,
            current=current,
        )
        plans.append((c.candidate.label, c.decision, plan))
    sys.stdout.write(PLAN_RENDERERS[PlanFormat(args.format)](PlanReport(plans, now)))
    return exit_of(checked)
