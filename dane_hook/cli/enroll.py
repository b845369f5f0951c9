"""`dane-hook enroll`: let dane-hook own the files a service reads for a certbot lineage."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from dane_hook.cli.inputs import add_endpoint_argument
from dane_hook.cli.lineage import add_common_arguments, config_of, context_of, store_of
from dane_hook.cli.publish import print_reports
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.lineages import adopt, enroll
from dane_hook.rollover.observe import parse_endpoint
from dane_hook.sources.certbot import read_lineage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert-name", required=True, metavar="NAME", help="the certbot lineage")
    add_endpoint_argument(parser)
    parser.add_argument(
        "--adopt",
        action="store_true",
        help="the published records that authenticate the served chain become dane-hook's "
        "to retire (needs a publisher)",
    )
    add_common_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    config = config_of(args)
    lineage = read_lineage(config.certbot_dir, args.cert_name)
    endpoints = [parse_endpoint(e) for e in args.endpoint]
    now = datetime.now(timezone.utc)
    with store_of(config).locked(now) as state:
        enrolled = enroll(config, state, lineage, endpoints)
        adopted = adopt(context_of(args, config, now), state, lineage.name) if args.adopt else None
    if adopted is not None:
        print_reports([adopted])
    served, version = enrolled.served_dir, enrolled.version
    print(f"{lineage.name}: enrolled; serving version {version} from {served}")
    print("Point the services at the served view (and reload them once):")
    print(f"  Postfix main.cf:  smtpd_tls_chain_files = {served / 'combined.pem'}")
    print(f"  Dovecot:          ssl_cert = <{served / 'fullchain.pem'}")
    print(f"                    ssl_key = <{served / 'privkey.pem'}")
    print(f"  nginx:            ssl_certificate {served / 'fullchain.pem'};")
    print(f"                    ssl_certificate_key {served / 'privkey.pem'};")
    print(
        "Then add the hooks: certbot renew --pre-hook 'dane-hook pre' "
        "--deploy-hook 'dane-hook deploy'"
    )
    return ExitCode.OK
