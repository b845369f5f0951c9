"""The `dane-hook` command: parses arguments, calls the library, renders, returns an exit code."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn, TextIO, cast

from dane_hook import __version__
from dane_hook.errors import BadInput, Error, UsageError
from dane_hook.exitcodes import ExitCode
from dane_hook.storage import check_lineage_name

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
    "probe": ("probe", "what each MX address presents on the wire; would a DANE sender deliver?"),
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


class _ClosedPipeGuard:
    """sys.stdout that goes quiet once its reader has gone (`dane-hook pre | head -1`).

    Command-line tools stop writing when the reader closes the pipe and finish their work; so
    does dane-hook: the exit status stays that of the work (a hook's status is what certbot,
    acme.sh and monitoring read), never "internal error". As the "Note on SIGPIPE" in Python's
    `signal` documentation recommends, stdout is then pointed at /dev/null so that no later
    flush (at the interpreter's exit either) raises again.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def _quiet(self) -> None:
        self.gone = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._quiet()
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._quiet()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _quiet_when_stdout_closes() -> Iterator[None]:
    original = sys.stdout
    with contextlib.ExitStack() as stack:
        stream: TextIO | None = original
        if stream is None:  # started with stdout closed (`>&-`): Python sets it to None
            stream = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        guard = _ClosedPipeGuard(stream)
        sys.stdout = cast(TextIO, guard)
        try:
            yield
            guard.flush()  # what is still buffered fails here, not at the interpreter's exit
        finally:
            sys.stdout = original


def _check_names(args: argparse.Namespace) -> None:
    """Every --cert-name becomes a path (live/NAME, served/NAME): checked before any command
    runs, as certbot checks its own (see `check_lineage_name`)."""
    names = getattr(args, "cert_name", None)
    for name in [names] if isinstance(names, str) else names or []:
        try:
            check_lineage_name(name, "--cert-name: lineage name")
        except Error as exc:
            raise UsageError(str(exc), exc.hint) from exc


def main(argv: Sequence[str] | None = None) -> int:
    with _quiet_when_stdout_closes():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in arguments or "--verbose" in arguments
    command = next((a for a in arguments if a in COMMANDS), None)
    try:
        parser = build_parser([command] if command else [])
        args = parser.parse_args(arguments)
        if args.command is None:
            parser.print_help(sys.stderr)
            return ExitCode.USAGE
        _check_names(args)
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
