"""`dane-hook pre`: certbot's pre-hook, a preflight over every lineage before renewals.

certbot runs it once per run, before any new key is made, with no lineage in its environment,
and only logs its exit status (a failing pre-hook does not stop the renewal).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from dane_hook.catalog import load_catalog
from dane_hook.cli.inputs import EXIT_FOR_VERDICT
from dane_hook.cli.lineage import add_common_arguments, config_of, context_of, journal, store_of
from dane_hook.exitcodes import ExitCode, worst_exit
from dane_hook.rollover.lineages import preflight


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


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
        found = preflight(context, state, catalog, timeout=args.timeout)
    for entry in found:
        lineage, decision, renewal = entry.lineage, entry.decision, entry.renewal
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
        for o in renewal.outlooks:
            if o.covered:
                print(f"  {o.endpoint}: the next renewal is covered: {o.reason}")
                continue
            print(f"  {o.endpoint}: the next renewal is NOT covered: {o.reason}")
            if o.add:
                # certbot runs the pre-hook just before it gets a certificate it is renewing
                # now (main.py _get_and_save_cert): nobody can wait; the deploy hook holds.
                print(
                    "    publish now: for an enrolled lineage the deploy hook holds the renewed "
                    "chain until these are 2 x TTL old, and dane-hook release serves it then:"
                )
            for record in o.add:
                print(f"    {o.endpoint} {o.ttl or 3600} IN TLSA {record.to_text()}")
        print(f"  renewal window: {renewal.window_reason}")
        if renewal.warning:
            print(f"dane-hook: warning: {lineage.name}: {renewal.warning}")
            log.warning(f"{lineage.name}: {renewal.warning}")
    return worst_exit(codes)
