"""The probe after a promotion, against a real Postfix reloaded by dane-hook's reload command.

Postfix reads its certificate from the served view. A promotion installs the new chain and runs
the lineage's reload command (`postfix -c DIR reload`); the probe then sees what smtpd presents
on the STARTTLS and the implicit-TLS port. In the broken set-up Postfix takes its key from a
stale copy outside the served view (as a service still pointed at the ACME client's own files):
after the reload smtpd holds the new certificate with the old key, cannot start TLS, and a DANE
sender refuses. With rollback_on_probe_failure the previous chain is served again, the reload
runs again, and the probe finds delivery restored; without it the new chain stays, with a warning.
Either way the outcome counts as failed (the promotion commands exit 1).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dane_hook.cli import main
from dane_hook.config import Config, LineageConfig
from dane_hook.dns.exchange import Resolver
from dane_hook.probe.run import probe_all
from dane_hook.probe.targets import target
from dane_hook.probe.verdict import Verdict
from dane_hook.rollover.observe import Settings
from dane_hook.rollover.promotion import Action, Context, consider, probe_exit
from dane_hook.rollover.served_view import ChainFiles, ServedView
from dane_hook.rollover.state import Enrollment, State, StateStore
from dane_hook.tlsa.record import TLSARecord
from tests import pki
from tests.infra.lab import EXAMPLE, DnsLab
from tests.infra.postfix import OracleResolver, Postfix, postfix_missing, posttls_finger
from tests.infra.procs import LabError

pytestmark = pytest.mark.skipif(
    bool(postfix_missing()),
    reason="Postfix not installed (Debian package postfix; tests/run.sh installs it)",
)

ZONE = "promotion-probe.example.test"
NAME = "promotion-probe"
_serial = itertools.count(1)


def _chain(label: str, host: str) -> pki.IssuedChain:
    validity = pki.valid_now()
    top = pki.root(f"root of {label}", validity=validity)
    ca = pki.intermediate(f"intermediate of {label}", top, validity=validity)
    return pki.IssuedChain(top, ca, pki.leaf(ca, [host], label=label, validity=validity))


def files_of(chain: pki.IssuedChain) -> ChainFiles:
    leaf, ca = chain.leaf, chain.intermediate
    return ChainFiles(leaf.key_pem(), leaf.pem(), ca.pem(), leaf.pem() + ca.pem())


@dataclass
class World:
    host: str
    old: pki.IssuedChain
    new: pki.IssuedChain
    view: ServedView
    server: Postfix
    endpoints: tuple[str, ...]
    state: State
    state_dir: Path

    def context(self, lab_resolver: Resolver, auth_port: int, **lineage: object) -> Context:
        settings = LineageConfig(endpoints=self.endpoints, **lineage)  # type: ignore[arg-type]
        config = Config(state_dir=self.state_dir, lineages={NAME: settings})
        return Context(
            config, Settings(lab_resolver, 2.0, 2, auth_port), datetime.now(timezone.utc)
        )

    def enrollment(self, reload: tuple[str, ...]) -> Enrollment:
        return Enrollment("certbot", str(self.view.root), self.endpoints, (reload,))

    def reload_command(self) -> tuple[str, ...]:
        return ("postfix", "-c", str(self.server.config), "reload")


def _ports_free(address: str, ports: tuple[int, ...]) -> bool:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def _world(tmp_path: Path, dns_lab: DnsLab, *, stale_key: bool) -> World:
    number = next(_serial)
    host = f"case{number}.{ZONE}"
    # The real ports 25 and 465, so that the probe takes STARTTLS and implicit TLS from the
    # port number as in production (Postfix accepts only an address of an interface, so
    # 127.0.0.1; nothing else on this test host listens on 25 or 465).
    address = "127.0.0.1"
    if not _ports_free(address, (25, 465)):
        pytest.skip("something else listens on 127.0.0.1:25 or :465")
    dns_lab.update(f"{host}.", add=[(300, "A", address)])
    old, new = _chain("promotion old", host), _chain("promotion new", host)
    view = ServedView(tmp_path / "served" / NAME)
    view.install(files_of(old))
    key_file = view.path("privkey.pem")
    if stale_key:
        key_file = tmp_path / "acme-client-copy" / "privkey.pem"
        key_file.parent.mkdir()
        key_file.write_bytes(old.leaf.key_pem())
        key_file.chmod(0o600)
    server = Postfix(view.path("fullchain.pem"), key_file, address=address, ports=(25, 465))
    ports = (server.starttls_port, server.wrapper_port)
    endpoints = tuple(f"_{port}._tcp.{host}." for port in ports)
    # The rollover's middle: the records of the old and the new key, published long enough
    # (first seen an hour ago, TTL 300: 2 x TTL has passed, RFC 7671 §8.1).
    records = [pki.rdata(old.leaf, 3, 1, 1), pki.rdata(new.leaf, 3, 1, 1)]
    for endpoint in endpoints:
        dns_lab.add_records(endpoint, 300, records)
    dns_lab.wait_secondary_synced()
    state = State()
    earlier = datetime.now(timezone.utc) - timedelta(hours=1)
    for endpoint in endpoints:
        state.observe(endpoint, [TLSARecord.from_text(r) for r in records], earlier)
    return World(host, old, new, view, server, endpoints, state, tmp_path / "state")


@pytest.fixture(scope="module")
def oracle(dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OracleResolver]:
    """The lab's validating resolver again, on 127.0.0.155:53, for posttls-finger."""
    resolver = OracleResolver(
        tmp_path_factory.mktemp("promotion-oracle"),
        "127.0.0.155",
        dns_lab.primary_upstream,
        [zone.name for zone in dns_lab.zones],
        dns_lab.trust_anchors(),
    )
    try:
        resolver.start(EXAMPLE)
    except LabError as exc:
        pytest.skip(f"no resolver on 127.0.0.155:53 for posttls-finger: {exc}")
    try:
        yield resolver
    finally:
        resolver.stop()


@pytest.fixture
def world(tmp_path: Path, dns_lab: DnsLab) -> Iterator[World]:
    made = _world(tmp_path, dns_lab, stale_key=False)
    made.server.start()
    try:
        yield made
    finally:
        made.server.stop()


@pytest.fixture
def stale_world(tmp_path: Path, dns_lab: DnsLab) -> Iterator[World]:
    made = _world(tmp_path, dns_lab, stale_key=True)
    made.server.start()
    try:
        yield made
    finally:
        made.server.stop()


def test_a_good_reload_is_probed_and_passes(
    world: World, lab_resolver: Resolver, auth_port: int, oracle: OracleResolver
) -> None:
    context = world.context(lab_resolver, auth_port, probe=True, rollback_on_probe_failure=True)
    outcome = consider(
        NAME,
        files_of(world.new),
        enrollment=world.enrollment(world.reload_command()),
        context=context,
        state=world.state,
    )
    assert outcome.action == Action.PROMOTED, outcome.decision
    assert [r.returncode for r in outcome.reloads] == [0]
    assert outcome.probe is not None
    report = outcome.probe.report
    assert [v.verdict for v in report.verdicts] == [Verdict.AUTHENTICATED] * 2, report.lines()
    assert [report.in_served_view(v) for v in report.verdicts] == [True, True]
    assert [v.result.chain[0] for v in report.verdicts] == [world.new.leaf.der()] * 2
    assert outcome.probe.rolled_back is None
    assert not outcome.probe_failed and probe_exit([outcome]) == 0
    assert outcome.warnings == ()
    assert posttls_finger(oracle, world.host, 25).verdict == "authenticated"


@pytest.mark.parametrize("rollback", [True, False], ids=["rollback", "warn"])
def test_a_service_on_a_stale_key_is_caught(
    rollback: bool,
    stale_world: World,
    lab_resolver: Resolver,
    auth_port: int,
    oracle: OracleResolver,
) -> None:
    world = stale_world
    context = world.context(lab_resolver, auth_port, probe=True, rollback_on_probe_failure=rollback)
    old_version = world.view.current
    outcome = consider(
        NAME,
        files_of(world.new),
        enrollment=world.enrollment(world.reload_command()),
        context=context,
        state=world.state,
    )
    assert outcome.action == Action.PROMOTED, outcome.decision
    assert outcome.probe is not None
    report = outcome.probe.report
    # smtpd has the new certificate and the old key: no TLS on either port, and with TLSA
    # published TLS is mandatory (RFC 7672 §2.2), so a DANE sender does not deliver.
    assert [v.verdict for v in report.verdicts] == [Verdict.NO_CHAIN] * 2, report.lines()
    assert outcome.probe_failed and probe_exit([outcome]) == 1
    text = " ".join(outcome.warnings)
    assert "a DANE sender would refuse delivery" in text
    assert all("\n" not in w for w in outcome.warnings)
    if rollback:
        assert outcome.probe.rolled_back == old_version
        assert world.view.current == old_version
        assert [r.returncode for r in outcome.probe.reloads] == [0]
        after = outcome.probe.after
        assert after is not None
        assert [v.verdict for v in after.verdicts] == [Verdict.AUTHENTICATED] * 2, after.lines()
        assert [v.result.chain[0] for v in after.verdicts] == [world.old.leaf.der()] * 2
        assert "rolled back to version" in text and "no DANE sender would refuse now" in text
        # The oracle agrees: delivery is restored.
        assert posttls_finger(oracle, world.host, 25).verdict == "authenticated"
    else:
        assert outcome.probe.rolled_back is None
        assert world.view.current != old_version
        assert "rollback_on_probe_failure is off" in text
        # The oracle agrees: a DANE sender gets no authenticated TLS session.
        finger = posttls_finger(oracle, world.host, 25)
        assert finger.verdict != "authenticated", finger.output


def test_the_probe_is_off_for_loopback_by_default(
    world: World, lab_resolver: Resolver, auth_port: int
) -> None:
    """Unset `probe`: only addresses of this host count, and loopback is none (a sender never
    delivers to 127.0.0.1); `probe = false` never probes."""
    for setting in ({}, {"probe": False}):
        context = world.context(lab_resolver, auth_port, **setting)
        outcome = consider(
            NAME,
            files_of(world.new if not setting else world.old),
            enrollment=world.enrollment(("true",)),
            context=context,
            state=world.state,
        )
        assert outcome.action == Action.PROMOTED
        assert outcome.probe is None


def test_acme_sh_reload_exits_1_and_rolls_back(
    stale_world: World,
    lab_resolver: Resolver,
    auth_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The whole command: acme.sh's --reloadcmd wrapper promotes the new chain, runs the wrapped
    `postfix reload`, the probe finds smtpd on the stale key, the previous chain is served and
    reloaded again, and the command exits 1 although the wrapped command succeeded."""
    world = stale_world
    with StateStore(world.state_dir).locked() as state:
        state.first_seen.update(world.state.first_seen)
    config = tmp_path / "config.toml"
    config.write_text(
        f'resolver = "{lab_resolver}"\nstate_dir = "{world.state_dir}"\nauth_port = {auth_port}\n'
        f'[lineage."{NAME}"]\nprobe = true\nrollback_on_probe_failure = true\n'
    )
    folder = tmp_path / "acme.sh" / world.host
    folder.mkdir(parents=True)
    new = files_of(world.new)
    for variable, name, data in (
        ("CERT_PATH", "cert.cer", new.cert),
        ("CERT_KEY_PATH", f"{world.host}.key", new.privkey),
        ("CA_CERT_PATH", "ca.cer", new.chain),
        ("CERT_FULLCHAIN_PATH", "fullchain.cer", new.fullchain),
    ):
        (folder / name).write_bytes(data)
        monkeypatch.setenv(variable, str(folder / name))
    monkeypatch.setenv("Le_Domain", world.host)
    old_version = world.view.current
    endpoints = [a for e in world.endpoints for a in ("--endpoint", e)]
    code = main(
        [
            "acme-sh",
            "reload",
            "--config",
            str(config),
            "--served",
            str(world.view.root),
            "--name",
            NAME,
            *endpoints,
            "--",
            *world.reload_command(),
        ]
    )
    out = capsys.readouterr()
    assert code == 1, out.out + out.err
    assert "a DANE sender would refuse delivery" in out.err
    assert "rolled back to version" in out.err and "no DANE sender would refuse now" in out.err
    assert "Traceback" not in out.out + out.err
    assert world.view.current == old_version


def test_a_reload_that_did_nothing_is_reported(
    world: World, lab_resolver: Resolver, auth_port: int
) -> None:
    """The reload command does nothing: smtpd still presents the old chain, which the old
    records still authenticate. No DANE sender refuses today (no failure, no rollback), but
    the outcome warns that the addresses do not present the served view."""
    context = world.context(lab_resolver, auth_port, probe=True, rollback_on_probe_failure=True)
    old_version = world.view.current
    # One connection per port first: each smtpd process starts now and keeps the old chain
    # (tests/infra/postfix.py: maxproc 1, long max_idle); without it the first probe would
    # start a fresh smtpd that reads the new files, as a reload would.
    targets = [target(world.host, "127.0.0.1", port) for port in (25, 465)]
    first = probe_all(targets)
    assert [r.chain[:1] for r in first] == [(world.old.leaf.der(),)] * 2, [r.line() for r in first]
    outcome = consider(
        NAME,
        files_of(world.new),
        enrollment=world.enrollment(("true",)),
        context=context,
        state=world.state,
    )
    assert outcome.action == Action.PROMOTED
    assert outcome.probe is not None
    report = outcome.probe.report
    assert [v.verdict for v in report.verdicts] == [Verdict.AUTHENTICATED] * 2, report.lines()
    assert [report.in_served_view(v) for v in report.verdicts] == [False, False]
    assert [v.result.chain[0] for v in report.verdicts] == [world.old.leaf.der()] * 2
    assert not outcome.probe_failed and outcome.probe.rolled_back is None
    assert world.view.current != old_version
    assert "still present another chain than the served view" in " ".join(outcome.warnings)
