"""`dane-hook check`: may this chain be served now, given what DNS securely publishes?"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dane_hook.certs.chain import ServedChain, build_chain
from dane_hook.cli.inputs import (
    EXIT_FOR_VERDICT,
    add_endpoint_argument,
    read_chain,
    worst_exit,
)
from dane_hook.cli.lineage import add_lookup_arguments, config_of, settings_of
from dane_hook.errors import UsageError
from dane_hook.render.check import CHECK_RENDERERS, CheckFormat, CheckReport
from dane_hook.rollover.decision import Decision, Publication, decide
from dane_hook.rollover.observe import Observation, endpoints_of, host_of, observe
from dane_hook.rollover.state import StateStore
from dane_hook.sources.files import load_certificates, load_public_key
from dane_hook.storage import DEFAULT_STATE_DIR
from dane_hook.tlsa.record import Usage

if TYPE_CHECKING:  # the catalog is imported only when DANE-TA records are published
    from dane_hook.catalog import Catalog
    from dane_hook.catalog.coverage import Coverage


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


@dataclass(frozen=True)
class Candidate:
    label: str
    chain: ServedChain


def candidates(args: argparse.Namespace) -> list[Candidate]:
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
        return found
    served, _ = read_chain(args)
    assert served is not None  # --chain or --cert was given
    return [Candidate(args.chain or args.cert, served)]


def current_chain(args: argparse.Namespace) -> ServedChain | None:
    """The chain served now (--current), if given."""
    if not args.current:
        return None
    return build_chain(load_certificates(args.current), source=args.current)


@dataclass(frozen=True)
class Checked:
    candidate: Candidate
    decision: Decision
    observations: tuple[Observation, ...]
    coverage: dict[str, Coverage]
    """Endpoint -> how its DANE-TA records cover the CA's intermediates (secure ones only)."""


def coverage_by_endpoint(
    chain: ServedChain, observations: tuple[Observation, ...], catalog: Catalog, now: datetime
) -> dict[str, Coverage]:
    from dane_hook.catalog.coverage import coverage_of, issuers_for

    issuers = issuers_for(chain, catalog, now)
    return {
        o.endpoint: coverage_of(o.endpoint, issuers, o.published.records, catalog)
        for o in observations
        if o.published.status is Publication.SECURE
    }


def run_checks(args: argparse.Namespace, now: datetime) -> tuple[list[Checked], list[str]]:
    """Observe every endpoint of every candidate once, then decide for each candidate."""
    # The command line over the configuration file: what is not given comes from there.
    config = config_of(args)
    args.state_dir = str(config.state_dir)
    args.port = args.port or list(config.ports)
    args.strict = args.strict or config.strict
    found = candidates(args)
    current = current_chain(args)
    settings = settings_of(args, config)
    ports = args.port or [25]
    wanted = {c.label: endpoints_of(c.chain, args.endpoint, ports) for c in found}
    every = list(dict.fromkeys(e for endpoints in wanted.values() for e in endpoints))
    with StateStore(args.state_dir).locked(now) as state:
        # Several cores help only a large check (thousands of answers to parse).
        processes = min(os.cpu_count() or 1, 4)
        observed = {
            o.endpoint: o for o in observe(every, settings, state, now, processes=processes)
        }
        warnings = list(state.warnings)
    # The CA catalog only matters where DANE-TA records are published; loading it costs more
    # than a whole lookup, so a check of DANE-EE-only endpoints does not pay for it.
    catalog = None
    if any(
        o.published.status is Publication.SECURE
        and any(r.usage == Usage.DANE_TA for r in o.published.records)
        for o in observed.values()
    ):
        from dane_hook.catalog import load_catalog

        catalog = load_catalog(args.state_dir, now)
        warnings += catalog.warnings
    checked = []
    for candidate in found:
        observations = tuple(observed[e] for e in wanted[candidate.label])
        decision = decide(
            candidate.chain,
            current,
            [o.published for o in observations],
            now,
            strict=args.strict,
            host_of={o.endpoint: host_of(o.endpoint) for o in observations},
        )
        coverage = (
            coverage_by_endpoint(candidate.chain, observations, catalog, now) if catalog else {}
        )
        checked.append(Checked(candidate, decision, observations, coverage))
    return checked, warnings


def exit_of(checked: list[Checked]) -> int:
    return worst_exit([EXIT_FOR_VERDICT[c.decision.verdict] for c in checked])


def execute(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc)
    checked, warnings = run_checks(args, now)
    for warning in warnings:
        print(f"dane-hook: warning: {warning}", file=sys.stderr)
    report = CheckReport(
        [(c.candidate.label, c.decision, c.observations) for c in checked],
        now,
        {(c.candidate.label, e): cover for c in checked for e, cover in c.coverage.items()},
    )
    sys.stdout.writelines(CHECK_RENDERERS[CheckFormat(args.format)](report))
    return exit_of(checked)
