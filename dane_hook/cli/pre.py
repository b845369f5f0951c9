"""`dane-hook pre`: certbot's pre-hook, a preflight over every lineage before renewals.

certbot runs it once per run, before any new key is made, with no lineage in its environment,
and only logs its exit status (a failing pre-hook does not stop the renewal).
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime, timezone
from pathlib import Path

from dane_hook.catalog import load_catalog
from dane_hook.certs.chain import ServedChain
from dane_hook.cli.check import coverage_by_endpoint
from dane_hook.cli.inputs import EXIT_FOR_VERDICT, worst_exit
from dane_hook.cli.lineage import (
    add_common_arguments,
    config_of,
    context_of,
    enrollment_of,
    journal,
    live_files,
    store_of,
)
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.promotion import chain_of, explicit_endpoints, judge
from dane_hook.rollover.renewal import ari_warning, outlook
from dane_hook.rollover.served_view import ServedView
from dane_hook.sources.certbot import Lineage, all_lineages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def renewal_window(
    lineage: Lineage | None, served: ServedChain, timeout: float
) -> tuple[datetime | None, str]:
    """The CA's ARI window start for the lineage (RFC 9773), or None, with one line."""
    if lineage is None or not lineage.server:
        return None, "no ACME server known for this lineage: no renewal window"
    from dane_hook.rollover.ari import renewal_window as ask

    issuer = served.issuers[0] if served.issuers else None
    # certbot trusts REQUESTS_CA_BUNDLE for its ACME server; so does this request.
    window, reason = ask(
        lineage.server,
        served.leaf,
        issuer,
        timeout=timeout,
        ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE"),
    )
    return (window.start if window else None), reason


def execute(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    codes: list[ExitCode] = []
    log = journal()
    catalog = load_catalog(config.state_dir, now)
    for warning in catalog.warnings:
        print(f"dane-hook: warning: {warning}")
    with store_of(config).locked(now) as state:
        for lineage in all_lineages(config.certbot_dir):
            enrollment = enrollment_of(config, state, lineage.name)
            view = ServedView(Path(enrollment.served_dir)) if enrollment else None
            if view is not None and view.exists():
                files = view.read_current()
            else:
                files = live_files(lineage)
            served = chain_of(files, f"served {lineage.name}")
            explicit = explicit_endpoints(config, lineage.name, enrollment)
            judged = judge(served, served, explicit, context, state)
            observations, hosts, decision = judged.observations, judged.hosts, judged.decision
            published = judged.published
            codes.append(EXIT_FOR_VERDICT[decision.verdict])
            line = f"{lineage.name}: the served chain is {decision.verdict.value}"
            print(line)
            log.info(line)
            for d in decision.endpoints:
                print(f"  {d.endpoint} {d.verdict.value}: {d.reason}")
            if lineage.reuse_key:
                print("  reuse_key is set: the renewal keeps the key, its 3 1 1 stays valid")
            else:
                print(
                    "  reuse_key is off: the next key is unknown until issuance, so only "
                    "issuer (2 1 1) records can cover the renewal"
                )
            coverage = coverage_by_endpoint(served, observations, catalog, now)
            outlooks = outlook(
                served, published, coverage, reuse_key=lineage.reuse_key, hosts=hosts, now=now
            )
            for o in outlooks:
                if o.covered:
                    print(f"  {o.endpoint}: the next renewal is covered: {o.reason}")
                    continue
                print(f"  {o.endpoint}: the next renewal is NOT covered: {o.reason}")
                if o.add:
                    print("    publish now, and wait 2 x TTL before renewing:")
                for record in o.add:
                    print(f"    {o.endpoint} {o.ttl or 3600} IN TLSA {record.to_text()}")
            start, reason = renewal_window(lineage, served, args.timeout)
            print(f"  renewal window: {reason}")
            too_soon = ari_warning(start, outlooks, now)
            if too_soon:
                print(f"dane-hook: warning: {lineage.name}: {too_soon}")
                log.warning(f"{lineage.name}: {too_soon}")
    return worst_exit(codes)
