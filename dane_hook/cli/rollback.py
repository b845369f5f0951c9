"""`dane-hook rollback`: serve the previous version of a lineage again, at once."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from dane_hook.cli.lineage import add_common_arguments, config_of, enrollment_of, store_of
from dane_hook.errors import UsageError
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.promotion import reload_commands, run_reloads
from dane_hook.rollover.served_view import ServedView


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert-name", required=True, metavar="NAME")
    add_common_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = datetime.now(timezone.utc)
    with store_of(config).locked(now) as state:
        enrollment = enrollment_of(config, state, args.cert_name)
        if enrollment is None:
            raise UsageError(f"{args.cert_name} is not enrolled", "run dane-hook enroll first")
        version = ServedView(Path(enrollment.served_dir)).rollback()
        results = run_reloads(reload_commands(config, args.cert_name, enrollment))
    print(f"{args.cert_name}: rolled back; serving version {version}")
    for result in results:
        print(f"  reload {' '.join(result.command)}: status {result.returncode}")
    # Like acme.sh's reloadcmd wrapper: a failed reload passes its status through.
    return next((r.returncode for r in results if r.returncode != 0), ExitCode.OK)
