"""The probe against a real Postfix on loopback, with posttls-finger -l dane as the oracle;
and against a real Dovecot for IMAP and POP3 (STARTTLS, STLS and implicit TLS).

Postfix serves the files a test gives it, on a STARTTLS port and on an implicit-TLS port
(smtpd_tls_wrappermode). First the wire: the chain the probe reads is the served file,
certificate for certificate, and after a reload the new one. Then the matrix of DANE cases,
each judged by the probe (the matcher `check` uses, over the lab's validating resolver) and by
posttls-finger resolving through the same lab: they must agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from dane_hook.dns.exchange import Resolver
from dane_hook.probe.run import probe_all
from dane_hook.probe.targets import Target, target
from dane_hook.probe.verdict import Verdict, judge_all
from dane_hook.probe.wire import ProbeStatus, Protocol
from tests import pki
from tests.infra.dovecot import Dovecot, dovecot_missing
from tests.infra.lab import EXAMPLE, DnsLab
from tests.infra.postfix import OracleResolver, Postfix, postfix_missing, posttls_finger
from tests.infra.procs import LabError, wait_until

pytestmark = pytest.mark.skipif(
    bool(postfix_missing()),
    reason="Postfix not installed (Debian package postfix; tests/run.sh installs it)",
)

ZONE = "probe.example.test"
CASES = [
    "wire",
    "reload",
    "ee",
    "ta",
    "mismatch",
    "not-reloaded",
    "no-intermediate",
    "no-starttls",
    "no-tlsa",
    "bogus",
    "dovecot",
]
_serial = itertools.count(1)


def host_of(case: str) -> str:
    return f"{case}.{ZONE}"


@dataclass(frozen=True)
class Certs:
    """Two issued chains whose leaves carry every case's host name: `old` and `new` have
    other keys and other intermediates; `stranger` is a key nobody serves."""

    old: pki.IssuedChain
    new: pki.IssuedChain
    stranger: pki.Issued
    folder: Path

    def files(self, which: str, *, with_intermediate: bool = True) -> tuple[Path, Path]:
        chain = self.old if which == "old" else self.new
        folder = self.folder / f"{which}-{next(_serial)}"
        folder.mkdir()
        parts = [chain.leaf, chain.intermediate] if with_intermediate else [chain.leaf]
        return (
            pki.write_bundle(folder / "fullchain.pem", parts),
            _write(folder / "privkey.pem", chain.leaf.key_pem()),
        )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _chain(label: str) -> pki.IssuedChain:
    validity = pki.valid_now()
    top = pki.root(f"root of {label}", validity=validity)
    ca = pki.intermediate(f"intermediate of {label}", top, validity=validity)
    names = [host_of(case) for case in CASES]
    end = pki.leaf(ca, names, label=f"leaf of {label}", validity=validity)
    return pki.IssuedChain(top, ca, end)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    stranger = _chain("probe stranger").leaf
    return Certs(
        _chain("probe old"), _chain("probe new"), stranger, tmp_path_factory.mktemp("certs")
    )


@pytest.fixture(scope="module")
def names(dns_lab: DnsLab) -> None:
    """Every case host has an A record 127.0.0.1 in the signed example.test."""
    for case in CASES:
        dns_lab.update(f"{host_of(case)}.", add=[(300, "A", "127.0.0.1")])


@pytest.fixture
def postfix(certs: Certs) -> Iterator[Callable[..., Postfix]]:
    """`postfix(chain_file, key_file, tls_level="may")`: a started Postfix, stopped after."""
    started: list[Postfix] = []

    def start(chain_file: Path, key_file: Path, tls_level: str = "may") -> Postfix:
        server = Postfix(chain_file, key_file, tls_level=tls_level)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def oracle(dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OracleResolver]:
    """The lab's validating resolver again, on 127.0.0.153:53 for posttls-finger."""
    resolver = OracleResolver(
        tmp_path_factory.mktemp("oracle"),
        "127.0.0.153",
        dns_lab.primary_upstream,
        [zone.name for zone in dns_lab.zones],
        dns_lab.trust_anchors(),
    )
    try:
        resolver.start(EXAMPLE)
    except LabError as exc:
        pytest.skip(f"no resolver on 127.0.0.153:53 for posttls-finger: {exc}")
    try:
        yield resolver
    finally:
        resolver.stop()


@pytest.fixture(scope="module")
def bogus_oracle(
    dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OracleResolver]:
    """A validating resolver on 127.0.0.154:53 behind the lab's TLSA-forging proxy."""
    proxy, _ = dns_lab.tamper_resolver()
    resolver = OracleResolver(
        tmp_path_factory.mktemp("bogus-oracle"),
        "127.0.0.154",
        (proxy.address, proxy.port),
        [zone.name for zone in dns_lab.zones],
        dns_lab.trust_anchors(),
    )
    try:
        resolver.start(EXAMPLE)
    except LabError as exc:
        pytest.skip(f"no resolver on 127.0.0.154:53 for posttls-finger: {exc}")
    try:
        yield resolver
    finally:
        resolver.stop()


def targets_of(server: Postfix, case: str) -> list[Target]:
    host = host_of(case)
    return [
        target(host, server.address, server.starttls_port, protocol=Protocol.SMTP),
        target(host, server.address, server.wrapper_port, protocol=Protocol.TLS),
    ]


def pem_ders(path: Path) -> tuple[bytes, ...]:
    return tuple(
        c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(path.read_bytes())
    )


# -- the wire: what Postfix presents is the served file ---------------------------------------


def test_postfix_presents_the_served_chain_on_both_ports(
    certs: Certs, postfix: Callable[..., Postfix]
) -> None:
    chain_file, key_file = certs.files("old")
    server = postfix(chain_file, key_file)
    results = probe_all(targets_of(server, "wire"))
    for result in results:
        assert result.status is ProbeStatus.OK, result.line()
        assert result.chain == pem_ders(chain_file)
    assert len(results[0].chain) == 2


def test_reload_makes_postfix_present_the_new_files(
    certs: Certs, postfix: Callable[..., Postfix]
) -> None:
    old_chain, old_key = certs.files("old")
    server = postfix(old_chain, old_key)
    old = pem_ders(old_chain)
    before = probe_all(targets_of(server, "reload"))
    assert [r.chain for r in before] == [old] * 2
    new_chain, new_key = certs.files("new")
    # The served files change in place, as a served view's rename does; smtpd keeps the old
    # certificate until it is restarted (it reads its files when the process starts).
    old_chain.write_bytes(new_chain.read_bytes())
    old_key.write_bytes(new_key.read_bytes())
    stale = probe_all(targets_of(server, "reload"))
    assert [r.chain for r in stale] == [old] * 2
    server.reload()
    wait_until(
        lambda: all(
            r.chain == pem_ders(new_chain) for r in probe_all(targets_of(server, "reload"))
        ),
        "Postfix to present the new chain after reload",
        10.0,
    )


# -- the matrix: the probe's verdict and posttls-finger's --------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    records: Callable[[Certs], list[str]]
    """TLSA records published at the case's endpoints (both ports)."""
    expect: Verdict
    finger: str
    """posttls-finger's verdict on the STARTTLS port (tests.infra.postfix.Finger.verdict)."""
    with_intermediate: bool = True
    tls_level: str = "may"
    bogus: bool = False
    wrapper_expect: Verdict | None = None
    """The verdict on the implicit-TLS port when it differs from `expect`."""


MATRIX = [
    Case("ee", lambda c: [pki.rdata(c.old.leaf, 3, 1, 1)], Verdict.AUTHENTICATED, "authenticated"),
    Case(
        "ta",
        lambda c: [pki.rdata(c.old.intermediate, 2, 1, 1)],
        Verdict.AUTHENTICATED,
        "authenticated",
    ),
    Case(
        "mismatch",
        lambda c: [pki.rdata(c.stranger, 3, 1, 1)],
        Verdict.NOT_AUTHENTICATED,
        "not-authenticated",
    ),
    Case(
        "no-intermediate",
        lambda c: [pki.rdata(c.old.intermediate, 2, 1, 1)],
        Verdict.NOT_AUTHENTICATED,
        "not-authenticated",
        with_intermediate=False,
    ),
    Case(
        "no-starttls",
        lambda c: [pki.rdata(c.old.leaf, 3, 1, 1)],
        Verdict.NO_CHAIN,
        "no-tls",
        tls_level="none",
        # The smtps service keeps its own `-o smtpd_tls_security_level=encrypt`.
        wrapper_expect=Verdict.AUTHENTICATED,
    ),
    Case("no-tlsa", lambda c: [], Verdict.NO_DANE, "no-dane"),
    Case(
        "bogus",
        lambda c: [pki.rdata(c.old.leaf, 3, 1, 1)],
        Verdict.BOGUS,
        "bogus",
        bogus=True,
    ),
]


@pytest.fixture(scope="module")
def shared_postfix(certs: Certs) -> Iterator[Postfix]:
    """One Postfix serving the old chain, for the cases that only change DNS."""
    chain_file, key_file = certs.files("old")
    server = Postfix(chain_file, key_file)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def publish(dns_lab: DnsLab, server: Postfix, host: str, records: list[str]) -> None:
    if not records:
        return
    for port in (server.starttls_port, server.wrapper_port):
        dns_lab.add_records(f"_{port}._tcp.{host}.", 300, records)


@pytest.mark.parametrize("case", MATRIX, ids=[case.name for case in MATRIX])
def test_probe_and_posttls_finger_agree(
    case: Case,
    certs: Certs,
    names: None,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    tamper_resolver: Resolver,
    shared_postfix: Postfix,
    postfix: Callable[..., Postfix],
    oracle: OracleResolver,
    bogus_oracle: OracleResolver,
) -> None:
    if case.with_intermediate and case.tls_level == "may":
        server = shared_postfix
    else:
        chain_file, key_file = certs.files("old", with_intermediate=case.with_intermediate)
        server = postfix(chain_file, key_file, tls_level=case.tls_level)
    host = host_of(case.name)
    publish(dns_lab, server, host, case.records(certs))
    resolver = tamper_resolver if case.bogus else lab_resolver
    verdicts = judge_all(probe_all(targets_of(server, case.name)), resolver)
    starttls, wrapper = verdicts
    assert starttls.verdict is case.expect, starttls.line()
    assert wrapper.verdict is (case.wrapper_expect or case.expect), wrapper.line()
    finger = posttls_finger(bogus_oracle if case.bogus else oracle, host, server.starttls_port)
    assert finger.verdict == case.finger, finger.output
    # The two agree on what a DANE sender does at the STARTTLS port.
    assert starttls.sender_refuses is (case.finger not in ("authenticated", "no-dane")), (
        starttls.line()
    )
    for verdict in verdicts:
        assert "\n" not in verdict.line()
    if case.expect is Verdict.AUTHENTICATED:
        depth = 0 if case.name == "ee" else 1
        assert starttls.depth == depth
        assert starttls.matched == case.records(certs)[0]
        assert starttls.result.digests[0] in starttls.line() or starttls.matched in starttls.line()


def test_not_reloaded_is_caught_and_a_reload_restores_delivery(
    certs: Certs,
    names: None,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    postfix: Callable[..., Postfix],
    oracle: OracleResolver,
) -> None:
    """A promotion without a reload: the new chain's records are published and the served
    files are the new chain, but smtpd still presents the old one, which the records no
    longer cover. The probe sees the old chain and says a DANE sender refuses; posttls-finger
    agrees. After the reload both say authenticated."""
    chain_file, key_file = certs.files("old")
    server = postfix(chain_file, key_file)
    host = host_of("not-reloaded")
    first = probe_all(targets_of(server, "not-reloaded"))  # smtpd processes start, old chain
    assert [r.status for r in first] == [ProbeStatus.OK] * 2
    new_chain, new_key = certs.files("new")
    chain_file.write_bytes(new_chain.read_bytes())
    key_file.write_bytes(new_key.read_bytes())
    publish(dns_lab, server, host, [pki.rdata(certs.new.leaf, 3, 1, 1)])

    stale = judge_all(probe_all(targets_of(server, "not-reloaded")), lab_resolver)
    for verdict in stale:
        assert verdict.verdict is Verdict.NOT_AUTHENTICATED, verdict.line()
        assert verdict.sender_refuses is True
        assert verdict.result.chain != pem_ders(chain_file)  # not the served view
    assert posttls_finger(oracle, host, server.starttls_port).verdict == "not-authenticated"

    server.reload()
    wait_until(
        lambda: all(
            r.chain == pem_ders(chain_file) for r in probe_all(targets_of(server, "not-reloaded"))
        ),
        "Postfix to present the new chain after reload",
        10.0,
    )
    fresh = judge_all(probe_all(targets_of(server, "not-reloaded")), lab_resolver)
    assert [v.verdict for v in fresh] == [Verdict.AUTHENTICATED] * 2, [v.line() for v in fresh]
    assert posttls_finger(oracle, host, server.starttls_port).verdict == "authenticated"


# -- Dovecot: IMAP and POP3 ----------------------------------------------------------------------


@pytest.mark.skipif(bool(dovecot_missing()), reason="Dovecot not installed (dovecot-imapd/pop3d)")
def test_dovecot_presents_the_served_chain_and_reloads(
    certs: Certs, names: None, dns_lab: DnsLab, lab_resolver: Resolver
) -> None:
    """143 (STARTTLS), 993, 110 (STLS) and 995 present the served file; with 3 1 1 records
    of the old key the probe says authenticated, and after new files and a SIGHUP the new
    chain is presented and no longer matches."""
    chain_file, key_file = certs.files("old")
    server = Dovecot(chain_file, key_file)
    host = host_of("dovecot")
    ports = {
        server.imap: Protocol.IMAP,
        server.imaps: Protocol.TLS,
        server.pop3: Protocol.POP3,
        server.pop3s: Protocol.TLS,
    }
    targets = [target(host, server.address, port, protocol=p) for port, p in ports.items()]
    try:
        server.start()
        for port in ports:
            dns_lab.add_records(f"_{port}._tcp.{host}.", 300, [pki.rdata(certs.old.leaf, 3, 1, 1)])
        before = judge_all(probe_all(targets), lab_resolver)
        for verdict in before:
            assert verdict.result.chain == pem_ders(chain_file), verdict.result.line()
            assert verdict.verdict is Verdict.AUTHENTICATED, verdict.line()
        new_chain, new_key = certs.files("new")
        chain_file.write_bytes(new_chain.read_bytes())
        key_file.write_bytes(new_key.read_bytes())
        server.reload()
        wait_until(
            lambda: all(r.chain == pem_ders(new_chain) for r in probe_all(targets)),
            "Dovecot to present the new chain after SIGHUP",
            10.0,
        )
        after = judge_all(probe_all(targets), lab_resolver)
        assert [v.verdict for v in after] == [Verdict.NOT_AUTHENTICATED] * 4
    finally:
        server.stop()
