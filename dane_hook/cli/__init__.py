"""The `dane-hook` command: parses arguments, calls the library, renders, returns an exit code."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from dane_hook import __version__
from dane_hook.errors import BadInput, Error, UsageError
from dane_hook.exitcodes import ExitCode

# Subcommand name -> module under dane_hook.cli. Each module has add_arguments(parser) and
# execute(args) -> int, and is imported only when its command runs: the hooks must start fast.
COMMANDS = {
    "records": ("records", "print the TLSA records of a certificate, chain or key"),
    "match": ("match", "check whether TLSA records authenticate a chain, as a DANE client does"),
    "check": ("check", "may this chain be served now, given the DNSSEC-validated TLSA records?"),
    "plan": ("plan", "the records to add now, when to serve the new chain, what to remove later"),
    "catalog": ("catalog", "show the CA catalog, or add intermediates to the local overlay"),
    "enroll": ("enroll", "let dane-hook own the files services read for a certbot lineage"),
    "deploy": ("deploy", "certbot --deploy-hook: promote the renewed chain, or hold it back"),
    "pre": ("pre", "certbot --pre-hook: preflight of every lineage before renewals"),
    "release": ("release", "promote held chains that have become safe (timer)"),
    "status": ("status", "what is served, what is held and why, each endpoint's verdict"),
    "rollback": ("rollback", "serve the previous version of a lineage again"),
    "publish": ("publish", "add and retire dane-hook's own TLSA records as due now (publisher)"),
    "acme-sh": ("acme_sh", "acme.sh --pre-hook (pre) and --reloadcmd wrapper (reload)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit 2, like every other usage error of dane-hook.
        raise UsageError(message, f"see '{self.prog} --help'")


def build_parser(with_commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole argument parser; with_commands limits the subcommands that are filled in."""
    parser = _Parser(
        prog="dane-hook",
        description="Keeps ACME certificate renewals from breaking DANE (TLSA) for mail servers.",
    )
    parser.add_argument("--version", action="version", version=f"dane-hook {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the traceback of an error"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module_name, summary) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary)
        if with_commands is None or name in with_commands:
            _command_module(module_name).add_arguments(sub)
    return parser


def _command_module(module_name: str) -> _CommandModule:
    module = importlib.import_module(f"dane_hook.cli.{module_name}")
    return module  # type: ignore[return-value]


class _CommandModule:
    """What a subcommand module provides (documentation for the reader; duck-typed)."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    @staticmethod
    def execute(args: argparse.Namespace) -> int:
        raise NotImplementedError


_EXIT_FOR_ERROR: tuple[tuple[type[Error], ExitCode], ...] = (
    (UsageError, ExitCode.USAGE),
    (BadInput, ExitCode.BAD_INPUT),
)


def exit_code_for(error: Error) -> ExitCode:
    for kind, code in _EXIT_FOR_ERROR:
        if isinstance(error, kind):
            return code
    # Anything else (a failed lookup, an unreadable state) means "could not decide".
    return ExitCode.UNKNOWN


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in arguments or "--verbose" in arguments
    command = next((a for a in arguments if a in COMMANDS), None)
    try:
        parser = build_parser([command] if command else [])
        args = parser.parse_args(arguments)
        if args.command is None:
            parser.print_help(sys.stderr)
            return ExitCode.USAGE
        module = _command_module(COMMANDS[args.command][0])
        return int(module.execute(args))
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else ExitCode.USAGE
    except Error as exc:
        if verbose:
            traceback.print_exc()
        print(f"dane-hook: {exc.diagnostics()}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("dane-hook: interrupted; nothing was changed", file=sys.stderr)
        return ExitCode.UNKNOWN
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        print(
            f"dane-hook: internal error: {type(exc).__name__}: {exc}; nothing was changed "
            "(run with -v for the traceback and report it)",
            file=sys.stderr,
        )
        return ExitCode.UNKNOWN


def run() -> NoReturn:
    sys.exit(main())
