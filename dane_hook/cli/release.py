"""`dane-hook release`: promote held candidates that have become safe (timer, and after deploy)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from dane_hook.cli.lineage import (
    add_common_arguments,
    config_of,
    context_of,
    exit_for,
    journal,
    print_outcome,
    store_of,
    summary,
)
from dane_hook.cli.publish import exit_for_reports, print_reports
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.promotion import probe_exit
from dane_hook.rollover.publishing import timer_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert-name", action="append", metavar="NAME", help="only this lineage")
    add_common_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    with store_of(config).locked(now) as state:
        run = timer_run(context, state, args.cert_name)
    outcomes = list(run.outcomes)
    log = journal()
    for outcome in outcomes:
        print_outcome(outcome, now)
        log.info(summary(outcome))
    print_reports(run.publications)
    if not outcomes:
        print("nothing is held")
    # A failed publication has its own status (6): records did not go out, retried next run.
    failed = exit_for_reports(run.publications)
    failed = failed or probe_exit(outcomes)  # a DANE sender would refuse (issue 13)
    return failed if failed != ExitCode.OK else exit_for(outcomes)
