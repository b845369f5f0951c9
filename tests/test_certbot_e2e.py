"""Real certbot renewals against Pebble with dane-hook as the deploy hook (issue 4, item 8).

certbot runs `dane-hook deploy` exactly as an operator configures it: as --deploy-hook (stored
as renew_hook in renewal/NAME.conf) or as an executable in renewal-hooks/deploy/. The DNS is
the lab's: Knot signs, Unbound validates, records are published by RFC 2136.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from dane_hook.cli import main
from dane_hook.exitcodes import ExitCode
from dane_hook.sources.files import load_certificates
from dane_hook.tlsa.generate import certificate_record
from tests.infra.certbot import Certbot
from tests.infra.lab import DnsLab
from tests.infra.pebble import Pebble
from tests.schemas import validated

pytestmark = pytest.mark.slow

# The dane-hook that certbot runs as its hook, and that the tests run as a process: this
# interpreter's `-m dane_hook`, or $DANE_HOOK_TEST_COMMAND (tests/test_debian.py: the installed
# /usr/bin/dane-hook). $DANE_HOOK_TEST_DEPLOY_DROPIN names a renewal-hooks/deploy/ script to
# install instead of the one written here (tests/test_debian.py: the one the package installed).
DANE_HOOK = shlex.split(os.environ.get("DANE_HOOK_TEST_COMMAND", "")) or [
    sys.executable,
    "-m",
    "dane_hook",
]
HOOK = shlex.join([*DANE_HOOK, "deploy"])
DEPLOY_DROPIN = os.environ.get("DANE_HOOK_TEST_DEPLOY_DROPIN")


@dataclass
class Setup:
    """One enrolled certbot lineage with its dane-hook configuration."""

    certbot: Certbot
    name: str
    config: Path
    served: Path
    reloads: Path
    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        return {"DANE_HOOK_CONFIG": str(self.config)}

    def dane_hook(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*DANE_HOOK, *argv],
            env={**self.certbot.environment(), **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def live_certificates(self, kind: str = "fullchain") -> list[x509.Certificate]:
        return load_certificates(self.certbot.lineage(self.name).live_file(kind))

    def served_bytes(self) -> dict[str, bytes]:
        return {
            name: (self.served / name).read_bytes()
            for name in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem", "combined.pem")
        }

    def reload_count(self) -> int:
        return len(self.reloads.read_text().splitlines()) if self.reloads.exists() else 0

    def records(self) -> tuple[str, str]:
        """The 3 1 1 of the live leaf and the 2 1 1 of its issuer."""
        leaf, issuer = self.live_certificates()[:2]
        return (
            certificate_record(leaf, 3, 1, 1).to_text(),
            certificate_record(issuer, 2, 1, 1).to_text(),
        )


@pytest.fixture
def setup(
    certbot: Certbot,
    acme_domain: Callable[..., str],
    dns_lab: DnsLab,
    lab_resolver: object,
    tmp_path: Path,
) -> Setup:
    name = acme_domain()
    certbot.certonly([name])
    reloads = tmp_path / "reloads.txt"
    reload_script = tmp_path / "reload.sh"
    reload_script.write_text(f'#!/bin/sh\necho "reloaded $1" >> {shlex.quote(str(reloads))}\n')
    reload_script.chmod(0o755)
    config = tmp_path / "dane-hook.toml"
    config.write_text(
        f'resolver = "{lab_resolver}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'served_dir = "{tmp_path / "served"}"\n'
        f'certbot_dir = "{certbot.config_dir}"\n'
        f"auth_port = {dns_lab.auth_port}\n"
        f'[lineage."{name}"]\n'
        f'reload = ["{reload_script} {name}"]\n'
    )
    result = Setup(certbot, name, config, tmp_path / "served" / name, reloads, f"_25._tcp.{name}.")
    enrolled = result.dane_hook("enroll", "--cert-name", name)
    assert enrolled.returncode == 0, enrolled.stderr
    assert "smtpd_tls_chain_files" in enrolled.stdout
    return result


def publish(dns_lab: DnsLab, setup: Setup, ttl: int, *records: str) -> None:
    dns_lab.add_records(setup.endpoint, ttl, list(records))


def status(setup: Setup) -> dict[str, Any]:
    done = setup.dane_hook("status", "--format", "json")
    # status exits with the worst state it shows (issue 15, 13e): held unsafe 1, wait 5.
    assert done.returncode in (0, 1, 4, 5), done.stderr
    (entry,) = validated(done.stdout)["lineages"]
    return dict(entry)


def test_a_reuse_key_after_new_intermediate_is_promoted(
    setup: Setup, dns_lab: DnsLab, pebble: Pebble
) -> None:
    ee, _ = setup.records()
    publish(dns_lab, setup, 300, ee)
    old_issuer = setup.live_certificates()[1]
    pebble.restart()
    setup.certbot.reregister()
    setup.certbot.renew(reuse_key=True, deploy_hook=HOOK, env=setup.env)
    new_issuer = setup.live_certificates()[1]
    assert new_issuer.public_key() != old_issuer.public_key()
    assert (
        setup.served_bytes()["fullchain.pem"]
        == setup.certbot.lineage(setup.name).live_file().read_bytes()
    )
    assert setup.reload_count() == 1
    assert "held" not in status(setup)


def test_b_new_key_covered_by_the_issuers_211(setup: Setup, dns_lab: DnsLab) -> None:
    _, ta = setup.records()
    publish(dns_lab, setup, 300, ta)
    old_key = setup.served_bytes()["privkey.pem"]
    setup.certbot.renew(reuse_key=False, deploy_hook=HOOK, env=setup.env)
    served = setup.served_bytes()
    assert served["privkey.pem"] != old_key
    assert served["fullchain.pem"] == setup.certbot.lineage(setup.name).live_file().read_bytes()
    assert setup.reload_count() == 1


def test_c_d_new_key_and_intermediate_held_then_released(
    setup: Setup, dns_lab: DnsLab, pebble: Pebble
) -> None:
    old_ee, old_ta = setup.records()
    publish(dns_lab, setup, 2, old_ee, old_ta)
    before = setup.served_bytes()
    pebble.restart()
    setup.certbot.reregister()
    renewed = setup.certbot.renew(reuse_key=False, deploy_hook=HOOK, env=setup.env)
    # certbot only logs the hook's status (hooks.py): it still exits 0.
    assert renewed.returncode == 0
    assert "reported error code 1" in renewed.stderr
    new_ee, new_ta = setup.records()
    assert setup.served_bytes() == before
    assert setup.reload_count() == 0
    held = status(setup)
    assert held["held"]["verdict"] == "unsafe" and "would fail" in held["held"]["reason"]

    plan = setup.dane_hook("release")
    assert plan.returncode == ExitCode.UNSAFE
    live = [
        line for line in plan.stdout.splitlines() if "IN TLSA" in line and not line.startswith(";")
    ]
    assert sorted(live) == sorted(f"{setup.endpoint} 2 IN TLSA {r}" for r in (new_ee, new_ta))

    # (d) certbot runs again: nothing due, then forced once more with the same key type.
    setup.certbot.renew(force=False, deploy_hook=HOOK, env=setup.env)
    assert setup.served_bytes() == before
    setup.certbot.renew(reuse_key=True, deploy_hook=HOOK, env=setup.env)
    assert setup.served_bytes() == before
    newest_ee, newest_ta = setup.records()
    assert newest_ta == new_ta

    publish(dns_lab, setup, 2, newest_ee, newest_ta)
    early = setup.dane_hook("release")
    assert early.returncode == ExitCode.WAIT, early.stdout + early.stderr
    assert setup.served_bytes() == before and setup.reload_count() == 0
    time.sleep(4.5)  # 2 x TTL of 2 s
    released = setup.dane_hook("release")
    assert released.returncode == ExitCode.OK, released.stdout + released.stderr
    assert "promoted" in released.stdout
    assert (
        setup.served_bytes()["fullchain.pem"]
        == setup.certbot.lineage(setup.name).live_file().read_bytes()
    )
    assert setup.reload_count() == 1
    removable = [line for line in released.stdout.splitlines() if line.startswith(";   _25")]
    assert sorted(removable) == sorted(
        f";   {setup.endpoint} 2 IN TLSA {r}" for r in (old_ee, old_ta)
    )
    assert "held" not in status(setup)
    assert setup.dane_hook("release").stdout.strip() == "nothing is held"


def test_e_resolver_down_during_deploy_holds_with_exit_4(
    setup: Setup, dns_lab: DnsLab, tmp_path: Path
) -> None:
    ee, _ = setup.records()
    publish(dns_lab, setup, 300, ee)
    before = setup.served_bytes()
    text = setup.config.read_text()
    dead = tmp_path / "dead.toml"
    first_line = text.split("\n", 1)[0]
    assert first_line.startswith("resolver = ")
    dead.write_text(text.replace(first_line, 'resolver = "127.0.0.1:9"'))
    renewed = setup.certbot.renew(
        reuse_key=False, deploy_hook=HOOK, env={"DANE_HOOK_CONFIG": str(dead)}
    )
    assert "reported error code 4" in renewed.stderr
    assert setup.served_bytes() == before
    assert status(setup)["held"]["verdict"] == "unknown"
    live = str(setup.certbot.lineage(setup.name).live)
    deploy = setup.dane_hook("deploy", "--config", str(dead), "--lineage", live)
    assert deploy.returncode == ExitCode.UNKNOWN
    headline = deploy.stdout.splitlines()[0]
    assert headline.startswith(f"{setup.name}: HELD (unknown): ") and "cannot decide" in headline
    assert setup.served_bytes() == before


def test_f_hook_directory_and_option_both_work(setup: Setup, dns_lab: DnsLab) -> None:
    _, ta = setup.records()
    publish(dns_lab, setup, 300, ta)
    text = Path(DEPLOY_DROPIN).read_text() if DEPLOY_DROPIN else f"#!/bin/sh\nexec {HOOK}\n"
    setup.certbot.install_hook("00-dane-hook", text)
    setup.certbot.renew(reuse_key=False, env=setup.env)
    first = setup.served_bytes()
    assert first["fullchain.pem"] == setup.certbot.lineage(setup.name).live_file().read_bytes()
    assert setup.reload_count() == 1
    (setup.certbot.hooks_dir() / "00-dane-hook").unlink()
    setup.certbot.renew(reuse_key=False, deploy_hook=HOOK, env=setup.env)
    assert setup.served_bytes()["fullchain.pem"] != first["fullchain.pem"]
    assert setup.reload_count() == 2


def test_pre_hook_reports_reuse_key_off(setup: Setup, dns_lab: DnsLab) -> None:
    ee, ta = setup.records()
    publish(dns_lab, setup, 300, ee)
    pre = setup.dane_hook("pre")
    assert pre.returncode in (ExitCode.OK, ExitCode.WAIT), pre.stdout + pre.stderr
    assert "reuse_key is off" in pre.stdout
    assert f"{setup.endpoint}: the next renewal is NOT covered" in pre.stdout
    assert f"{setup.endpoint} 300 IN TLSA {ta}" in pre.stdout
    # Pebble (Debian's) offers no ARI: one line, never a failure of the hook.
    assert "has no renewalInfo" in pre.stdout
    publish(dns_lab, setup, 300, ta)
    again = setup.dane_hook("pre")
    assert again.returncode == ExitCode.OK
    assert f"{setup.endpoint}: the next renewal is covered" in again.stdout


def test_rollback_restores_the_previous_version(setup: Setup, dns_lab: DnsLab) -> None:
    _, ta = setup.records()
    publish(dns_lab, setup, 300, ta)
    before = setup.served_bytes()
    setup.certbot.renew(reuse_key=False, deploy_hook=HOOK, env=setup.env)
    assert setup.served_bytes() != before
    rolled = setup.dane_hook("rollback", "--cert-name", setup.name)
    assert rolled.returncode == 0, rolled.stderr
    assert setup.served_bytes() == before
    assert setup.reload_count() == 2


def test_deploy_for_a_lineage_not_enrolled_only_checks(
    certbot: Certbot,
    acme_domain: Callable[..., str],
    main_args: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = acme_domain()
    certbot.certonly([name])
    code = main(["deploy", "--lineage", str(certbot.lineage(name).live), *main_args])
    out = capsys.readouterr().out
    assert code == ExitCode.OK  # no DANE records for this name: no-dane
    assert out.startswith(f"{name}: checked (no-dane), not enrolled or warn mode")


@pytest.fixture
def main_args(lab_resolver: object, dns_lab: DnsLab, tmp_path: Path) -> list[str]:
    return [
        "--resolver",
        str(lab_resolver),
        "--auth-port",
        str(dns_lab.auth_port),
        "--state-dir",
        str(tmp_path / "state-main"),
        "--served-dir",
        str(tmp_path / "served-main"),
        "--config",
        str(_empty_config(tmp_path)),
    ]


def _empty_config(tmp_path: Path) -> Path:
    path = tmp_path / "empty.toml"
    path.write_text("")
    return path


def test_g_deploy_killed_at_any_point_leaves_key_and_certificate_together(
    setup: Setup, dns_lab: DnsLab
) -> None:
    """`dane-hook deploy` itself is SIGKILLed at random moments while it promotes one version
    or the other: whatever it was doing, the served key and certificate belong together and
    the state file is whole."""
    from dane_hook.certs.keys import spki_der
    from dane_hook.sources.files import load_public_key

    _, ta = setup.records()
    publish(dns_lab, setup, 300, ta)
    setup.certbot.renew(reuse_key=False, deploy_hook=HOOK, env=setup.env)
    lineage = setup.certbot.lineage(setup.name)
    versions = lineage.versions()
    assert len(versions) >= 2
    rng = random.Random(11)
    environment = {**setup.certbot.environment(), **setup.env}
    deploy = [sys.executable, "-m", "dane_hook", "deploy", "--lineage", str(lineage.live)]
    # Kill times spread over one whole run, as long as a run takes on this machine now.
    started = time.monotonic()
    subprocess.run(deploy, env=environment, capture_output=True, timeout=120, check=False)
    whole_run = time.monotonic() - started
    killed = 0
    served_versions: set[bytes] = set()
    for round_number in range(30):
        version = versions[round_number % 2]
        for kind in ("cert", "chain", "fullchain", "privkey"):
            link = lineage.live / f"{kind}.pem"
            link.unlink()
            link.symlink_to(f"../../archive/{setup.name}/{kind}{version}.pem")
        child = subprocess.Popen(
            deploy,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            child.wait(timeout=rng.uniform(0.02, 1.2) * whole_run)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            killed += 1
        finally:
            child.wait(timeout=30)
        key = load_public_key(setup.served / "privkey.pem")
        (leaf,) = load_certificates(setup.served / "cert.pem")
        chain_leaf = load_certificates(setup.served / "fullchain.pem")[0]
        assert spki_der(key) == spki_der(leaf.public_key()) == spki_der(chain_leaf.public_key())  # type: ignore[arg-type]
        served_versions.add((setup.served / "fullchain.pem").read_bytes())
        state = setup.config.parent / "state" / "state.json"
        if state.exists():
            json.loads(state.read_text())  # never a partial file
    assert killed >= 5, "hardly a run was killed: the timing no longer tests anything"
    assert len(served_versions) == 2, "no run promoted: the timing no longer tests anything"
