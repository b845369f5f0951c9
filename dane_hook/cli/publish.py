"""`dane-hook publish`: add and retire dane-hook's own TLSA records as due now."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime, timezone

from dane_hook.cli.lineage import add_common_arguments, config_of, context_of, journal, store_of
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.publishing import PublishReport, publish_lineages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert-name", action="append", metavar="NAME", help="only this lineage")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the exact changes, send nothing"
    )
    add_common_arguments(parser)


def print_reports(reports: Sequence[PublishReport]) -> None:
    """Changes on stdout (`+`/`-` zone lines); stale records, warnings and failures on stderr."""
    log = journal()
    for report in reports:
        verb = "would send" if report.dry_run else "sent"
        if report.failed:
            verb = "not done"
        for change in report.changes:
            print(f"{report.lineage}: {verb} via {report.publisher}: {change}")
        for line in report.waiting:
            print(f"{report.lineage}: waiting: {line}")
        for line in (*report.stale, *report.warnings):
            print(f"dane-hook: {report.lineage}: {line}", file=sys.stderr)
        if report.error is not None:
            line = f"{report.lineage}: publishing FAILED: {report.error}; retried at the next run"
            print(f"dane-hook: {line}", file=sys.stderr)
            log.warning(line)
        elif report.changes and not report.dry_run:
            log.info(
                f"{report.lineage}: {len(report.changes)} change(s) sent via {report.publisher}"
            )


def exit_for_reports(reports: Sequence[PublishReport]) -> ExitCode:
    return ExitCode.PUBLISH_FAILED if any(r.failed for r in reports) else ExitCode.OK


def execute(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    with store_of(config).locked(now) as state:
        reports = publish_lineages(context, state, args.cert_name, dry_run=args.dry_run)
    print_reports(reports)
    if not reports:
        print("no enrolled lineage has a publisher")
    return exit_for_reports(reports)
