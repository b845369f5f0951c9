"""What the lineage commands (enroll, deploy, pre, release, status, rollback) share."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from dane_hook.cli.inputs import EXIT_FOR_VERDICT
from dane_hook.config import Config, load_config
from dane_hook.dns.lookup import DEFAULT_TIMEOUT, DEFAULT_TRIES, Resolver
from dane_hook.errors import UsageError
from dane_hook.exitcodes import ExitCode, worst_exit
from dane_hook.render.check import PLAN_RENDERERS, PlanFormat, PlanReport, when
from dane_hook.rollover.decision import Verdict
from dane_hook.rollover.observe import Settings
from dane_hook.rollover.promotion import Action, Context, Outcome, ReloadResult
from dane_hook.rollover.state import StateStore


def add_lookup_arguments(parser: argparse.ArgumentParser) -> None:
    """The configuration file and how to ask DNS: every command that looks records up."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration (default $DANE_HOOK_CONFIG, else /etc/dane-hook/config.toml); "
        "the command line overrides it",
    )
    parser.add_argument(
        "--resolver",
        metavar="ADDR[:PORT]",
        help="a validating resolver (default: the configuration's, else /etc/resolv.conf)",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per try")
    parser.add_argument("--tries", type=int, default=DEFAULT_TRIES, help="tries per query")
    parser.add_argument("--auth-port", type=int, help=argparse.SUPPRESS)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    add_lookup_arguments(parser)
    parser.add_argument(
        "--certbot-dir", metavar="DIR", help="certbot's config dir (/etc/letsencrypt)"
    )
    parser.add_argument("--served-dir", metavar="DIR", help="served views (/etc/dane-hook/served)")
    parser.add_argument("--state-dir", metavar="DIR", help="state (/var/lib/dane-hook)")


def config_of(args: argparse.Namespace) -> Config:
    """The configuration file, with the command line's directories over it."""
    config = load_config(args.config)
    changes: dict[str, object] = {}
    for key in ("certbot_dir", "served_dir", "state_dir"):
        value = getattr(args, key, None)
        if value:
            changes[key] = Path(value)
    if getattr(args, "resolver", None):
        changes["resolver"] = args.resolver
    if not changes:
        return config
    from dataclasses import replace

    return replace(config, **changes)  # type: ignore[arg-type]


def settings_of(args: argparse.Namespace, config: Config) -> Settings:
    """How to ask DNS: the command line over the configuration (see config_of)."""
    if args.timeout <= 0 or args.tries < 1:
        raise UsageError("--timeout must be above 0 and --tries at least 1")
    resolver = Resolver.parse(config.resolver) if config.resolver else Resolver.from_resolv_conf()
    return Settings(resolver, args.timeout, args.tries, args.auth_port or config.auth_port)


def context_of(args: argparse.Namespace, config: Config, now: datetime) -> Context:
    return Context(config, settings_of(args, config), now)


def store_of(config: Config) -> StateStore:
    return StateStore(config.state_dir)


def exit_for(outcomes: list[Outcome]) -> int:
    codes = []
    for outcome in outcomes:
        if outcome.action in (Action.PROMOTED, Action.SERVED):
            codes.append(ExitCode.OK)
        else:
            codes.append(EXIT_FOR_VERDICT[outcome.decision.verdict])
    return worst_exit(codes)


def journal() -> logging.Logger:
    """A logger that also writes to syslog/the journal: certbot only logs a hook's status."""
    logger = logging.getLogger("dane-hook")
    if not logger.handlers:
        logger.setLevel(logging.INFO)
        logger.propagate = False
        if os.path.exists("/dev/log"):
            try:
                handler = logging.handlers.SysLogHandler(address="/dev/log")
                handler.setFormatter(logging.Formatter("dane-hook: %(message)s"))
                logger.addHandler(handler)
            except OSError:
                pass
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
    return logger


def summary(outcome: Outcome) -> str:
    """One line: what happened to the candidate and why."""
    verdict = outcome.decision.verdict.value
    rolled_back = outcome.probe.rolled_back if outcome.probe is not None else None
    if rolled_back is not None:
        text = (
            f"{outcome.lineage}: promoted, then ROLLED BACK to version "
            f"{rolled_back}: the probe found that a DANE sender would refuse it as served"
        )
    elif outcome.action == Action.PROMOTED:
        text = f"{outcome.lineage}: promoted: the new chain is served"
        note = next((d for d in outcome.decision.endpoints if d.verdict is not Verdict.SAFE), None)
        if note is not None:  # incomplete, insecure, no DANE: served, with what is missing
            text += f" (note: {note.endpoint} {note.verdict.value}: {note.reason})"
    elif outcome.action == Action.SERVED:
        text = f"{outcome.lineage}: the new chain is already served"
    elif outcome.action == Action.HELD:
        reason = next(
            (d.reason for d in outcome.decision.endpoints if d.verdict is outcome.decision.verdict),
            verdict,
        )
        text = f"{outcome.lineage}: HELD ({verdict}): {reason}"
        if outcome.decision.earliest:
            text += f"; may be served from {when(outcome.decision.earliest)}"
    else:
        text = f"{outcome.lineage}: checked ({verdict}), not enrolled or warn mode: nothing changed"
    return text


def print_reloads(results: Sequence[ReloadResult]) -> None:
    for result in results:
        status = "ok" if result.returncode == 0 else f"FAILED with status {result.returncode}"
        print(f"  reload {' '.join(result.command)}: {status} {result.error}".rstrip())


def print_outcome(outcome: Outcome, now: datetime) -> None:
    print(summary(outcome))
    print_reloads(outcome.reloads)
    for warning in outcome.warnings:
        print(f"dane-hook: warning: {warning}", file=sys.stderr)
    rolled_back = outcome.probe is not None and outcome.probe.rolled_back is not None
    if outcome.action != Action.SERVED and not rolled_back:  # no "remove the old records"
        served = frozenset({outcome.lineage}) if outcome.action == Action.PROMOTED else frozenset()
        report = PlanReport([(outcome.lineage, outcome.decision, outcome.plan)], now, served)
        sys.stdout.write(PLAN_RENDERERS[PlanFormat.ZONE](report))
