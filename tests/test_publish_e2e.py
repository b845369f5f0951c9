"""Issue 12 end to end: renewals with a publisher and no human step (real certbot, real acme.sh).

Only the ACME client and the timer command (`dane-hook release`) run after enrollment. dane-hook
publishes through the lab's Knot (RFC 2136 with a TSIG key allowed TLSA updates only). At every
step the chain in the served view DANE-validates, by OpenSSL's verifier (tests/oracle.py),
against the TLSA RRset the lab's validating Unbound returns (AD set); at the end the RRset holds
exactly the records in use (plus the staged next key's) and a foreign record is still there.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from dane_hook.dns.publish import load_tsig_key
from dane_hook.sources.files import load_certificates
from dane_hook.tlsa.generate import certificate_record
from tests.infra.acmesh_real import AcmeSh, find_acme_sh, hook_environment
from tests.infra.certbot import Certbot
from tests.infra.lab import PRIMARY_ADDRESS, DnsLab
from tests.infra.pebble import Pebble
from tests.oracle import ServerPool
from tests.test_publish_rfc2136 import _validated

pytestmark = pytest.mark.slow

TTL = 2
"""Seconds: 2 x TTL = 4 s of real waiting per step."""
FOREIGN = "3 1 1 " + "fd" * 32
"""Someone else's record beside dane-hook's: never removed."""
STEP_LIMIT = 60.0
"""Longest a step waits for the timer (2 x TTL to promote, 2 x TTL to retire, NOTIFY, lookups)."""
DANE_HOOK = str(Path(sys.executable).parent / "dane-hook")


def spki_311(key_pem: bytes) -> str:
    """The 3 1 1 of a PEM private key, computed here (RFC 6698 §2.1), not by dane-hook."""
    key = serialization.load_pem_private_key(key_pem, None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"3 1 1 {hashlib.sha256(spki).hexdigest()}"


@pytest.fixture(scope="module")
def tlsa_key(dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keymgr key (a name of this module's own) that the lab's Knot allows TLSA updates only."""
    done = subprocess.run(
        ["keymgr", "-t", "tlsa-e2e.", "hmac-sha256"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    path = tmp_path_factory.mktemp("tsig-e2e") / "tlsa.key"
    path.touch(mode=0o600)
    path.write_text(done.stdout)
    key = load_tsig_key(path)
    secret = base64.b64encode(key.secret).decode()
    dns_lab.primary.allow_tlsa_updates(key.name.to_text(), "hmac-sha256", secret)
    return path


class World:
    """dane-hook's configuration with a publisher, the served view, the oracle."""

    def __init__(
        self, tmp: Path, dns_lab: DnsLab, resolver: object, key: Path, lineage: str
    ) -> None:
        self.dns_lab, self.tmp, self.lineage = dns_lab, tmp, lineage
        self.owner = f"_25._tcp.{lineage}."
        self.config = tmp / "dane-hook.toml"
        self.served = tmp / "served" / lineage
        self.config.write_text(
            f'resolver = "{resolver}"\n'
            f'state_dir = "{tmp / "state"}"\n'
            f'served_dir = "{tmp / "served"}"\n'
            f'certbot_dir = "{tmp / "certbot" / "config"}"\n'
            f"auth_port = {dns_lab.auth_port}\n"
            f'[lineage."{lineage}"]\npublish = "lab"\nadopt = true\n'
            f'[publisher.lab]\ntype = "rfc2136"\nkey_file = "{key}"\n'
            f'server = "{PRIMARY_ADDRESS}"\nport = {dns_lab.auth_port}\nttl = {TTL}\n'
            "timeout = 2\n"
        )
        self.pool = ServerPool(tmp / "oracle")
        (tmp / "oracle").mkdir()
        self.checks = 0

    def rrset(self) -> list[str]:
        """What the validating resolver returns now (AD required)."""
        return _validated(self.dns_lab, self.owner)

    def served_validates(self) -> None:
        """The oracle: OpenSSL's DANE verifier accepts the served chain against the RRset."""
        leaf_and_chain = (self.served / "fullchain.pem").read_bytes()
        leaf = (self.served / "cert.pem").read_bytes()
        chain = (self.served / "chain.pem").read_bytes()
        key = (self.served / "privkey.pem").read_bytes()
        assert leaf_and_chain.startswith(leaf)
        rrset = self.rrset()
        server = self.pool.serving(leaf, key, chain)
        verdict = server.verdict(rrset, self.lineage, datetime.now(timezone.utc))
        assert verdict.authenticated, (verdict.detail, rrset)
        self.checks += 1

    def notify(self) -> None:
        """What NOTIFY does (RFC 1996): the secondary transfers what the primary changed. The
        lab's primary names no NOTIFY target (tests/infra/knot.py), so the test pulls."""
        zone = self.dns_lab.zone_of(self.owner)
        self.dns_lab.secondary.refresh(zone)
        self.dns_lab.wait_secondary_synced(zone)

    def timer(self, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """One run of the systemd timer's command (after the secondary caught up)."""
        self.notify()
        done = subprocess.run(
            [DANE_HOOK, "release"],
            env={**env, "DANE_HOOK_CONFIG": str(self.config)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode in (0, 1, 5), done.stdout + done.stderr  # never 4 or 6 here
        return done

    def run_timer_until(self, what: str, env: dict[str, str], done: Callable[[], bool]) -> None:
        """The timer every half second (a short period), the oracle after every run."""
        deadline = time.monotonic() + STEP_LIMIT
        while True:
            self.timer(env)
            self.served_validates()
            if done():
                return
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.rrset()}"
            time.sleep(0.5)


@pytest.fixture
def stop_servers() -> Iterator[list[ServerPool]]:
    pools: list[ServerPool] = []
    yield pools
    for pool in pools:
        pool.stop_all()


def test_certbot_three_new_key_renewals_with_no_human_step(
    certbot: Certbot,
    acme_domain: Callable[..., str],
    dns_lab: DnsLab,
    lab_resolver: object,
    tlsa_key: Path,
    tmp_path: Path,
    stop_servers: list[ServerPool],
) -> None:
    name = acme_domain()
    certbot.certonly([name])
    world = World(tmp_path, dns_lab, lab_resolver, tlsa_key, name)
    stop_servers.append(world.pool)
    lineage = certbot.lineage(name)
    first = certificate_record(load_certificates(lineage.live_file("cert"))[0], 3, 1, 1)
    # The state before dane-hook: the first leaf's 3 1 1 published by hand, and a foreign one.
    dns_lab.add_records(world.owner, TTL, [first.to_text(), FOREIGN])
    env = {"DANE_HOOK_CONFIG": str(world.config)}
    enrolled = subprocess.run(
        [DANE_HOOK, "enroll", "--cert-name", name],
        env=certbot.environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    certbot.install_hook("00-dane-hook", f"#!/bin/sh\nexec {shlex.quote(DANE_HOOK)} deploy\n")
    world.served_validates()
    keys = {(world.served / "privkey.pem").read_bytes()}

    for renewal in range(3):
        renewed = certbot.renew(reuse_key=False, env=env)
        assert renewed.returncode == 0
        new = certificate_record(load_certificates(lineage.live_file("cert"))[0], 3, 1, 1)
        # Held (the new key's record was not there), its record published at once.
        assert (world.served / "fullchain.pem").read_bytes() != lineage.live_file().read_bytes()
        world.served_validates()
        assert new.to_text() in world.rrset(), f"renewal {renewal + 1}: not published"

        def settled(new: str = new.to_text()) -> bool:
            served = (world.served / "fullchain.pem").read_bytes()
            return served == lineage.live_file().read_bytes() and world.rrset() == sorted(
                [new, FOREIGN]
            )

        world.run_timer_until(f"renewal {renewal + 1} served, old record retired", env, settled)
        keys.add((world.served / "privkey.pem").read_bytes())

    assert len(keys) == 4  # a new key at every renewal
    assert world.rrset() == sorted([new.to_text(), FOREIGN])
    assert world.checks >= 8


def test_acme_sh_current_and_next_two_renewals_with_no_human_step(
    pebble: Pebble,
    acme_domain: Callable[..., str],
    dns_lab: DnsLab,
    lab_resolver: object,
    tlsa_key: Path,
    tmp_path: Path,
    stop_servers: list[ServerPool],
) -> None:
    script, why = find_acme_sh()
    if script is None:
        pytest.skip(why)
    if not pebble.running:
        pebble.start()
    name = acme_domain()
    world = World(tmp_path, dns_lab, lab_resolver, tlsa_key, name)
    stop_servers.append(world.pool)
    home = tmp_path / "acme.sh"
    home.mkdir()
    env = hook_environment(world.config)
    acme = AcmeSh(script, home, pebble.directory, pebble.ca_bundle, pebble.http_port, env)
    pre_hook = 'dane-hook acme-sh pre --key "$CERT_KEY_PATH"'
    service = tmp_path / "reload-service"
    service.write_text('#!/bin/sh\necho reloaded >>"$0.runs"\n')
    service.chmod(0o755)
    reloadcmd = f"dane-hook acme-sh reload -- {shlex.quote(str(service))}"
    dns_lab.add_records(world.owner, TTL, [FOREIGN])  # someone else's record, already there

    issued = acme.issue(name, pre_hook=pre_hook, force_new_key=True)
    assert issued.returncode == 0, issued
    files = acme.files(name)
    installed = acme.install_cert(name, reloadcmd=reloadcmd, target=tmp_path / "installed")
    # Held: nothing authenticated the chain; its record went out at once. The next key's
    # waits until a chain is served (it would authenticate nothing before).
    assert installed.returncode == 0 or "Reload error" in installed.output, installed
    assert world.rrset() == sorted([spki_311(files.key.read_bytes()), FOREIGN])

    def served_is_installed() -> bool:
        return (world.served / "fullchain.pem").exists() and (
            world.served / "fullchain.pem"
        ).read_bytes() == files.fullchain.read_bytes()

    deadline = time.monotonic() + STEP_LIMIT
    while not served_is_installed():
        world.timer(env)
        assert time.monotonic() < deadline, "the first chain was never served"
        time.sleep(0.5)
    world.served_validates()
    # The timer that served it published the staged next key's 3 1 1 beside it.
    assert spki_311(files.next_key.read_bytes()) in world.rrset()

    for renewal in range(2):
        staged = files.next_key.read_bytes()
        # The timer sees the next key's record; 2 x TTL later the renewal may go through.
        started = time.monotonic()

        def old_enough(started: float = started) -> bool:
            return time.monotonic() - started > 2 * TTL + 1

        world.run_timer_until("the next key's record 2 x TTL old", env, old_enough)
        run = acme.renew(name)
        assert run.returncode == 0, run
        assert "Error occurred when running pre hook" not in run.output, run
        assert "Reload error" not in run.output, run
        assert files.key.read_bytes() == staged  # acme.sh used the staged key
        assert served_is_installed()  # promoted at once: its record was old enough
        world.served_validates()
        in_use = sorted([spki_311(staged), spki_311(files.next_key.read_bytes()), FOREIGN])

        def settled(in_use: list[str] = in_use) -> bool:
            return world.rrset() == in_use

        world.run_timer_until(f"renewal {renewal + 1}: old key's record retired", env, settled)

    assert world.rrset() == in_use
    assert len(service.with_name(service.name + ".runs").read_text().splitlines()) == 3
