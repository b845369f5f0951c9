"""`dane-hook records`: the TLSA records to publish for a certificate, chain or key."""

from __future__ import annotations

import argparse
import sys

from dane_hook.certs.chain import ServedChain
from dane_hook.cli.inputs import add_chain_arguments, add_owner_arguments, owners, read_chain
from dane_hook.errors import UsageError
from dane_hook.exitcodes import ExitCode
from dane_hook.render.records import RECORDS_RENDERERS, RecordsFormat, RecordsOutput
from dane_hook.tlsa.generate import RecordSource, chain_records, key_records, parse_params
from dane_hook.tlsa.record import u_label_form

DEFAULT_TTL = 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_chain_arguments(parser)
    add_owner_arguments(parser)
    parser.add_argument(
        "--ttl",
        type=int,
        default=DEFAULT_TTL,
        help=f"TTL of the zone lines (default {DEFAULT_TTL})",
    )
    parser.add_argument(
        "--params",
        default="311,211",
        help="usage/selector/matching-type triples, default 311,211: "
        "3 x x for the leaf (or key), 2 x x for each issuer on the path",
    )
    parser.add_argument(
        "--issuers",
        choices=("chain", "catalog"),
        default="chain",
        help="usage 2 records for the issuers on the chain's path (default), or for every "
        "intermediate the chain's CA may issue this key type from (active and backup, from "
        "the CA catalog), the chain's own issuer first",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the CA catalog overlay is kept, with --issuers catalog "
        "(default: the configuration's state_dir, /var/lib/dane-hook)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the configuration file, read for its state_dir with --issuers catalog "
        "(default: $DANE_HOOK_CONFIG, else /etc/dane-hook/config.toml)",
    )
    parser.add_argument(
        "--format",
        choices=[f.value for f in RecordsFormat],
        default=RecordsFormat.ZONE.value,
        help="zone lines (default), bare rdata 'U S M HEX' lines, an nsupdate script, or JSON",
    )


def execute(args: argparse.Namespace) -> int:
    if not 0 <= args.ttl <= 2**31 - 1:
        raise UsageError(f"--ttl {args.ttl} is not between 0 and 2147483647 (RFC 2181 §8)")
    params = parse_params(args.params)
    chain, key = read_chain(args)
    if args.issuers == "catalog":
        if chain is None:
            raise UsageError("--issuers catalog needs the chain: give --chain or --cert")
        sources = catalog_records(chain, params, args.state_dir, args.config)
    elif chain is not None:
        sources = chain_records(chain, params)
    else:
        sources = key_records(key, params)  # type: ignore[arg-type]
    fmt = RecordsFormat(args.format)
    # rdata and JSON need no owner (issue 15): only zone lines and nsupdate fail without one.
    names = owners(args, chain, required=fmt in (RecordsFormat.ZONE, RecordsFormat.NSUPDATE))
    given = args.name or args.host
    if given and names and not given.isascii():
        # Show both forms of an IDN (RFC 5890 §2.3.2.1): the zone holds the A-labels.
        print(
            f"dane-hook: note: the owner {u_label_form(names[0])} is {names[0]} in DNS "
            "(IDNA A-labels)",
            file=sys.stderr,
        )
    if not sources:
        raise UsageError(
            f"--params {args.params} gives no record for this input "
            "(usage 2 records need issuers on the path: give the full chain)"
        )
    sys.stdout.write(RECORDS_RENDERERS[fmt](RecordsOutput(sources, names, args.ttl)))
    return ExitCode.OK


def catalog_records(
    chain: ServedChain,
    params: list[tuple[int, int, int]],
    state_dir: str | None,
    config: str | None = None,
) -> list[RecordSource]:
    """The leaf's usage 3 records, then usage 2 records for every intermediate the CA may issue
    the leaf's key type from, the chain's own issuer first. The catalog is imported here only:
    loading it costs time that `records` without --issuers does not pay."""
    from datetime import datetime, timezone

    from dane_hook.catalog import load_catalog
    from dane_hook.catalog.coverage import issuers_for
    from dane_hook.config import load_config

    now = datetime.now(timezone.utc)
    catalog = load_catalog(state_dir or load_config(config).state_dir, now)
    for warning in catalog.warnings:
        print(f"dane-hook: warning: {warning}", file=sys.stderr)
    issuers = issuers_for(chain, catalog, now)
    leaf = [s for s in chain_records(chain, params) if s.role == "leaf"]
    if not issuers.checkable or issuers.issuer is None:
        print(
            f"dane-hook: warning: {issuers.fallback}; printing the chain's own issuer",
            file=sys.stderr,
        )
        own = [s for s in chain_records(chain, params) if s.role == "issuer" and s.depth == 1]
        return leaf + own
    keys = list(issuers.expected)
    if issuers.issuer not in keys:
        print(
            f"dane-hook: note: {issuers.issuer.name}, this chain's issuer, is "
            f"{issuers.issuer.status.value}: keep its record only while this chain is served",
            file=sys.stderr,
        )
        keys.insert(0, issuers.issuer)
    out = list(leaf)
    for key in keys:
        for usage, selector, mtype in params:
            if usage == 2:
                out += [
                    RecordSource(
                        record, "issuer", 1, key.first.certificate.subject.rfc4514_string()
                    )
                    for record in key.records(usage, selector, mtype)
                ]
    return out
