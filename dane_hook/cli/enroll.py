"""`dane-hook enroll`: let dane-hook own the files a service reads for a certbot lineage."""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timezone

from dane_hook.cli.inputs import add_endpoint_argument
from dane_hook.cli.lineage import add_common_arguments, config_of, context_of, store_of
from dane_hook.cli.publish import print_reports
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.lineages import adopt, enroll
from dane_hook.rollover.observe import parse_endpoint
from dane_hook.sources.certbot import read_lineage
from dane_hook.sources.certbot_hooks import HOOKS_DIR, check_hooks


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
    hooks = check_hooks(lineage)
    if not hooks.missing:
        print(f"certbot's renewals run dane-hook: {hooks.pre.source}; {hooks.deploy.source}")
        return ExitCode.OK
    warning = hooks.warning()
    print(f"dane-hook: warning: {warning}", file=sys.stderr)
    # certbot runs every executable of renewal-hooks/{pre,deploy}/ at each renewal
    # (hooks.list_hooks); `certbot renew --pre-hook ...` on a certificate that is not due
    # stores nothing ("No hooks were run"), `certbot reconfigure` (2.3+) stores them.
    hooks_dir = hooks.config_dir / HOOKS_DIR
    print("Install the hooks (the Debian package does), from dane-hook's packaging/certbot/:")
    for kind in hooks.missing:
        dropin = f"{kind}/00-dane-hook"
        target = shlex.quote(str(hooks_dir / dropin))
        print(f"  install -D -m 0755 packaging/certbot/{dropin} {target}")
    print(
        f"  (or, certbot 2.3+: certbot reconfigure --cert-name {shlex.quote(lineage.name)} "
        "--pre-hook 'dane-hook pre' --deploy-hook 'dane-hook deploy')"
    )
    return ExitCode.OK
