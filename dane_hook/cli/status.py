"""`dane-hook status`: per lineage, what is served, what is held and why, each verdict."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dane_hook.catalog import load_catalog
from dane_hook.certs.chain import ServedChain, not_after
from dane_hook.cli.check import coverage_by_endpoint
from dane_hook.cli.lineage import (
    add_common_arguments,
    config_of,
    context_of,
    enrollment_of,
    store_of,
)
from dane_hook.cli.pre import renewal_window
from dane_hook.config import Config
from dane_hook.errors import Error
from dane_hook.exitcodes import ExitCode
from dane_hook.render.check import when
from dane_hook.render.records import SCHEMA_VERSION
from dane_hook.rollover.observe import Observation
from dane_hook.rollover.promotion import chain_of, explicit_endpoints, judge, read_candidate
from dane_hook.rollover.renewal import ari_warning, outlook
from dane_hook.rollover.served_view import ServedView
from dane_hook.sources.certbot import Lineage, read_lineage
from dane_hook.tlsa.generate import certificate_record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert-name", action="append", metavar="NAME", help="only this lineage")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    add_common_arguments(parser)


def _renewal(
    config: Config,
    name: str,
    served: ServedChain,
    observations: Sequence[Observation],
    *,
    decision_hosts: dict[str, str],
    args: argparse.Namespace,
    now: datetime,
) -> dict[str, Any]:
    """The CA's renewal window (ARI) and whether the next renewal is covered."""
    try:
        lineage: Lineage | None = read_lineage(config.certbot_dir, name)
    except Error:
        lineage = None
    catalog = load_catalog(config.state_dir, now)
    coverage = coverage_by_endpoint(served, tuple(observations), catalog, now)
    outlooks = outlook(
        served,
        [o.published for o in observations],
        coverage,
        reuse_key=bool(lineage and lineage.reuse_key),
        hosts=decision_hosts,
        now=now,
    )
    start, reason = renewal_window(lineage, served, args.timeout)
    return {
        "renewal_window": {"start": start.isoformat() if start else None, "reason": reason},
        "next_renewal": [
            {"endpoint": o.endpoint, "covered": o.covered, "reason": o.reason} for o in outlooks
        ],
        "warning": ari_warning(start, outlooks, now),
    }


def execute(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    lineages: list[dict[str, Any]] = []
    with store_of(config).locked(now) as state:
        names = sorted(set(state.enrolled) | set(config.lineages) | set(state.held))
        for name in names:
            if args.cert_name and name not in args.cert_name:
                continue
            enrollment = enrollment_of(config, state, name)
            entry: dict[str, Any] = {"lineage": name, "enrolled": enrollment is not None}
            served = None
            if enrollment is not None:
                view = ServedView(Path(enrollment.served_dir))
                entry["served_dir"] = enrollment.served_dir
                if view.exists():
                    served = chain_of(view.read_current(), f"served {name}")
                    entry["served"] = {
                        "version": view.current,
                        "previous": view.previous,
                        "subject": served.leaf.subject.rfc4514_string(),
                        "not_after": not_after(served.leaf).isoformat(),
                        "tlsa_3_1_1": certificate_record(served.leaf, 3, 1, 1).to_text(),
                    }
            held = state.held.get(name)
            candidate = served
            if held is not None:
                entry["held"] = {
                    "version": held.version,
                    "since": held.since.isoformat(),
                    "verdict": held.verdict,
                    "reason": held.reason,
                    "earliest": held.earliest.isoformat() if held.earliest else None,
                }
                try:
                    candidate = chain_of(read_candidate(config, name, held.version), f"held {name}")
                except Error as exc:
                    entry["held"]["error"] = exc.diagnostics()
            if candidate is None:
                entry["endpoints"] = []
                lineages.append(entry)
                continue
            explicit = explicit_endpoints(config, name, enrollment)
            judged = judge(candidate, served, explicit, context, state)
            observations, hosts, decision = judged.observations, judged.hosts, judged.decision
            if served is not None and enrollment is not None and enrollment.source != "certbot":
                # acme.sh: `dane-hook acme-sh pre` judges the coming key before each issuance.
                entry["next_renewal_note"] = (
                    "checked by 'dane-hook acme-sh pre' before each issuance"
                )
            elif served is not None:
                entry.update(
                    _renewal(
                        config, name, served, observations, decision_hosts=hosts, args=args, now=now
                    )
                )
            entry["checked"] = "held candidate" if held is not None else "served chain"
            entry["verdict"] = decision.verdict.value
            entry["endpoints"] = [
                {"endpoint": d.endpoint, "verdict": d.verdict.value, "reason": d.reason}
                for d in decision.endpoints
            ]
            lineages.append(entry)
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
