"""Issue 15, items 8 and 10: the real acme.sh 3.1.4 against Pebble and the DNS lab.

Every acme.sh run here is the unmodified script (tests/infra/acmesh_real.py); dane-hook is the
installed console script, called by acme.sh as the README says: `--pre-hook 'dane-hook acme-sh
pre --key "$CERT_KEY_PATH"'` and `--reloadcmd 'dane-hook acme-sh reload -- CMD'`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from dane_hook.rollover.state import StateStore
from tests.infra.acmesh_real import AcmeSh, DomainFiles, find_acme_sh, hook_environment
from tests.infra.lab import DnsLab
from tests.infra.pebble import Pebble

TTL = 2
"""TTL of the published TLSA records: 2 x TTL = 4 s of real waiting."""
PRE_HOOK = 'dane-hook acme-sh pre --key "$CERT_KEY_PATH"'
WAIT_LIMIT = 30.0
"""Longest a test waits for records to become old enough (2 x TTL plus lookups)."""

# A service's reload (`systemctl reload postfix`): it notes each run and exits 0.
SERVICE = """#!/bin/sh
printf '%s\\n' "$(pwd)" >>"$0.runs"
exit 0
"""

pytestmark = pytest.mark.slow


def spki_311(key_file: Path) -> str:
    """The 3 1 1 of a PEM private key, computed here (not by dane-hook): RFC 6698 §2.1."""
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"3 1 1 {hashlib.sha256(spki).hexdigest()}"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Lab:
    """acme.sh, dane-hook's configuration and a reload service, for one test."""

    acme: AcmeSh
    config: Path
    state_dir: Path
    served_dir: Path
    installed: Path
    service: Path

    @property
    def reloadcmd(self) -> str:
        return f"dane-hook acme-sh reload -- {shlex.quote(str(self.service))}"

    def service_runs(self) -> int:
        record = self.service.with_name(self.service.name + ".runs")
        return len(record.read_text().splitlines()) if record.exists() else 0

    def dane_hook(self, *argv: str) -> Result:
        """The installed console script, as the timer (or a person) runs it."""
        done = subprocess.run(
            ["dane-hook", *argv],
            env=dict(self.acme.environment),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def served_fullchain(self, name: str) -> bytes:
        return (self.served_dir / name / "fullchain.pem").read_bytes()


def until(action: Callable[[], Result], done: Callable[[Result], bool]) -> Result:
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        result = action()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.fixture
def lab(
    tmp_path: Path, pebble: Pebble, dns_lab: DnsLab, lab_resolver: object, auth_port: int
) -> Iterator[Lab]:
    script, why = find_acme_sh()
    if script is None:
        pytest.skip(why)
    if not pebble.running:
        pebble.start()
    config = tmp_path / "dane-hook.toml"
    state_dir, served_dir = tmp_path / "state", tmp_path / "served"
    config.write_text(
        f'resolver = "{lab_resolver}"\n'
        f'state_dir = "{state_dir}"\n'
        f'served_dir = "{served_dir}"\n'
        f"auth_port = {auth_port}\n"
    )
    home = tmp_path / "acme.sh"
    home.mkdir()
    service = tmp_path / "reload-service"
    service.write_text(SERVICE)
    service.chmod(0o755)
    acme = AcmeSh(
        script, home, pebble.directory, pebble.ca_bundle, pebble.http_port, hook_environment(config)
    )
    yield Lab(acme, config, state_dir, served_dir, tmp_path / "installed", service)


@pytest.fixture
def issued(lab: Lab, acme_domain: Callable[..., str]) -> Callable[..., tuple[str, DomainFiles]]:
    """`issued(force_new_key=False, pre_hook=PRE_HOOK)`: a first --issue by the real acme.sh."""

    def issue(force_new_key: bool = False, pre_hook: str = PRE_HOOK) -> tuple[str, DomainFiles]:
        name = acme_domain()
        run = lab.acme.issue(name, pre_hook=pre_hook, force_new_key=force_new_key)
        assert run.returncode == 0, run
        return name, lab.acme.files(name)

    return issue


def owner(name: str) -> str:
    return f"_25._tcp.{name}."


def install(lab: Lab, name: str) -> None:
    """--install-cert with the reload wrapper, then release until the chain is served: the
    records are new to dane-hook, so the first answer may be "wait"."""
    run = lab.acme.install_cert(name, reloadcmd=lab.reloadcmd, target=lab.installed / name)
    # _installcert() ends in `_err "Reload error ..."` when the command fails, so acme.sh
    # exits 1 then; the first answer is "wait" (5) while dane-hook has not seen the records.
    assert run.returncode == 0 or "Reload error" in run.output, run
    if not (lab.served_dir / name / "fullchain.pem").exists():
        released = until(lambda: lab.dane_hook("release"), lambda r: r.returncode == 0)
        assert released.returncode == 0, released
    assert (lab.served_dir / name / "fullchain.pem").exists()


# -- item 10 ---------------------------------------------------------------------------------


def test_real_first_issue_runs_the_pre_hook_which_lets_it_through(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]]
) -> None:
    _name, files = issued()
    assert files.key.is_file() and files.fullchain.is_file()
    # acme.sh stored the pre-hook base64-wrapped in the conf, for every renewal.
    assert files.conf_value("Le_PreHook").startswith("__ACME_BASE64__START_")


def test_real_install_cert_with_the_reload_wrapper_serves_and_runs_the_command(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]], add_records: Callable[..., int]
) -> None:
    name, files = issued()
    add_records(owner(name), TTL, [spki_311(files.key)])
    install(lab, name)
    assert lab.served_fullchain(name) == files.fullchain.read_bytes()
    assert lab.service_runs() == 1


def test_real_renewal_with_the_key_reused_is_promoted_at_once(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]], add_records: Callable[..., int]
) -> None:
    name, files = issued()
    add_records(owner(name), TTL, [spki_311(files.key)])
    install(lab, name)
    key_before, cert_before = files.key.read_bytes(), files.cert.read_bytes()

    run = lab.acme.renew(name)

    assert run.returncode == 0, run
    assert f"{name}: renewal let through (SAFE)" in run.output, run  # the stored pre-hook ran
    assert files.key.read_bytes() == key_before  # acme.sh's default: the key is reused
    assert files.cert.read_bytes() != cert_before
    assert "Reload error" not in run.output, run
    assert f"{name}: promoted" in run.output, run
    assert lab.served_fullchain(name) == files.fullchain.read_bytes()
    assert lab.service_runs() == 2
    enrolled = StateStore(lab.state_dir).read().enrolled[name]
    assert (enrolled.source, enrolled.served_dir) == ("acme.sh", str(lab.served_dir / name))


def test_real_forced_renewal_with_an_unpublished_next_key_is_aborted_files_untouched(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]], add_records: Callable[..., int]
) -> None:
    name, files = issued(force_new_key=True)
    add_records(owner(name), TTL, [spki_311(files.key)])
    install(lab, name)
    before = files.snapshot()
    installed_before = {p.name: p.read_bytes() for p in (lab.installed / name).iterdir()}

    run = lab.acme.renew(name)

    assert run.returncode != 0, run
    assert "Error occurred when running pre hook" in run.output, run
    assert files.snapshot() == before  # key, next key, certificate, conf: untouched
    assert {p.name: p.read_bytes() for p in (lab.installed / name).iterdir()} == installed_before
    staged = spki_311(files.next_key)
    assert f"{name}: the coming issuance uses the staged next key {files.next_key}" in run.output
    assert f"{name}: renewal refused (UNSAFE)" in run.output, run
    assert f"{owner(name)} {TTL} IN TLSA {staged}" in run.output.splitlines(), run
    assert lab.service_runs() == 1


def test_real_forced_renewal_waits_2_ttl_after_publication_then_uses_the_staged_key(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]], add_records: Callable[..., int]
) -> None:
    """Without the timer: the pre-hook itself first sees the staged key's 3 1 1 and refuses
    until it is 2 x TTL old (RFC 7671 §8.1); acme.sh's next run after that renews with it."""
    name, files = issued(force_new_key=True)
    add_records(owner(name), TTL, [spki_311(files.key)])
    install(lab, name)
    staged_key = files.next_key.read_bytes()
    add_records(owner(name), TTL, [spki_311(files.next_key)])
    asked = datetime.now(timezone.utc)

    run = lab.acme.renew(name)

    assert "Error occurred when running pre hook" in run.output, run
    found = re.search(rf"{re.escape(name)}: renewal refused until (\S+ \S+) UTC", run.output)
    assert found, run
    until_time = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S")
    let_through = until_time.replace(tzinfo=timezone.utc)
    assert asked - timedelta(seconds=1) <= let_through <= asked + timedelta(seconds=2 * TTL + 2)
    time.sleep(max(0.0, (let_through - datetime.now(timezone.utc)).total_seconds()) + 1)

    run = lab.acme.renew(name)

    assert run.returncode == 0, run
    assert files.key.read_bytes() == staged_key  # acme.sh used the staged key
    assert lab.served_fullchain(name) == files.fullchain.read_bytes()
    assert lab.service_runs() == 2
    # current + next: the key staged now is printed, to publish before the next renewal.
    assert f"{owner(name)} {TTL} IN TLSA {spki_311(files.next_key)}" in run.output.splitlines()


def test_real_current_and_next_seen_by_the_timer_then_the_renewal_is_promoted_at_once(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]], add_records: Callable[..., int]
) -> None:
    """Item 8a: the timer (`dane-hook release`) observes the next key's 3 1 1 when it is
    published, so the first renewal 2 x TTL later goes through without a refused attempt."""
    name, files = issued(force_new_key=True)
    add_records(owner(name), TTL, [spki_311(files.key)])
    install(lab, name)
    next_key = files.next_key.read_bytes()
    add_records(owner(name), TTL, [spki_311(files.next_key)])
    timer = lab.dane_hook("release")  # the systemd timer's run, right after publication
    assert timer.returncode == 0, timer
    time.sleep(2 * TTL + 1)

    run = lab.acme.renew(name)

    assert run.returncode == 0, run
    assert "Error occurred when running pre hook" not in run.output, run
    assert files.key.read_bytes() == next_key  # acme.sh used the staged key
    assert "Reload error" not in run.output, run
    assert lab.served_fullchain(name) == files.fullchain.read_bytes()
    assert lab.service_runs() == 2


def test_real_force_new_key_without_a_pre_hook_is_held_then_released_after_publishing(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]], add_records: Callable[..., int]
) -> None:
    name, files = issued(force_new_key=True, pre_hook="")
    add_records(owner(name), TTL, [spki_311(files.key)])
    install(lab, name)
    served_before = lab.served_fullchain(name)

    run = lab.acme.renew(name)

    # _installcert() only logs a failed reload command (its status is the `_err`'s, 1).
    assert f"Reload error for: {name}" in run.output, run
    assert f"{name}: HELD (unsafe)" in run.output, run
    new_key = spki_311(files.key)
    assert f"{owner(name)} {TTL} IN TLSA {new_key}" in run.output.splitlines(), run
    assert lab.served_fullchain(name) == served_before  # held
    assert lab.service_runs() == 1
    held = StateStore(lab.state_dir).read().held[name]
    assert held.reload == ((str(lab.service),),)  # the command after `--`, to run later
    add_records(owner(name), TTL, [new_key])
    released = until(lambda: lab.dane_hook("release"), lambda r: r.returncode == 0)
    assert released.returncode == 0, released
    assert f"{name}: promoted" in released.stdout, released
    assert lab.served_fullchain(name) == files.fullchain.read_bytes()
    assert lab.service_runs() == 2
    assert name not in StateStore(lab.state_dir).read().held


# -- item 8b: plan counts the staged next key as in use --------------------------------------


def _current_and_next(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]], add_records: Callable[..., int]
) -> tuple[str, str]:
    """An installed force-new-key domain with its current and its staged next 3 1 1 published."""
    name, files = issued(force_new_key=True)
    add_records(owner(name), TTL, [spki_311(files.key)])
    install(lab, name)
    staged = spki_311(files.next_key)
    add_records(owner(name), TTL, [staged])
    return name, staged


def _removed(stdout: str) -> str:
    document = json.loads(stdout)
    return json.dumps([e.get("remove") for plan in document["plans"] for e in plan["endpoints"]])


def test_real_plan_by_cert_name_keeps_the_staged_next_keys_record(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]], add_records: Callable[..., int]
) -> None:
    name, staged = _current_and_next(lab, issued, add_records)
    result = lab.dane_hook("plan", "--cert-name", name, "--format", "json")
    assert result.returncode == 0, result  # `plan --cert-name` for enrolled lineages
    assert staged.split()[-1] not in _removed(result.stdout), result.stdout


def test_real_plan_of_the_served_chain_keeps_the_staged_next_keys_record(
    lab: Lab, issued: Callable[..., tuple[str, DomainFiles]], add_records: Callable[..., int]
) -> None:
    name, staged = _current_and_next(lab, issued, add_records)
    served = str(lab.served_dir / name / "fullchain.pem")
    result = lab.dane_hook("plan", "--chain", served, "--endpoint", name, "--format", "json")
    assert staged.split()[-1] not in _removed(result.stdout), result.stdout
