"""`dane-hook rollback`: serve the previous version of a lineage again, at once."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from dane_hook.cli.lineage import (
    add_common_arguments,
    config_of,
    context_of,
    store_of,
)
from dane_hook.cli.publish import print_reports
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.lineages import rollback


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cert-name",
        required=True,
        metavar="NAME",
        help="the enrolled lineage (certbot's --cert-name, acme.sh's domain) to serve the "
        "previous version of",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="serve the previous chain even when its records were retired (with a warning)",
    )
    add_common_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = datetime.now(timezone.utc)
    with store_of(config).locked(now) as state:
        context = context_of(args, config, now)
        rolled = rollback(config, state, args.cert_name, context=context, force=args.force)
    for warning in rolled.warnings:
        print(f"dane-hook: warning: {warning}", file=sys.stderr)
    if rolled.held:
        print_reports([rolled.publication] if rolled.publication else [])
        print(
            f"{args.cert_name}: HELD version {rolled.version}: its records were retired and are "
            "published again; 'dane-hook release' serves it once safe (--force: serve now)"
        )
        return ExitCode.WAIT
    print(f"{args.cert_name}: rolled back; serving version {rolled.version}")
    for result in rolled.reloads:
        print(f"  reload {' '.join(result.command)}: status {result.returncode}")
    # Like acme.sh's reloadcmd wrapper: a failed reload passes its status through.
    return next((r.returncode for r in rolled.reloads if r.returncode != 0), ExitCode.OK)
