"""`dane-hook pre`: certbot's pre-hook, a preflight over every lineage before renewals.

certbot runs it once per run, before any new key is made, with no lineage in its environment,
and only logs its exit status (a failing pre-hook does not stop the renewal).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from dane_hook.cli.lineage import (
    EXIT_FOR_VERDICT,
    add_common_arguments,
    config_of,
    context_of,
    enrollment_of,
    journal,
    store_of,
)
from dane_hook.decision import Publication, decide
from dane_hook.exitcodes import ExitCode
from dane_hook.matching import authenticate
from dane_hook.observe import endpoints_of, host_of, observe
from dane_hook.records import certificate_record
from dane_hook.served import ChainFiles, ServedView
from dane_hook.serving import chain_of
from dane_hook.sources.certbot import all_lineages
from dane_hook.tlsa import Usage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    codes: list[ExitCode] = []
    log = journal()
    with store_of(config).locked(now) as state:
        for lineage in all_lineages(config.certbot_dir):
            enrollment = enrollment_of(config, state, lineage.name)
            view = ServedView(Path(enrollment.served_dir)) if enrollment else None
            if view is not None and view.exists():
                files = view.read_current()
            else:
                files = ChainFiles.read(
                    *(lineage.live(k) for k in ("privkey", "cert", "chain", "fullchain"))
                )
            served = chain_of(files, f"served {lineage.name}")
            explicit = config.lineage(lineage.name).endpoints or (
                enrollment.endpoints if enrollment else ()
            )
            observations = observe(
                endpoints_of(served, explicit, config.ports), context.settings, state, now
            )
            hosts = {o.endpoint: host_of(o.endpoint) for o in observations}
            published = [o.published for o in observations]
            decision = decide(served, served, published, now, strict=config.strict, host_of=hosts)
            codes.append(EXIT_FOR_VERDICT[decision.verdict])
            line = f"{lineage.name}: the served chain is {decision.verdict.value}"
            print(line)
            log.info(line)
            for d in decision.endpoints:
                print(f"  {d.endpoint} {d.verdict.value}: {d.reason}")
            if lineage.reuse_key:
                print("  reuse_key is set: the renewal keeps the key, its 3 1 1 stays valid")
                continue
            print(
                "  reuse_key is off: the next key is unknown until issuance, so only issuer "
                "(2 1 1) records can cover the renewal"
            )
            if not served.issuers:
                print("  the served chain has no issuer on its path: serve the full chain")
                continue
            issuer_record = certificate_record(served.issuers[0], 2, 1, 1)
            for observation in observations:
                p = observation.published
                if p.status is not Publication.SECURE:
                    continue
                covered = any(
                    r.usage == Usage.DANE_TA
                    and authenticate(served, [r], host=hosts[p.endpoint], now=now).authenticated
                    for r in p.records
                )
                if covered:
                    print(f"  {p.endpoint}: covered by a published 2 x x record")
                else:
                    print(
                        f"  {p.endpoint}: NOT covered; publish, and wait 2 x TTL before renewing:"
                    )
                    print(f"    {p.endpoint} {p.ttl or 3600} IN TLSA {issuer_record.to_text()}")
    worst = [ExitCode.OK, ExitCode.WAIT, ExitCode.UNKNOWN, ExitCode.UNSAFE]
    return max(codes, key=worst.index) if codes else ExitCode.OK
