"""`dane-hook plan`: which records to add now, when to serve the new chain, what to remove."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from dane_hook.cli.check import add_source_arguments, exit_of, print_warnings, request_of
from dane_hook.render.check import PLAN_RENDERERS, PlanFormat, PlanReport
from dane_hook.rollover.assess import plan_chains


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
    result, plans = plan_chains(request_of(args), now)
    print_warnings(result)
    report = PlanReport(
        [
            (c.candidate.label, c.decision, plan)
            for c, plan in zip(result.checked, plans, strict=True)
        ],
        now,
    )
    sys.stdout.write(PLAN_RENDERERS[PlanFormat(args.format)](report))
    return exit_of(result)
