"""`dane-hook match`: would a DANE client accept this chain with these TLSA records?"""

from __future__ import annotations

import argparse
import sys

from dane_hook.cli.inputs import read_chain
from dane_hook.errors import BadInput, shown_path
from dane_hook.exitcodes import ExitCode
from dane_hook.render.records import MATCH_RENDERERS, MatchFormat
from dane_hook.sources.files import read_input
from dane_hook.tlsa.matching import authenticate
from dane_hook.tlsa.record import TLSARecord, absolute_name, parse_records_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chain",
        metavar="FILE",
        required=True,
        help="the chain as served (fullchain.pem): leaf and issuers, PEM, any order",
    )
    parser.add_argument(
        "--key", metavar="FILE", help="the server's key: picks the leaf when the file has several"
    )
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    records = parser.add_mutually_exclusive_group(required=True)
    records.add_argument(
        "--tlsa", metavar="FILE", help="TLSA records: zone lines or bare 'U S M HEX' lines"
    )
    records.add_argument(
        "--record",
        action="append",
        metavar="'U S M HEX'",
        help="one TLSA record; repeat for an RRset",
    )
    parser.add_argument(
        "--host",
        help="the name the client expects: a DANE-TA match then needs the leaf to cover it "
        "(RFC 7672 §3.2.3); DANE-EE ignores names",
    )
    parser.add_argument(
        "--format", choices=[f.value for f in MatchFormat], default=MatchFormat.TEXT.value
    )


def execute(args: argparse.Namespace) -> int:
    if args.tlsa:
        records = parse_records_text(_text_of(args.tlsa), shown_path(args.tlsa))
        if not records:
            raise BadInput(f"{shown_path(args.tlsa)}: holds no TLSA record")
    else:
        records = [TLSARecord.from_text(r, "--record") for r in args.record]
    chain, _ = read_chain(args)
    assert chain is not None  # --chain is required
    # The reference identifier as DNS and certificates write it: A-labels (RFC 6125 §6.4.2).
    host = absolute_name(args.host, "host name").rstrip(".") if args.host else None
    result = authenticate(chain, records, host=host)
    sys.stdout.write(MATCH_RENDERERS[MatchFormat(args.format)](result))
    return ExitCode.OK if result.authenticated else ExitCode.UNSAFE


def _text_of(path: str) -> str:
    """A TLSA file's text; a binary file (a DER key or certificate given by mistake) is
    refused without quoting any of it."""
    data = read_input(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text or "\0" in text:
        raise BadInput(
            f"{shown_path(path)}: not a text file of TLSA records (binary data)",
            "give zone lines or 'USAGE SELECTOR MTYPE DATA' lines",
        )
    return text
