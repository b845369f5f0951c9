"""dane-hook(1) is generated from the argparse definitions: every command and option is on it,
the checked-in packaging/dane-hook.1 is the generated page, and man renders it cleanly."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dane_hook.cli import COMMANDS, build_parser
from dane_hook.cli.manpage import commands, documented_options, member_docstrings, render
from dane_hook.exitcodes import ExitCode

CHECKED_IN = Path(__file__).resolve().parent.parent / "packaging" / "dane-hook.1"
REGENERATE = "regenerate it: python3 -m dane_hook.cli.manpage > packaging/dane-hook.1"


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser(None)


@pytest.fixture(scope="module")
def page(parser: argparse.ArgumentParser) -> str:
    return render(parser)


def roff(text: str) -> str:
    return text.replace("-", "\\-")


def sections(page: str, macro: str) -> dict[str, str]:
    """The text under each `.SH`/`.SS` heading, up to the next heading of either kind."""
    found: dict[str, str] = {}
    parts = re.split(r"^(\.S[HS] .*)$", page, flags=re.MULTILINE)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        if heading.startswith(macro + " "):
            found[heading[len(macro) + 1 :].strip('"')] = body
    return found


def test_the_walk_finds_every_command_of_the_cli(parser: argparse.ArgumentParser) -> None:
    tree = [c.path for c in commands(parser)]
    assert [p[0] for p in tree if len(p) == 1] == list(COMMANDS)
    assert ("catalog", "add") in tree


def test_every_command_has_a_section_with_all_its_options(
    parser: argparse.ArgumentParser, page: str
) -> None:
    subsections = sections(page, ".SS")
    for command in commands(parser):
        body = subsections.get(roff(command.name))
        assert body is not None, f"{command.name}: no section ({REGENERATE})"
        for action in documented_options(command.parser):
            if action.option_strings:
                for option in action.option_strings:
                    assert f"\\fB{roff(option)}\\fR" in body, f"{command.name}: {option}"
            else:
                assert roff(str(action.metavar or action.dest)) in body, (
                    f"{command.name}: {action.dest}"
                )
            if action.help:
                first_words = " ".join(action.help.split()[:3])
                if "%" not in first_words:
                    assert roff(first_words) in " ".join(body.split()), (
                        f"{command.name}: help of {action.dest}"
                    )


def test_global_options_and_hidden_ones(parser: argparse.ArgumentParser, page: str) -> None:
    options = sections(page, ".SH")["OPTIONS"]
    for action in parser._actions:
        if action.option_strings:
            for option in action.option_strings:
                assert f"\\fB{roff(option)}\\fR" in options
    subsections = sections(page, ".SS")
    hidden = [
        (command.name, option)
        for command in commands(parser)
        for action in command.parser._actions
        if action.help is argparse.SUPPRESS
        for option in action.option_strings
    ]
    assert ("dane-hook check", "--auth-port") in hidden
    for name, option in hidden:
        assert f"\\fB{roff(option)}\\fR" not in subsections[roff(name)], (name, option)


def test_every_exit_status_is_listed(page: str) -> None:
    status = sections(page, ".SH")["EXIT STATUS"]
    docs = member_docstrings(ExitCode)
    for code in ExitCode:
        assert f".TP\n\\fB{code.value}\\fR\n{code.name}: " in status
        assert docs[code.name].split()[0] in status


def test_the_checked_in_page_is_the_generated_one(page: str) -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == page, REGENERATE


def test_python_m_prints_the_page(page: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dane_hook.cli.manpage"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == page
    assert done.stdout.isascii()


@pytest.mark.skipif(shutil.which("man") is None, reason="man (man-db) is not installed")
def test_man_renders_it_without_warnings(tmp_path: Path) -> None:
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80", "MAN_KEEP_FORMATTING": ""}
    done = subprocess.run(
        ["man", "--warnings", "-P", "cat", "-l", str(CHECKED_IN)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    text = re.sub(r".\x08", "", done.stdout)  # overstrike bold/underline, should a pager keep it
    assert "dane-hook records [--cert FILE]" in text
    assert "--chain FILE" in text and "RFC 7671 §8" in text
    if shutil.which("lexgrog"):
        # What mandb reads for whatis/apropos: the NAME section must parse.
        grog = subprocess.run(
            ["lexgrog", str(CHECKED_IN)], capture_output=True, text=True, timeout=60, check=False
        )
        assert grog.returncode == 0 and "dane-hook - keeps ACME" in grog.stdout, grog.stdout
