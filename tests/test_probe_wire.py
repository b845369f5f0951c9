"""The probe's wire part against small loopback servers: the chain as sent, and one clean line
for every way a server can go wrong (no greeting, 5xx, no STARTTLS, refused STARTTLS, TLS
failure, trickle, huge line or chain, garbage, no answer, no route), within its time bounds."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dane_hook.dns.exchange import Resolver
from dane_hook.probe.run import AddressResult, probe_all, probe_one
from dane_hook.probe.targets import domain_targets, endpoint_targets, host_targets, target
from dane_hook.probe.verdict import Verdict, judge_all
from dane_hook.probe.wire import Handshake, Limits, ProbeStatus, Protocol, protocol_for_port
from tests import pki
from tests.infra import hostile
from tests.infra.lab import DnsLab
from tests.infra.procs import free_port

HOST = pki.HOST
FAST = Limits(connect_timeout=1.0, read_timeout=1.0, deadline=3.0)


@dataclass(frozen=True)
class Served:
    chain: pki.IssuedChain
    files: pki.ChainPaths

    @property
    def ders(self) -> tuple[bytes, ...]:
        return (self.chain.leaf.der(), self.chain.intermediate.der())

    def context(self, seen: list[str] | None = None) -> ssl.SSLContext:
        return hostile.tls_context(self.files.fullchain, self.files.key_pkcs8, seen)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    chain = pki.issued_chain(pki.KeyType.ECDSA_P256, label="probe wire")
    return Served(chain, chain.write(tmp_path_factory.mktemp("probe-wire")))


def probe(
    server: hostile.LoopbackServer, protocol: Protocol, limits: Limits = FAST
) -> AddressResult:
    return probe_one(
        target(HOST, server.host, server.port, protocol=protocol), limits=limits, helo="probe.test"
    )


def one_line(result: AddressResult) -> str:
    line = result.line()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"{HOST} {result.address}:{result.port} {result.status.value}: ")
    return line


# -- what a good server presents --------------------------------------------------------------


def test_port_decides_the_protocol() -> None:
    assert protocol_for_port(25) is Protocol.SMTP
    assert protocol_for_port(587) is Protocol.SMTP
    assert protocol_for_port(465) is Protocol.TLS
    assert protocol_for_port(143) is Protocol.IMAP
    assert protocol_for_port(110) is Protocol.POP3
    assert protocol_for_port(993) is Protocol.TLS
    assert protocol_for_port(995) is Protocol.TLS
    assert protocol_for_port(8443) is Protocol.TLS
    assert protocol_for_port(2525, {2525: Protocol.SMTP}) is Protocol.SMTP


def test_starttls_chain_is_the_served_chain_with_sni(served: Served) -> None:
    seen: list[str] = []
    script = hostile.Smtp(tls=served.context(seen))
    with hostile.serving(script) as server:
        result = probe(server, Protocol.SMTP)
    assert result.status is ProbeStatus.OK, result.line()
    assert result.chain == served.ders
    assert result.digests == tuple(hashlib.sha256(d).hexdigest() for d in served.ders)
    assert seen == [HOST]  # RFC 7672 §8.1
    assert [line.split()[0] for line in script.log] == [b"EHLO", b"STARTTLS"]
    one_line(result)


@pytest.mark.parametrize(
    ("make", "protocol"),
    [
        (lambda ctx: hostile.implicit_tls(ctx), Protocol.TLS),
        (lambda ctx: hostile.imap(ctx), Protocol.IMAP),
        (lambda ctx: hostile.pop3(ctx), Protocol.POP3),
    ],
    ids=["implicit TLS", "IMAP STARTTLS", "POP3 STLS"],
)
def test_other_protocols_present_the_chain(
    served: Served, make: Callable[[ssl.SSLContext], hostile.Handler], protocol: Protocol
) -> None:
    with hostile.serving(make(served.context())) as server:
        result = probe(server, protocol)
    assert result.status is ProbeStatus.OK, result.line()
    assert result.chain == served.ders


def test_ipv6_loopback(served: Served) -> None:
    try:
        server = hostile.LoopbackServer(hostile.Smtp(tls=served.context()), "::1")
    except OSError:
        pytest.skip("no IPv6 on loopback")
    with server:
        result = probe(server, Protocol.SMTP)
    assert result.status is ProbeStatus.OK, result.line()
    assert result.line().startswith(f"{HOST} [::1]:{server.port} ok: ")


# -- hostile and broken servers ---------------------------------------------------------------


Factory = Callable[[Served], hostile.Handler]

CASES: list[tuple[str, Factory, Protocol, ProbeStatus, str]] = [
    ("no greeting", lambda s: hostile.silent, Protocol.SMTP, ProbeStatus.TIMEOUT, "greeting"),
    (
        "554 greeting",
        lambda s: hostile.Smtp(greeting=b"554 5.7.1 go away\r\n"),
        Protocol.SMTP,
        ProbeStatus.REJECTED,
        "greeting 554",
    ),
    (
        "421 multi-line greeting",
        lambda s: hostile.Smtp(greeting=b"421-busy\r\n421 try later\r\n"),
        Protocol.SMTP,
        ProbeStatus.REJECTED,
        "greeting 421",
    ),
    (
        "STARTTLS not offered",
        lambda s: hostile.Smtp(ehlo=b"250-hostile.test\r\n250 8BITMIME\r\n"),
        Protocol.SMTP,
        ProbeStatus.NO_TLS,
        "STARTTLS is not offered",
    ),
    (
        "STARTTLS in the first EHLO line only",
        lambda s: hostile.Smtp(ehlo=b"250 STARTTLS\r\n"),
        Protocol.SMTP,
        ProbeStatus.NO_TLS,
        "not offered",
    ),
    (
        "STARTTLS refused",
        lambda s: hostile.Smtp(starttls=b"454 4.7.0 TLS not available due to local problem\r\n"),
        Protocol.SMTP,
        ProbeStatus.REJECTED,
        "STARTTLS answered 454",
    ),
    (
        "EHLO refused",
        lambda s: hostile.Smtp(ehlo=b"554 no\r\n"),
        Protocol.SMTP,
        ProbeStatus.REJECTED,
        "EHLO answered 554",
    ),
    (
        "garbage instead of TLS",
        lambda s: hostile.Smtp(instead_of_tls=b"HTTP/1.0 400 Bad Request\r\n\r\n" * 4),
        Protocol.SMTP,
        ProbeStatus.TLS_FAILED,
        "TLS handshake failed",
    ),
    (
        "closed after 220",
        lambda s: hostile.Smtp(),
        Protocol.SMTP,
        ProbeStatus.TLS_FAILED,
        "the TLS handshake",  # closed, or reset when our ClientHello meets a closed socket
    ),
    (
        "STARTTLS injection",
        lambda s: hostile.Smtp(tls=s.context(), after_starttls=b"250 injected\r\n"),
        Protocol.SMTP,
        ProbeStatus.PROTOCOL_ERROR,
        "sent data after agreeing to start TLS",
    ),
    (
        "HTTP instead of SMTP",
        lambda s: hostile.send_then_hold(b"HTTP/1.1 400 Bad Request\r\nServer: x\r\n\r\n"),
        Protocol.SMTP,
        ProbeStatus.PROTOCOL_ERROR,
        "not an SMTP reply",
    ),
    (
        "binary garbage",
        lambda s: hostile.send_then_hold(bytes(range(256)) * 4 + b"\n"),
        Protocol.SMTP,
        ProbeStatus.PROTOCOL_ERROR,
        "not an SMTP reply",
    ),
    (
        "huge line",
        lambda s: hostile.endless(b"220" + b"x" * 65533, 4 * 1024 * 1024),
        Protocol.SMTP,
        ProbeStatus.PROTOCOL_ERROR,
        "a line longer than 4096 bytes",
    ),
    (
        "endless multi-line greeting",
        lambda s: hostile.endless(b"220-hello\r\n" * 1000, 8 * 1024 * 1024),
        Protocol.SMTP,
        ProbeStatus.PROTOCOL_ERROR,
        "more than 200 lines",
    ),
    (
        "closed without a word",
        lambda s: hostile.send_then_close(b""),
        Protocol.SMTP,
        ProbeStatus.PROTOCOL_ERROR,
        "closed the connection",
    ),
    (
        "TLS garbage on an implicit port",
        lambda s: hostile.endless(b"\x16\x03\x01\xff\xff" + b"\x00" * 4091, 4 * 1024 * 1024),
        Protocol.TLS,
        ProbeStatus.TLS_FAILED,
        "",
    ),
    (
        "silent implicit TLS",
        lambda s: hostile.silent,
        Protocol.TLS,
        ProbeStatus.TIMEOUT,
        "TLS handshake",
    ),
    (
        "IMAP without STARTTLS",
        lambda s: hostile.imap(None, capabilities=b"IMAP4rev1"),
        Protocol.IMAP,
        ProbeStatus.NO_TLS,
        "STARTTLS is not among",
    ),
    (
        "IMAP BYE",
        lambda s: hostile.send_then_hold(b"* BYE too busy\r\n"),
        Protocol.IMAP,
        ProbeStatus.REJECTED,
        "BYE",
    ),
    (
        "POP3 without STLS",
        lambda s: hostile.pop3(None, capa=b"USER\r\n"),
        Protocol.POP3,
        ProbeStatus.NO_TLS,
        "STLS is not among",
    ),
    (
        "POP3 -ERR greeting",
        lambda s: hostile.send_then_hold(b"-ERR no\r\n"),
        Protocol.POP3,
        ProbeStatus.REJECTED,
        "-ERR",
    ),
]


@pytest.mark.parametrize(
    ("make", "protocol", "status", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_server_gives_one_clean_line(
    served: Served, make: Factory, protocol: Protocol, status: ProbeStatus, words: str
) -> None:
    with hostile.serving(make(served)) as server:
        begin = time.monotonic()
        result = probe(server, protocol)
        took = time.monotonic() - begin
    line = one_line(result)
    assert result.status is status, line
    assert words in result.reason, line
    assert result.chain == ()
    assert took < FAST.deadline + 1.0, f"{took:.2f} s: {line}"


def test_a_trickle_is_cut_by_the_deadline() -> None:
    # One byte every 0.2 s: each read gets data in time, only the total deadline ends it.
    limits = Limits(connect_timeout=1.0, read_timeout=1.0, deadline=2.0)
    with hostile.serving(hostile.trickle(b"220-slow\r\n", 0.2)) as server:
        begin = time.monotonic()
        result = probe(server, Protocol.SMTP, limits)
        took = time.monotonic() - begin
    assert result.status is ProbeStatus.TIMEOUT, result.line()
    assert "2 s budget" in result.reason
    assert 1.8 < took < 3.0
    one_line(result)


def test_a_huge_chain_is_refused_within_the_byte_cap(served: Served, tmp_path: Path) -> None:
    # 2,000 copies of the intermediate (~1 MB): OpenSSL's own limit on a certificate list
    # (100 KiB by default) or the probe's byte cap ends it, whichever comes first.
    bundle = served.files.cert.read_bytes() + served.files.intermediate.read_bytes() * 2000
    (tmp_path / "huge.pem").write_bytes(bundle)
    context = hostile.tls_context(tmp_path / "huge.pem", served.files.key_pkcs8)
    with hostile.serving(hostile.Smtp(tls=context)) as server:
        result = probe(server, Protocol.SMTP, Limits(read_timeout=2.0, deadline=5.0))
    assert result.status is ProbeStatus.TLS_FAILED, result.line()
    assert "excessive message size" in result.reason or "exceeded" in result.reason
    one_line(result)


def test_nothing_listening_is_refused() -> None:
    port = free_port()
    result = probe_one(target(HOST, "127.0.0.1", port, protocol=Protocol.SMTP), limits=FAST)
    assert result.status is ProbeStatus.REFUSED, result.line()
    one_line(result)


def test_an_address_that_does_not_answer_times_out() -> None:
    with hostile.unresponsive() as (address, port):
        begin = time.monotonic()
        result = probe_one(target(HOST, address, port, protocol=Protocol.SMTP), limits=FAST)
        took = time.monotonic() - begin
    if result.status is not ProbeStatus.TIMEOUT:
        pytest.skip(f"the kernel accepted despite a full queue: {result.line()}")
    assert "connect" in result.reason
    assert took < FAST.connect_timeout + 1.0


_UNREACHABLE_SCRIPT = """
import json, sys
from dane_hook.probe.run import probe_one
from dane_hook.probe.targets import target
from dane_hook.probe.wire import Limits
result = probe_one(target("mx.example.test", "2001:db8::25", 25), limits=Limits(deadline=3.0))
print(json.dumps([result.status.value, result.line()]))
"""


def test_ipv6_without_a_route_is_unreachable() -> None:
    # In a network namespace of its own (lo up, nothing else) no packet can leave the host,
    # and an IPv6 address outside ::1 has no route: the case of a host without IPv6.
    unshare = shutil.which("unshare")
    ip = shutil.which("ip")
    if unshare is None or ip is None or os.geteuid() != 0:
        pytest.skip("needs root, unshare(1) and ip(8) for a private network namespace")
    root = Path(__file__).resolve().parents[1]
    command = f"{ip} link set lo up && exec {sys.executable} -c '{_UNREACHABLE_SCRIPT}'"
    done = subprocess.run(
        [unshare, "--net", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=root,
        check=False,
    )
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"no network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr

    status, line = json.loads(done.stdout)
    assert status == "unreachable", line
    assert line.startswith("mx.example.test [2001:db8::25]:25 unreachable: cannot connect: ")


# -- many addresses at once -------------------------------------------------------------------

GREETING_DELAY = 0.5


@pytest.fixture
def delayed_mx(served: Served, dns_lab: DnsLab) -> Iterator[tuple[str, list[int]]]:
    """3 MX hosts, each with an A (127.0.10.N) and an AAAA (::1), on an SMTP port and an
    implicit-TLS port; every server waits GREETING_DELAY before it greets."""
    smtp_port, tls_port = free_port(), free_port()
    servers: list[hostile.LoopbackServer] = []
    domain = f"delayed-{os.getpid()}-{threading.get_ident() % 1000}.example.test."
    try:
        for address in ("127.0.10.1", "127.0.10.2", "127.0.10.3", "::1"):
            smtp = hostile.Smtp(tls=served.context(), greeting_delay=GREETING_DELAY)
            tls = hostile.implicit_tls(served.context(), delay=GREETING_DELAY)
            try:
                servers.append(hostile.LoopbackServer(smtp, address, smtp_port))
                servers.append(hostile.LoopbackServer(tls, address, tls_port))
            except OSError as exc:
                pytest.skip(f"cannot listen on {address}: {exc}")
        for server in servers:
            server.__enter__()
        for number in (1, 2, 3):
            host = f"mx{number}.{domain}"
            dns_lab.update(
                host,
                add=[(300, "A", f"127.0.10.{number}"), (300, "AAAA", "::1")],
            )
            dns_lab.update(domain, add=[(300, "MX", f"{number * 10} {host}")])
        yield domain, [smtp_port, tls_port]
    finally:
        for server in servers:
            server.stop()


def test_twelve_addresses_take_about_one_round_trip(
    delayed_mx: tuple[str, list[int]], lab_resolver: Resolver
) -> None:
    domain, (smtp_port, tls_port) = delayed_mx
    found = domain_targets(
        domain,
        lab_resolver,
        [smtp_port, tls_port],
        protocols={smtp_port: Protocol.SMTP, tls_port: Protocol.TLS},
    )
    assert found.problems == ()
    assert len(found.targets) == 12
    assert [t.host for t in found.targets][::4] == [
        f"mx{n}.{domain.rstrip('.')}" for n in (1, 2, 3)
    ]
    assert all(t.secure for t in found.targets)
    begin = time.monotonic()
    results = probe_all(found.targets, limits=Limits(read_timeout=5.0, deadline=10.0))
    took = time.monotonic() - begin
    assert [r.status for r in results] == [ProbeStatus.OK] * 12, [r.line() for r in results]
    serial = 12 * GREETING_DELAY
    # Side by side, the twelve waits overlap: a third of the serial sum leaves ample room for
    # a loaded machine (about 0.6 s is typical) while twelve waits in a row cannot fit.
    assert took < serial / 3, f"{took:.2f} s for 12 probes, serial would be >= {serial:.1f} s"


# -- which addresses: MX, implicit MX, null MX, insecure names --------------------------------


def test_targets_follow_dns(dns_lab: DnsLab, lab_resolver: Resolver) -> None:
    base = f"targets-{os.getpid()}.example.test."
    dns_lab.update(f"implicit.{base}", add=[(300, "A", "127.0.0.1"), (300, "AAAA", "::1")])
    dns_lab.update(f"nullmx.{base}", add=[(300, "MX", "0 .")])

    implicit = domain_targets(f"implicit.{base}", lab_resolver, [25, 465])
    assert implicit.problems == ()
    assert [(t.address, t.port, t.protocol) for t in implicit.targets] == [
        ("127.0.0.1", 25, Protocol.SMTP),
        ("127.0.0.1", 465, Protocol.TLS),
        ("::1", 25, Protocol.SMTP),
        ("::1", 465, Protocol.TLS),
    ]
    assert implicit.targets[0].tlsa_owner == f"_25._tcp.implicit.{base}"
    assert implicit.targets[0].host == f"implicit.{base}".rstrip(".")

    null = domain_targets(f"nullmx.{base}", lab_resolver)
    assert null.targets == ()
    assert "null MX" in null.problems[0]

    missing = domain_targets(f"nowhere.{base}", lab_resolver)
    assert missing.targets == ()
    assert "NXDOMAIN" in missing.problems[0]

    endpoint = endpoint_targets("_587._tcp.mail.example.test", lab_resolver)
    assert [(t.host, t.address, t.port, t.protocol, t.secure) for t in endpoint.targets] == [
        ("mail.example.test", "127.0.0.1", 587, Protocol.SMTP, True)
    ]
    assert endpoint_targets("mail.example.test", lab_resolver).problems


def test_insecure_addresses_are_marked(lab_resolver: Resolver) -> None:
    # unsigned.test is an insecure delegation: a DANE sender does not look up TLSA there
    # (RFC 7672 §2.2.2), and the verdict says so without asking.
    found = host_targets("mail.unsigned.test", lab_resolver, [25])
    assert [(t.address, t.secure) for t in found.targets] == [("127.0.0.1", False)]
    result = AddressResult.of(found.targets[0], Handshake(ProbeStatus.REFUSED, "refused"))
    (verdict,) = judge_all([result], lab_resolver)
    assert verdict.verdict is Verdict.INSECURE
    assert verdict.answer is None
    assert verdict.sender_refuses is False
