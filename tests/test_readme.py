"""The README cannot go stale: its runnable shell blocks run, in order, against the lab.

A block whose info string is `sh runnable` is a tour a person can follow: certbot obtains a
certificate from Pebble, dane-hook enrolls it, records are published by nsupdate into the
signed lab zone, a forced renewal is held, then released 2 x TTL after its records appear.
The README's names and paths are mapped onto the test's (its domain, certbot's config dir, the
served and state dirs, the lab's TSIG key, a TTL of 2 s); `certbot` gets the test server's
options and `nsupdate` the lab server's address, nothing else. A line may end with
`# exits N`: that is its expected status; every other line must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dane_hook.config import load_config
from tests.infra.certbot import Certbot
from tests.infra.knot import KnotPrimary
from tests.infra.lab import PRIMARY_ADDRESS, DnsLab
from tests.schemas import validated

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
TTL = 2

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
_EXITS = re.compile(r"\s+#\s*exits\s+(\d+)\b.*$")


@dataclass(frozen=True)
class Block:
    flags: tuple[str, ...]
    lines: tuple[str, ...]


def blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block."""
    return [(m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)]


def runnable_blocks(text: str) -> list[Block]:
    found = []
    for info, body in blocks(text):
        words = info.split()
        if words[:2] != ["sh", "runnable"]:
            continue
        lines = tuple(
            line for line in body.splitlines() if line.strip() and not line.startswith("#")
        )
        found.append(Block(tuple(words[2:]), lines))
    return found


def test_the_first_screen_shows_the_two_commands() -> None:
    first_screen = "\n".join(README.read_text().splitlines()[:24])
    assert "```sh\n./install.sh\n```" in first_screen
    assert "```sh\ntests/run.sh\n```" in first_screen
    assert (REPO / ".ci" / "run").read_text().strip().endswith("tests/run.sh")


def test_the_configuration_example_is_valid(tmp_path: Path) -> None:
    (toml,) = [body for info, body in blocks(README.read_text()) if info == "toml"]
    path = tmp_path / "config.toml"
    path.write_text(toml)
    config = load_config(path)
    assert config.lineage("mail.example.com").reload == (
        "systemctl reload postfix",
        "systemctl reload dovecot",
    )


def test_every_exit_status_is_documented() -> None:
    from dane_hook.exitcodes import ExitCode

    text = README.read_text()
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \| ", text, re.MULTILINE), code


@dataclass
class Tour:
    lab: DnsLab
    certbot: Certbot
    domain: str
    work: Path
    environment: dict[str, str]
    mapping: dict[str, str]
    reloads: Path

    def translate(self, line: str) -> str:
        for old, new in self.mapping.items():
            line = line.replace(old, new)
        return line

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        expected = 0
        found = _EXITS.search(line)
        if found:
            expected = int(found.group(1))
            line = line[: found.start()]
        command = self.translate(line)
        done = subprocess.run(
            ["bash", "-c", f"{self.preamble()}\n{command}"],
            cwd=self.work,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == expected, (
            f"README line {line!r} exited {done.returncode}, expected {expected}:\n"
            f"{done.stdout}\n{done.stderr}"
        )
        if command.startswith("nsupdate "):
            self.sync()
        return done

    def sync(self) -> None:
        """What the lab does after its own updates: the secondary catches up, caches flush."""
        zone = self.lab.zone_of(f"{self.domain}.")
        self.lab.primary.run_pending_notify(zone)
        self.lab.secondary.refresh(zone)
        self.lab.wait_secondary_synced(zone)
        self.lab.flush(zone)

    def preamble(self) -> str:
        certbot = " ".join(shlex.quote(a) for a in self.certbot.command)
        common = " ".join(shlex.quote(a) for a in self.certbot.common_args())
        standalone = " ".join(shlex.quote(a) for a in self.certbot.challenge_args())
        server = f"server {PRIMARY_ADDRESS} {self.lab.auth_port}"
        return f"""
certbot() {{
    local sub=$1; shift
    local args=()
    for a in "$@"; do
        if [ "$a" = --standalone ]; then args+=({standalone}); else args+=("$a"); fi
    done
    {certbot} "$sub" {common} "${{args[@]}}"
}}
nsupdate() {{
    local key=$2 script=$3
    {{ echo {shlex.quote(server)}; cat "$script"; }} | command nsupdate -k "$key"
}}
"""


@pytest.fixture
def tour(
    dns_lab: DnsLab,
    certbot: Certbot,
    acme_domain: Callable[..., str],
    lab_resolver: object,
    tmp_path: Path,
) -> Iterator[Tour]:
    domain = acme_domain()
    work = tmp_path / "work"
    work.mkdir()
    reloads = tmp_path / "reloads.txt"
    reload_script = tmp_path / "reload"
    reload_script.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(reloads))}\n')
    reload_script.chmod(0o755)
    key = tmp_path / "tsig.key"
    key.write_text(
        f'key "{KnotPrimary.KEY_NAME}" {{\n  algorithm hmac-sha256;\n'
        f'  secret "{dns_lab.primary.tsig_secret}";\n}};\n'
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'resolver = "{lab_resolver}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'served_dir = "{tmp_path / "served"}"\n'
        f'certbot_dir = "{certbot.config_dir}"\n'
        f"auth_port = {dns_lab.auth_port}\n"
        f'[lineage."{domain}"]\n'
        f'reload = ["{reload_script} reload postfix"]\n'
    )
    environment = certbot.environment({"DANE_HOOK_CONFIG": str(config)})
    scripts = os.path.dirname(sys.executable)
    environment["PATH"] = f"{scripts}{os.pathsep}{environment.get('PATH', '')}"
    mapping = {
        "/etc/letsencrypt": str(certbot.config_dir),
        "/etc/dane-hook/served": str(tmp_path / "served"),
        "/etc/dane-hook/tsig.key": str(key),
        "/var/lib/dane-hook": str(tmp_path / "state"),
        "packaging/": f"{REPO}/packaging/",
        "mail.example.com": domain,
        "--ttl 300": f"--ttl {TTL}",
    }
    yield Tour(dns_lab, certbot, domain, work, environment, mapping, reloads)


def served_fullchain(tour: Tour) -> bytes:
    return (
        Path(tour.mapping["/etc/dane-hook/served"]) / tour.domain / "fullchain.pem"
    ).read_bytes()


def live_fullchain(tour: Tour) -> bytes:
    return (tour.certbot.lineage(tour.domain).live_file("fullchain")).read_bytes()


@pytest.mark.slow
def test_the_readme_tour_holds_then_releases_a_renewal(tour: Tour) -> None:
    steps = runnable_blocks(README.read_text())
    assert len(steps) >= 8
    lines_run = 0
    for block in steps:
        if "wait-2ttl" in block.flags:
            time.sleep(2 * TTL + 0.5)
        for line in block.lines:
            done = tour.run(line)
            lines_run += 1
            if line.startswith("certbot renew --force-renewal"):
                # The renewal brought a new key that no published record names: held.
                assert served_fullchain(tour) != live_fullchain(tour)
                assert "reported error code 1" in done.stderr
            if line.startswith("dane-hook status"):
                assert "HELD since" in done.stdout
            if line == "dane-hook release":
                assert "promoted" in done.stdout
                assert served_fullchain(tour) == live_fullchain(tour)
                assert tour.reloads.read_text().splitlines() == ["reload postfix"]
            if line.startswith("dane-hook rollback"):
                assert served_fullchain(tour) != live_fullchain(tour)
    assert lines_run >= 15
    check = validated((tour.work / "check.json").read_text())
    assert check["chains"][0]["verdict"] in ("safe", "incomplete")
