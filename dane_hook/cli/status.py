"""`dane-hook status`: per lineage, what is served, what is held and why, each verdict, and the
warnings monitoring is given, as text, JSON, a Nagios/Icinga plugin line or Prometheus text."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dane_hook.cli.inputs import EXIT_FOR_VERDICT
from dane_hook.cli.lineage import (
    add_common_arguments,
    config_of,
    context_of,
    store_of,
)
from dane_hook.errors import BadInput, Error, UsageError
from dane_hook.exitcodes import ExitCode, worst_exit
from dane_hook.render.check import when
from dane_hook.render.monitoring import NagiosState, Thresholds, nagios, prometheus
from dane_hook.render.records import SCHEMA_VERSION
from dane_hook.rollover.health import (
    DEFAULT_RRSIG_DAYS,
    DEFAULT_TIMER_PERIOD,
    Health,
    LineageHealth,
    Options,
    assess,
)
from dane_hook.rollover.lineages import LineageStatus, status
from dane_hook.storage import write_atomically

if TYPE_CHECKING:
    from dane_hook.probe.report import ProbeReport


class StatusFormat(str, Enum):
    TEXT = "text"
    JSON = "json"
    NAGIOS = "nagios"
    PROMETHEUS = "prometheus"


DEFAULT_TEXTFILE = "/var/lib/prometheus/node-exporter/dane-hook.prom"
"""Where Debian's prometheus-node-exporter reads textfile-collector files from."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert-name", action="append", metavar="NAME", help="only this lineage")
    parser.add_argument(
        "--format",
        choices=[f.value for f in StatusFormat],
        help="text (default), json, nagios (a Monitoring Plugins line, exit 0-3) or prometheus "
        "(text exposition format)",
    )
    parser.add_argument(
        "--probe", action="store_true", help="also probe every address of each lineage"
    )
    parser.add_argument(
        "--textfile",
        metavar="PATH",
        help="also write the Prometheus text to PATH atomically, for node_exporter's textfile "
        f"collector (e.g. {DEFAULT_TEXTFILE}); nothing on stdout unless --format is given",
    )
    defaults = Thresholds()
    limits = parser.add_argument_group("nagios thresholds")
    limits.add_argument(
        "--expiry-warn-days",
        type=float,
        default=defaults.expiry_warn_days,
        metavar="DAYS",
        help="WARNING when a served certificate expires within DAYS (default %(default)s)",
    )
    limits.add_argument(
        "--expiry-crit-days",
        type=float,
        default=defaults.expiry_crit_days,
        metavar="DAYS",
        help="CRITICAL when a served certificate expires within DAYS (default %(default)s)",
    )
    limits.add_argument(
        "--held-warn-hours",
        type=float,
        default=defaults.held_warn_hours,
        metavar="HOURS",
        help="WARNING when a chain has been held HOURS (default %(default)s)",
    )
    limits.add_argument(
        "--held-crit-hours",
        type=float,
        default=defaults.held_crit_hours,
        metavar="HOURS",
        help="CRITICAL when a chain has been held HOURS (default %(default)s)",
    )
    parser.add_argument(
        "--rrsig-days",
        type=int,
        default=DEFAULT_RRSIG_DAYS,
        metavar="DAYS",
        help="warn when the RRSIG over a TLSA RRset expires within DAYS (default %(default)s)",
    )
    parser.add_argument(
        "--timer-minutes",
        type=float,
        default=DEFAULT_TIMER_PERIOD.total_seconds() / 60,
        metavar="MINUTES",
        help="the release timer's period, for the lifetime warning (default %(default)g)",
    )
    parser.add_argument(
        "--acme-sh-home",
        metavar="DIR",
        help="acme.sh's home (e.g. /root/.acme.sh): read each acme.sh lineage's staged next key "
        "and next renewal time there",
    )
    add_common_arguments(parser)


def _thresholds(args: argparse.Namespace) -> Thresholds:
    limits = Thresholds(
        args.expiry_warn_days, args.expiry_crit_days, args.held_warn_hours, args.held_crit_hours
    )
    if limits.expiry_crit_days > limits.expiry_warn_days:
        raise UsageError("--expiry-crit-days must not be above --expiry-warn-days")
    if limits.held_crit_hours < limits.held_warn_hours:
        raise UsageError("--held-crit-hours must not be below --held-warn-hours")
    return limits


def execute(args: argparse.Namespace) -> int:
    chosen = StatusFormat(args.format) if args.format else None
    try:
        return _execute(args, chosen)
    except Error as exc:
        if chosen is not StatusFormat.NAGIOS:
            raise
        # Monitoring Plugins guidelines: a plugin that cannot check says UNKNOWN (3).
        sys.stdout.write(f"DANE-HOOK UNKNOWN: {exc.diagnostics().replace('|', '/')}\n")
        return NagiosState.UNKNOWN


def _execute(args: argparse.Namespace, chosen: StatusFormat | None) -> int:
    limits = _thresholds(args)
    if args.rrsig_days < 0 or args.timer_minutes < 0:
        raise UsageError("--rrsig-days and --timer-minutes must not be negative")
    options = Options(
        args.rrsig_days,
        timedelta(minutes=args.timer_minutes),
        Path(args.acme_sh_home) if args.acme_sh_home else None,
    )
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    with store_of(config).locked(now) as state:
        found = status(context, state, args.cert_name, timeout=args.timeout)
        health = assess(found, context=context, state=state, options=options)
        failed = any(e.verdict == "unknown" for h in health.lineages for e in h.endpoints)
        if not failed and not args.cert_name:
            # Every lineage observed without a lookup failure: monitoring's last success.
            state.last_success = now
            health = replace(health, last_success=now)
    probes: dict[str, ProbeReport] = {}
    if args.probe:  # after the lock: the probe reads the state and changes nothing
        from dane_hook.rollover.probing import probe_lineages

        probes = {p.lineage: p.report for p in probe_lineages(context, state, args.cert_name)}
    if args.textfile:
        _write_textfile(Path(args.textfile), prometheus(health))
    shown = chosen or (None if args.textfile else StatusFormat.TEXT)
    if shown is StatusFormat.NAGIOS:
        line, state_now = nagios(health, limits)
        sys.stdout.write(line)
        return state_now
    if shown is StatusFormat.PROMETHEUS:
        sys.stdout.write(prometheus(health))
    elif shown is StatusFormat.JSON:
        document = {
            "schema_version": SCHEMA_VERSION,
            "now": now.isoformat(),
            "last_success": health.last_success.isoformat() if health.last_success else None,
            "lineages": [
                {
                    **_json_entry(e, h),
                    **({"probe": probes[e.lineage].to_json()} if e.lineage in probes else {}),
                }
                for e, h in zip(found, health.lineages, strict=True)
            ],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif shown is StatusFormat.TEXT:
        _print_text(found, health)
        for name, report in probes.items():
            print(f"{name}: probe:" + "".join(f"\n  {line}" for line in report.lines()))
    return worst_exit([exit_code(found), *(r.exit_code() for r in probes.values())])


def exit_code(found: list[LineageStatus]) -> ExitCode:
    """The worst state shown (README, exit status): a held chain exits with its verdict's
    code, a served chain that fails with 1; unsafe over unknown over wait over ok."""
    return worst_exit(
        [EXIT_FOR_VERDICT[e.decision.verdict.value] for e in found if e.decision is not None]
    )


def _write_textfile(path: Path, text: str) -> None:
    # node_exporter's textfile collector reads only *.prom files: the temporary file
    # (.NAME.XXXX) is never read half-written, the rename replaces the old file at once.
    try:
        write_atomically(path, text.encode(), mode=0o644)
    except OSError as exc:
        raise BadInput(
            f"--textfile {path}: cannot be written ({exc.strerror or exc})",
            "give a file in an existing directory that this user may write",
        ) from exc


def _json_entry(entry: LineageStatus, health: LineageHealth) -> dict[str, Any]:
    document = entry.to_json()
    by_endpoint = {e.endpoint: e for e in health.endpoints}
    for item in document["endpoints"]:
        seen = by_endpoint.get(item["endpoint"])
        if seen is None:
            continue
        item["next_renewal_covered"] = seen.next_renewal_covered
        item["stale_records"] = seen.stale
        item["rrsig_expires"] = seen.rrsig_expires.isoformat() if seen.rrsig_expires else None
        item["probe"] = seen.probe
    document["warnings"] = [w.to_json() for w in health.warnings]
    return document


def _print_text(found: list[LineageStatus], health: Health) -> None:
    if not found:
        print("no lineage is enrolled or configured")
    for status_entry, lineage_health in zip(found, health.lineages, strict=True):
        entry = status_entry.to_json()
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
        for warning in lineage_health.warnings:
            where = f" {warning.endpoint}" if warning.endpoint else ""
            print(f"  WARNING ({warning.kind.value}){where}: {warning.message}")
    if health.last_success is not None:
        print(f"last successful run: {when(health.last_success)}")
