"""`dane-hook probe`: what each MX address presents on the wire, and would a DANE sender deliver.

DOMAIN: its MX hosts (RFC 5321 §5.1), each host's A and AAAA, at the given ports; --endpoint:
the addresses of a TLSA endpoint at its port; --cert-name: a lineage's endpoints, compared with
its served view. The exit status is the worst address's (0 delivered, 1 a DANE sender refuses,
4 bogus or no answer).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from dane_hook.cli.lineage import (
    add_common_arguments,
    config_of,
    context_of,
    store_of,
)
from dane_hook.errors import UsageError
from dane_hook.exitcodes import worst_exit
from dane_hook.probe.wire import Limits


def add_probe_arguments(parser: argparse.ArgumentParser) -> None:
    """How long the probe may take: shared with `check --probe` (and `status --probe`)."""
    parser.add_argument(
        "--probe-timeout",
        type=float,
        default=Limits().deadline,
        metavar="SECONDS",
        help=f"seconds for the exchange with one address (default {Limits().deadline:g})",
    )
    parser.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help="seconds for the whole run (default: the --probe-timeout; addresses run side by side)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "domain", nargs="?", metavar="DOMAIN", help="a mail domain: its MX hosts are probed"
    )
    parser.add_argument(
        "--cert-name",
        action="append",
        default=[],
        metavar="NAME",
        help="a lineage; repeatable",
    )
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="E",
        help="_25._tcp.mx.example.com or mx.example.com[:PORT]; repeatable",
    )
    parser.add_argument(
        "--port",
        type=int,
        action="append",
        help="ports of DOMAIN's MX hosts; repeatable (default: the configuration's, 25)",
    )
    parser.add_argument("--format", choices=["text", "json"], default="text")
    add_probe_arguments(parser)
    add_common_arguments(parser)


def limits_of(args: argparse.Namespace) -> tuple[Limits, float | None]:
    if args.probe_timeout <= 0 or (args.budget is not None and args.budget <= 0):
        raise UsageError("--probe-timeout and --budget must be above 0")
    deadline = float(args.probe_timeout)
    # One read or connect never waits longer than the whole exchange may take.
    limits = Limits(
        connect_timeout=min(Limits().connect_timeout, deadline),
        read_timeout=min(Limits().read_timeout, deadline),
        deadline=deadline,
    )
    return limits, args.budget


def _text(sections: Sequence[tuple[str, Sequence[str]]]) -> str:
    out: list[str] = []
    for title, lines in sections:
        if title:
            out.append(f"{title}:")
        out += [f"  {line}" if title else line for line in lines]
        if not lines:
            out.append("  nothing to probe" if title else "nothing to probe")
    return "".join(f"{line}\n" for line in out)


def execute(args: argparse.Namespace) -> int:
    from dane_hook.probe.report import (
        SCHEMA_VERSION,
        ProbeSettings,
        probe_targets,
        targets_of_domain,
        targets_of_endpoints,
    )
    from dane_hook.rollover.observe import parse_endpoint

    given = [bool(args.domain), bool(args.endpoint), bool(args.cert_name)]
    if sum(given) != 1:
        raise UsageError("give one of DOMAIN, --endpoint E or --cert-name NAME")
    limits, budget = limits_of(args)
    config = config_of(args)
    now = datetime.now(timezone.utc)
    context = context_of(args, config, now)
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "now": now.isoformat()}
    if args.cert_name:
        from dane_hook.rollover.probing import probe_lineages  # the lineage stack, only here

        # Read only: the probe changes nothing, so it takes no lock and writes no state.
        state = store_of(config).read()
        probes = probe_lineages(context, state, args.cert_name, limits=limits, budget=budget)
        codes = [p.report.exit_code() for p in probes]
        sections = [(p.lineage, p.report.lines()) for p in probes]
        addresses = [
            {"lineage": p.lineage, **a} for p in probes for a in p.report.to_json()["addresses"]
        ]
        problems = [line for p in probes for line in p.report.problems]
        refuses = any(p.report.refuses for p in probes)
    else:
        settings = ProbeSettings(
            context.settings.resolver,
            context.settings.timeout,
            context.settings.tries,
            limits,
            budget,
        )
        if args.domain:
            found = targets_of_domain(args.domain, tuple(args.port or config.ports), settings)
            title = args.domain.rstrip(".")
        else:
            endpoints = [parse_endpoint(e) for e in args.endpoint]
            found = targets_of_endpoints(list(dict.fromkeys(endpoints)), settings)
            title = ""
        report = probe_targets(found, settings, now=now)
        codes = [report.exit_code()]
        sections = [(title, report.lines())]
        body = report.to_json()
        addresses, problems, refuses = body["addresses"], body["problems"], body["refuses"]
    code = worst_exit(codes)
    if args.format == "json":
        document.update(
            exit_status=int(code), refuses=refuses, addresses=addresses, problems=problems
        )
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(_text(sections))
    return int(code)
