"""`dane-hook records`: the TLSA records to publish for a certificate, chain or key."""

from __future__ import annotations

import argparse
import sys

from dane_hook.cli.inputs import add_chain_arguments, add_owner_arguments, owners, read_chain
from dane_hook.errors import UsageError
from dane_hook.exitcodes import ExitCode
from dane_hook.records import chain_records, key_records, parse_params
from dane_hook.render import RECORDS_RENDERERS, RecordsFormat, RecordsOutput

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
        "--format",
        choices=[f.value for f in RecordsFormat],
        default=RecordsFormat.ZONE.value,
        help="zone lines (default), bare rdata 'U S M HEX' lines, or JSON",
    )


def execute(args: argparse.Namespace) -> int:
    if not 0 <= args.ttl <= 2**31 - 1:
        raise UsageError(f"--ttl {args.ttl} is not between 0 and 2147483647 (RFC 2181 §8)")
    params = parse_params(args.params)
    chain, key = read_chain(args)
    sources = chain_records(chain, params) if chain is not None else key_records(key, params)  # type: ignore[arg-type]
    fmt = RecordsFormat(args.format)
    names = owners(args, chain)
    if fmt is RecordsFormat.ZONE and not names:
        raise UsageError("zone lines need an owner: give --host or --name (or --format rdata)")
    if not sources:
        raise UsageError(
            f"--params {args.params} gives no record for this input "
            "(usage 2 records need issuers on the path: give the full chain)"
        )
    sys.stdout.write(RECORDS_RENDERERS[fmt](RecordsOutput(sources, names, args.ttl)))
    return ExitCode.OK
