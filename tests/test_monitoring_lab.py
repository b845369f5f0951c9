"""Issue 14: every monitoring warning, triggered by a real condition in the lab, in every format.

- stale records: a published 3 1 1 of a key nothing uses, in the lab's example.test.;
- RRSIG expiry: a Knot zone signed with a signature lifetime of two days;
- lifetime too short: a certificate from a Pebble whose certificateValidityPeriod is two hours,
  issued by the real acme.sh (its Le_NextRenewTime comes after the expiry);
- next key unpublished: the real acme.sh's staged DOMAIN.key.next (--always-force-new-domain-key);
- held chain expiring first: a served certificate five days from its expiry, a renewal held.

`status` runs in process (`main`) against the lab's validating resolver; JSON goes through
tests/schemas.py, Prometheus text through prometheus_client's own parser (a test dependency:
the product writes the text format itself and needs nothing at run time).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from prometheus_client.parser import text_string_to_metric_families

from dane_hook.cli import main
from dane_hook.dns.lookup import Resolver
from tests import pki
from tests.infra.acmesh_real import AcmeSh, DomainFiles, find_acme_sh, hook_environment
from tests.infra.knot import KnotPrimary
from tests.infra.lab import PRIMARY_ADDRESS, SECONDARY_ADDRESS, DnsLab
from tests.infra.pebble import Pebble
from tests.infra.wire import Updater
from tests.schemas import validated

SHORT_ZONE = "short.test."
SIGNATURE_LIFETIME = 2 * 86400
"""Knot's rrsig-lifetime for SHORT_ZONE: within the default 7 days of the RRSIG warning."""
PEBBLE_VALIDITY = 2 * 3600
TTL = 300
ACME_TTL = 2
"""TTL of the acme.sh tests' records: the first install waits 2 x TTL for real."""


# -- a site: configuration, state, served views, a certbot tree -------------------------------


@dataclass(frozen=True)
class Site:
    root: Path
    resolver: Resolver
    auth_port: int

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def served_dir(self) -> Path:
        return self.root / "served"

    @property
    def certbot_dir(self) -> Path:
        return self.root / "letsencrypt"

    def configure(self, endpoints: dict[str, str]) -> None:
        """The configuration, with each lineage's one endpoint (lineage -> owner name)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'resolver = "{self.resolver}"\n'
            f'state_dir = "{self.state_dir}"\n'
            f'served_dir = "{self.served_dir}"\n'
            f'certbot_dir = "{self.certbot_dir}"\n'
            f"auth_port = {self.auth_port}\n"
            + "".join(
                f'[lineage."{name}"]\nendpoints = ["{owner}"]\n'
                for name, owner in endpoints.items()
            )
        )

    def dirs(self) -> list[str]:
        return ["--config", str(self.config), "--timeout", "2", "--tries", "2"]

    def write_lineage(self, name: str, chains: list[pki.IssuedChain]) -> Path:
        """archive/NAME/*N.pem and live/NAME links to the last, as certbot lays them out."""
        live = self.certbot_dir / "live" / name
        archive = self.certbot_dir / "archive" / name
        conf = self.certbot_dir / "renewal" / f"{name}.conf"
        for folder in (live, archive, conf.parent):
            folder.mkdir(parents=True, exist_ok=True)
        for version, chain in enumerate(chains, start=1):
            leaf, issuer = chain.leaf.pem(), chain.intermediate.pem()
            for kind, data in (
                ("cert", leaf),
                ("chain", issuer),
                ("fullchain", leaf + issuer),
                ("privkey", chain.leaf.key_pem()),
            ):
                (archive / f"{kind}{version}.pem").write_bytes(data)
        for kind in ("cert", "chain", "fullchain", "privkey"):
            link = live / f"{kind}.pem"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(os.path.relpath(archive / f"{kind}{len(chains)}.pem", live))
        conf.write_text(
            f"archive_dir = {archive}\n"
            + "".join(f"{k} = {live / (k + '.pem')}\n" for k in ("cert", "privkey", "chain"))
            + f"fullchain = {live / 'fullchain.pem'}\n"
            + "\n[renewalparams]\nauthenticator = standalone\nkey_type = ecdsa\n"
            + "server = https://127.0.0.1:1/dir\n"
        )
        return live


@dataclass(frozen=True)
class Shown:
    code: int
    out: str
    err: str


def status(site: Site, capsys: pytest.CaptureFixture[str], *extra: str) -> Shown:
    code = main(["status", *site.dirs(), *extra])
    out, err = capsys.readouterr()
    return Shown(code, out, err)


def every_format(site: Site, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Shown]:
    return {f: status(site, capsys, "--format", f, *extra) for f in FORMATS}


FORMATS = ("text", "json", "nagios", "prometheus")


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def kinds_in(shown: dict[str, Shown]) -> dict[str, set[str]]:
    """The warning kinds each format shows (text, nagios: their words; json, prometheus: data)."""
    document = validated(shown["json"].out, "status")
    metrics = families(shown["prometheus"].out)
    warned = metrics.get("dane_hook_warnings")
    return {
        "json": {w["kind"] for entry in document["lineages"] for w in entry["warnings"]},
        "prometheus": {s.labels["kind"] for s in warned.samples} if warned else set(),
        "text": {
            line.split("(")[1].split(")")[0]
            for line in shown["text"].out.splitlines()
            if line.strip().startswith("WARNING (")
        },
    }


def spki_311(key_pem: bytes) -> str:
    """The 3 1 1 of a PEM private key, computed here (not by dane-hook): RFC 6698 §2.1."""
    key = serialization.load_pem_private_key(key_pem, None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"3 1 1 {hashlib.sha256(spki).hexdigest()}"


@pytest.fixture
def site(tmp_path: Path, lab_resolver: Resolver, auth_port: int) -> Site:
    return Site(tmp_path / "site", lab_resolver, auth_port)


def enroll(site: Site, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["enroll", "--cert-name", name, *site.dirs()])
    _out, err = capsys.readouterr()
    assert code == 0, err


# -- stale records ------------------------------------------------------------------------------


def test_a_stale_record_is_a_warning_in_every_format_and_goes_with_the_record(
    site: Site,
    dns_lab: DnsLab,
    fresh_owner: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner = fresh_owner()
    chain = pki.issued_chain(pki.KeyType.ECDSA_P256, label="monitoring stale")
    stale = pki.rdata(pki.issued_chain(pki.KeyType.ECDSA_P256, label="gone").leaf, 3, 1, 1)
    site.configure({"stale.test": owner})
    site.write_lineage("stale.test", [chain])
    dns_lab.add_records(owner, TTL, [pki.rdata(chain.leaf, 3, 1, 1), stale])
    enroll(site, "stale.test", capsys)
    textfile = site.root / "node-exporter" / "dane-hook.prom"
    textfile.parent.mkdir()

    shown = every_format(site, capsys, "--textfile", str(textfile))

    for kinds in kinds_in(shown).values():
        assert "stale-record" in kinds, shown
    assert stale.split()[-1] in shown["text"].out
    assert shown["text"].code == 0  # the served chain is safe: a warning is not a failure
    nagios = shown["nagios"].out.splitlines()[0]
    assert shown["nagios"].code == 1 and nagios.startswith("DANE-HOOK WARNING: "), shown["nagios"]
    metrics = families(shown["prometheus"].out)
    (count,) = metrics["dane_hook_stale_records"].samples
    assert count.value == 1 and count.labels["endpoint"] == owner
    (success,) = metrics["dane_hook_last_success_seconds"].samples
    assert abs(success.value - time.time()) < 120
    (rrsig,) = metrics["dane_hook_tlsa_rrsig_expiry_seconds"].samples
    assert rrsig.value - time.time() > 7 * 86400  # Knot's default lifetime: no RRSIG warning
    assert families(textfile.read_text())["dane_hook_stale_records"].samples[0].value == 1
    document = validated(shown["json"].out, "status")
    assert document["lineages"][0]["endpoints"][0]["stale_records"] == 1

    dns_lab.delete_records(owner, [stale])
    after = every_format(site, capsys)
    assert all("stale-record" not in kinds for kinds in kinds_in(after).values()), after
    assert after["nagios"].code == 0 and after["nagios"].out.startswith("DANE-HOOK OK: ")


# -- RRSIG expiry: a zone signed with short signature lifetimes -------------------------------


@pytest.fixture(scope="module")
def short_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsLab]:
    """A lab of its own whose SHORT_ZONE Knot signs with SIGNATURE_LIFETIME."""
    home = tmp_path_factory.mktemp("short-signatures")
    lab = DnsLab(home, extra_zones={SHORT_ZONE: "mail A 127.0.0.1\n"})
    lab.zones = [
        replace(z, rrsig_lifetime=SIGNATURE_LIFETIME) if z.name == SHORT_ZONE else z
        for z in lab.zones
    ]
    lab.primary = KnotPrimary(
        home / "primary", PRIMARY_ADDRESS, lab.auth_port, lab.zones, SECONDARY_ADDRESS
    )
    lab.updater = Updater(
        PRIMARY_ADDRESS, lab.auth_port, KnotPrimary.KEY_NAME, lab.primary.tsig_secret
    )
    lab.start()
    try:
        yield lab
    finally:
        lab.close()


def test_an_rrsig_expiring_within_days_is_a_warning_in_every_format(
    short_lab: DnsLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert short_lab.resolver is not None
    site = Site(
        tmp_path / "site",
        Resolver(short_lab.resolver.address, short_lab.resolver.port),
        short_lab.auth_port,
    )
    owner = f"_25._tcp.mail.{SHORT_ZONE}"
    chain = pki.issued_chain(pki.KeyType.ECDSA_P256, label="monitoring rrsig")
    site.configure({"short.test": owner})
    site.write_lineage("short.test", [chain])
    short_lab.add_records(owner, TTL, [pki.rdata(chain.leaf, 3, 1, 1)])
    enroll(site, "short.test", capsys)

    shown = every_format(site, capsys)

    for kinds in kinds_in(shown).values():
        assert "rrsig-expiring" in kinds, shown
    assert shown["nagios"].code == 1, shown["nagios"]
    (rrsig,) = families(shown["prometheus"].out)["dane_hook_tlsa_rrsig_expiry_seconds"].samples
    left = rrsig.value - time.time()
    assert 0 < left <= SIGNATURE_LIFETIME + 60, left
    document = validated(shown["json"].out, "status")
    expires = datetime.fromisoformat(document["lineages"][0]["endpoints"][0]["rrsig_expires"])
    assert expires.timestamp() == rrsig.value
    # The same signatures under a threshold below their lifetime: no warning.
    quiet = every_format(site, capsys, "--rrsig-days", "1")
    assert all("rrsig-expiring" not in kinds for kinds in kinds_in(quiet).values()), quiet


# -- a held chain whose served certificate expires first --------------------------------------


def test_a_held_chain_the_served_certificate_outlives_not_is_a_warning(
    site: Site,
    dns_lab: DnsLab,
    fresh_owner: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(timezone.utc)
    ending = pki.Validity(now - timedelta(days=80), now + timedelta(days=5))
    served = pki.issued_chain(pki.KeyType.ECDSA_P256, label="ending", validity=ending)
    renewed = pki.issued_chain(pki.KeyType.ECDSA_P256, label="renewed")
    owner = fresh_owner()
    site.configure({"ending.test": owner})
    site.write_lineage("ending.test", [served])
    dns_lab.add_records(owner, TTL, [pki.rdata(served.leaf, 3, 1, 1)])
    enroll(site, "ending.test", capsys)
    live = site.write_lineage("ending.test", [served, renewed])
    assert main(["deploy", "--lineage", str(live), *site.dirs()]) == 1  # held: key unpublished
    capsys.readouterr()

    shown = every_format(site, capsys)

    for kinds in kinds_in(shown).values():
        assert "held-expires-first" in kinds, shown
    assert "expiry_action = hold" in shown["text"].out
    assert shown["text"].code == 1 and "HELD" in shown["text"].out  # issue 15 item 13e
    assert shown["json"].code == 1
    assert shown["nagios"].code == 1 and "expires in 5.0 d" in shown["nagios"].out
    held = families(shown["prometheus"].out)["dane_hook_held_since_seconds"].samples
    assert len(held) == 1 and abs(held[0].value - time.time()) < 300
    strict = status(site, capsys, "--format", "nagios", "--expiry-crit-days", "6")
    assert strict.code == 2 and strict.out.startswith("DANE-HOOK CRITICAL: "), strict


# -- the real acme.sh: a staged next key, and a short-lived Pebble certificate ----------------

SERVICE = "#!/bin/sh\nexit 0\n"


@dataclass(frozen=True)
class AcmeLab:
    acme: AcmeSh
    site: Site
    installed: Path
    service: Path

    def install(self, name: str) -> None:
        """--install-cert with the reload wrapper; release until dane-hook serves the chain
        (the first answer is "wait" while dane-hook has not seen the records)."""
        reloadcmd = f"dane-hook acme-sh reload -- {shlex.quote(str(self.service))}"
        run = self.acme.install_cert(name, reloadcmd=reloadcmd, target=self.installed / name)
        assert run.returncode == 0 or "Reload error" in run.output, run
        deadline = time.monotonic() + 30
        served = self.site.served_dir / name / "fullchain.pem"
        while not served.exists() and time.monotonic() < deadline:
            subprocess.run(
                ["dane-hook", "release"],
                env=dict(self.acme.environment),
                capture_output=True,
                timeout=120,
                check=False,
            )
            time.sleep(0.5)
        assert served.exists()


def acme_lab(tmp_path: Path, pebble: Pebble, lab_resolver: Resolver, auth_port: int) -> AcmeLab:
    script, why = find_acme_sh()
    if script is None:
        pytest.skip(why)
    if not pebble.running:
        pebble.start()
    site = Site(tmp_path / "site", lab_resolver, auth_port)
    site.configure({})
    home = tmp_path / "acme.sh"
    home.mkdir()
    service = tmp_path / "reload-service"
    service.write_text(SERVICE)
    service.chmod(0o755)
    acme = AcmeSh(
        script,
        home,
        pebble.directory,
        pebble.ca_bundle,
        pebble.http_port,
        hook_environment(site.config),
    )
    return AcmeLab(acme, site, tmp_path / "installed", service)


def issue(lab: AcmeLab, name: str, *, force_new_key: bool) -> DomainFiles:
    run = lab.acme.issue(name, force_new_key=force_new_key)
    assert run.returncode == 0, run
    return lab.acme.files(name)


@pytest.mark.slow
def test_the_real_acme_sh_staged_next_key_without_its_record_is_a_warning(
    tmp_path: Path,
    pebble: Pebble,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    auth_port: int,
    acme_domain: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = acme_lab(tmp_path, pebble, lab_resolver, auth_port)
    name = acme_domain()
    files = issue(lab, name, force_new_key=True)
    assert files.next_key.read_bytes().strip(), "acme.sh staged no next key"
    owner = f"_25._tcp.{name}."
    dns_lab.add_records(owner, ACME_TTL, [spki_311(files.key.read_bytes())])
    lab.install(name)
    home = ["--acme-sh-home", str(lab.acme.home)]

    shown = every_format(lab.site, capsys, *home)

    for kinds in kinds_in(shown).values():
        assert "next-key-unpublished" in kinds, shown
        assert "lifetime-too-short" not in kinds  # Pebble's default validity: 5 years
    staged = spki_311(files.next_key.read_bytes())
    assert staged in shown["text"].out
    assert shown["nagios"].code == 1, shown["nagios"]
    (covered,) = families(shown["prometheus"].out)["dane_hook_next_renewal_covered"].samples
    assert covered.value == 0

    dns_lab.add_records(owner, ACME_TTL, [staged])
    after = every_format(lab.site, capsys, *home)
    for kinds in kinds_in(after).values():
        assert "next-key-unpublished" not in kinds and "stale-record" not in kinds, after
    (covered,) = families(after["prometheus"].out)["dane_hook_next_renewal_covered"].samples
    assert covered.value == 1


@pytest.fixture(scope="module")
def short_pebble(dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A Pebble of its own whose certificates are valid PEBBLE_VALIDITY seconds."""
    server = Pebble(
        tmp_path_factory.mktemp("pebble-short"), dns_lab.primary_upstream, validity=PEBBLE_VALIDITY
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_a_short_lived_pebble_certificate_is_a_lifetime_warning(
    tmp_path: Path,
    short_pebble: Pebble,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    auth_port: int,
    acme_domain: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = acme_lab(tmp_path, short_pebble, lab_resolver, auth_port)
    name = acme_domain()
    files = issue(lab, name, force_new_key=False)
    dns_lab.add_records(f"_25._tcp.{name}.", ACME_TTL, [spki_311(files.key.read_bytes())])
    lab.install(name)

    shown = every_format(lab.site, capsys, "--acme-sh-home", str(lab.acme.home))

    for kinds in kinds_in(shown).values():
        assert "lifetime-too-short" in kinds, shown
    document = validated(shown["json"].out, "status")
    (warning,) = [
        w for w in document["lineages"][0]["warnings"] if w["kind"] == "lifetime-too-short"
    ]
    # acme.sh 3.1.4 renews Le_RenewalDays (30) - 1 days after issuance: after a 2 h certificate
    # has expired.
    assert "after the certificate" in warning["message"], warning
    # Two hours left is below --expiry-crit-days (3): CRITICAL, the lifetime warning with it.
    assert shown["nagios"].code == 2 and "lifetime" not in shown["nagios"].out.split(" | ")[0]
    assert "2 x TTL (4 s)" in shown["nagios"].out
    (expiry,) = families(shown["prometheus"].out)["dane_hook_served_not_after_seconds"].samples
    assert expiry.value - time.time() <= PEBBLE_VALIDITY
