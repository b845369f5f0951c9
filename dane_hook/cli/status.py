"""`dane-hook status`: per lineage, what is served, what is held and why, each verdict."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from dane_hook.cli.lineage import add_common_arguments, config_of, context_of, store_of
from dane_hook.exitcodes import ExitCode
from dane_hook.render.check import when
from dane_hook.render.records import SCHEMA_VERSION
from dane_hook.rollover.lineages import status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert-name", action="append", metavar="NAME", help="only this lineage")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    add_common_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    with store_of(config).locked(now) as state:
        found = status(context, state, args.cert_name, timeout=args.timeout)
    lineages = [entry.to_json() for entry in found]
    if args.format == "json":
        document = {"schema_version": SCHEMA_VERSION, "now": now.isoformat(), "lineages": lineages}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return ExitCode.OK
    if not lineages:
        print("no lineage is enrolled or configured")
    for entry in lineages:
        print(
            f"{entry['lineage']}: {'enrolled' if entry['enrolled'] else 'not enrolled (warn mode)'}"
        )
        if "served" in entry:
            served_entry = entry["served"]
            print(
                f"  served: version {served_entry['version']}, {served_entry['subject']}, "
                f"expires {when(datetime.fromisoformat(served_entry['not_after']))}"
            )
        if "held" in entry:
            h = entry["held"]
            earliest = f", earliest promotion {h['earliest']}" if h["earliest"] else ""
            print(f"  HELD since {h['since']}: {h['verdict']}: {h['reason']}{earliest}")
        else:
            print("  nothing held")
        for endpoint in entry["endpoints"]:
            print(f"  {endpoint['endpoint']} {endpoint['verdict']}: {endpoint['reason']}")
        if "next_renewal_note" in entry:
            print(f"  next renewal: {entry['next_renewal_note']}")
        if "renewal_window" in entry:
            print(f"  renewal window: {entry['renewal_window']['reason']}")
            for o in entry["next_renewal"]:
                covered = "covered" if o["covered"] else "NOT covered"
                print(f"  next renewal at {o['endpoint']}: {covered}: {o['reason']}")
            if entry["warning"]:
                print(f"dane-hook: warning: {entry['lineage']}: {entry['warning']}")
    return ExitCode.OK
