"""`dane-hook check`: may this chain be served now, given what DNS securely publishes?"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dane_hook.certs.chain import ServedChain, build_chain
from dane_hook.cli.inputs import (
    EXIT_FOR_VERDICT,
    add_endpoint_argument,
    read_chain,
)
from dane_hook.cli.lineage import add_lookup_arguments, config_of, settings_of
from dane_hook.cli.probe import add_probe_arguments, limits_of
from dane_hook.errors import UsageError
from dane_hook.exitcodes import ExitCode, worst_exit
from dane_hook.render.check import CHECK_RENDERERS, CheckFormat, CheckReport
from dane_hook.rollover.assess import Candidate, CheckRequest, CheckResult, check_chains
from dane_hook.sources.files import load_certificates, load_public_key
from dane_hook.storage import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from dane_hook.probe.report import ProbeReport


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chain", metavar="FILE", help="the chain to serve (fullchain.pem)")
    parser.add_argument("--cert", metavar="FILE", help="the certificate (with --key)")
    parser.add_argument(
        "--key", metavar="FILE", help="its private key; only the public part is used"
    )
    parser.add_argument(
        "--lineage",
        metavar="DIR",
        action="append",
        help="a directory with fullchain.pem and privkey.pem (certbot's live/NAME); repeatable",
    )
    add_endpoint_argument(parser)
    parser.add_argument(
        "--port", type=int, action="append", help="ports for discovered endpoints (default 25)"
    )
    add_lookup_arguments(parser)
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help=f"where first-seen times are kept (default: the configuration's, {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="treat an incomplete RRset (RFC 7671 §8) as unsafe",
    )
    parser.add_argument(
        "--current", metavar="FILE", help="the chain served now (its records count as in use)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument(
        "--format", choices=[f.value for f in CheckFormat], default=CheckFormat.TEXT.value
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="also probe every address of the endpoints: what a DANE sender sees on the wire",
    )
    add_probe_arguments(parser)


def candidates(args: argparse.Namespace) -> tuple[Candidate, ...]:
    given = [bool(args.chain or args.cert), bool(args.lineage)]
    if sum(given) != 1:
        raise UsageError("give --chain (or --cert with --key), or --lineage DIR")
    if args.lineage:
        found = []
        for directory in args.lineage:
            folder = Path(directory)
            key = load_public_key(folder / "privkey.pem")
            chain = build_chain(
                load_certificates(folder / "fullchain.pem"), key, source=str(folder)
            )
            found.append(Candidate(folder.name, chain))
        return tuple(found)
    served, _ = read_chain(args)
    assert served is not None  # --chain or --cert was given
    return (Candidate(args.chain or args.cert, served),)


def current_chain(args: argparse.Namespace) -> ServedChain | None:
    """The chain served now (--current), if given."""
    if not args.current:
        return None
    return build_chain(load_certificates(args.current), source=args.current)


def request_of(args: argparse.Namespace) -> CheckRequest:
    """The command line over the configuration file: what is not given comes from there."""
    config = config_of(args)
    return CheckRequest(
        candidates=candidates(args),
        current=current_chain(args),
        endpoints=tuple(args.endpoint),
        ports=tuple(args.port or config.ports),
        settings=settings_of(args, config),
        state_dir=Path(args.state_dir) if args.state_dir else config.state_dir,
        strict=args.strict or config.strict,
    )


def print_warnings(result: CheckResult) -> None:
    for warning in result.warnings:
        print(f"dane-hook: warning: {warning}", file=sys.stderr)


def exit_of(result: CheckResult) -> int:
    return worst_exit([EXIT_FOR_VERDICT[c.decision.verdict] for c in result.checked])


def execute(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc)
    result = check_chains(request_of(args), now)
    print_warnings(result)
    checked = result.checked
    report = CheckReport(
        [(c.candidate.label, c.decision, c.observations) for c in checked],
        now,
        {(c.candidate.label, e): cover for c in checked for e, cover in c.coverage.items()},
    )
    rendered = "".join(CHECK_RENDERERS[CheckFormat(args.format)](report))
    code = exit_of(result)
    if not args.probe:
        sys.stdout.write(rendered)
        return code
    probed = probe_checked(args, result)
    if CheckFormat(args.format) is CheckFormat.JSON:
        # The same fields as `probe --format json` (probe.schema.json), under "probe".
        document = json.loads(rendered)
        document["probe"] = probed.to_json()
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(rendered)
        sys.stdout.write("probe:\n" + "".join(f"  {line}\n" for line in probed.lines()))
    return worst_exit([ExitCode(code), probed.exit_code()])


def probe_checked(args: argparse.Namespace, result: CheckResult) -> ProbeReport:
    """The addresses of every checked endpoint, probed and judged."""
    from dane_hook.probe.report import ProbeSettings, probe_endpoints

    limits, budget = limits_of(args)
    config = config_of(args)
    lookup = settings_of(args, config)
    endpoints = [o.endpoint for c in result.checked for o in c.observations]
    settings = ProbeSettings(lookup.resolver, lookup.timeout, lookup.tries, limits, budget)
    return probe_endpoints(list(dict.fromkeys(endpoints)), settings)
