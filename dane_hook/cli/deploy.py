"""`dane-hook deploy`: certbot's deploy hook. Promote the renewed chain, or hold it back.

certbot runs it once per renewed lineage, after live/NAME already points at the new version,
with RENEWED_LINEAGE (the live/NAME directory) and RENEWED_DOMAINS; its exit status is only
logged (certbot/_internal/hooks.py), so the outcome also goes to syslog.
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime, timezone
from pathlib import Path

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
from dane_hook.errors import UsageError
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.lineages import deploy
from dane_hook.rollover.promotion import probe_exit
from dane_hook.sources.certbot import lineage_of_live_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lineage",
        metavar="DIR",
        help="certbot's live/NAME directory (default: $RENEWED_LINEAGE, set by certbot)",
    )
    add_common_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    live = args.lineage or os.environ.get("RENEWED_LINEAGE")
    if not live:
        raise UsageError(
            "no lineage: RENEWED_LINEAGE is not set",
            "run it as certbot's deploy hook, or give --lineage /etc/letsencrypt/live/NAME",
        )
    config = config_of(args)
    lineage = lineage_of_live_dir(Path(live))
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    log = journal()
    with store_of(config).locked(now) as state:
        deployed = deploy(context, state, lineage)
    for result in (deployed.outcome, *deployed.released):
        print_outcome(result, now)
        log.info(summary(result))
    reports = [deployed.publication] if deployed.publication is not None else []
    print_reports(reports)
    failed = exit_for_reports(reports)
    # A probe after a promotion that a DANE sender would refuse is exit 1 (issue 13).
    failed = failed or probe_exit([deployed.outcome, *deployed.released])
    return failed if failed != ExitCode.OK else exit_for([deployed.outcome])
