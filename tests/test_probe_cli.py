"""`dane-hook probe` and `check --probe`, in process, against loopback servers and the lab's DNS.

The servers are small loopback TLS servers (tests/infra/hostile.py) on free ports, so the
probe speaks implicit TLS to them (any port that is not a well-known one, RFC 8314 §3.3); the
names, TLSA records and their validation are the lab's signed zone and validating resolver.
JSON output is checked against dane_hook/render/schemas/probe.schema.json.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dane_hook.cli import main
from dane_hook.config import Config
from dane_hook.dns.exchange import Resolver
from dane_hook.probe.verdict import Verdict
from dane_hook.probe.wire import Limits
from dane_hook.rollover.observe import Settings
from dane_hook.rollover.probing import probe_lineages
from dane_hook.rollover.promotion import Context
from dane_hook.rollover.served_view import ChainFiles, ServedView
from dane_hook.rollover.state import Enrollment, State
from tests import pki
from tests.infra import hostile
from tests.infra.lab import DnsLab
from tests.schemas import schema, validated

ZONE = "probe-cli.example.test"
_serial = itertools.count(1)


def probe_valid(document: dict[str, Any], definition: str | None = None) -> dict[str, Any]:
    """`document` checked against the probe schema, or against one of its $defs."""
    mine = schema("probe")
    target = mine if definition is None else {**mine["$defs"][definition], "$defs": mine["$defs"]}
    validator = jsonschema.Draft202012Validator(
        target, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, errors[:5]
    return document


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[pki.IssuedChain, pki.ChainPaths]:
    issued = pki.issued_chain(pki.KeyType.ECDSA_P256, label="probe cli")
    return issued, issued.write(tmp_path_factory.mktemp("probe-cli"))


@pytest.fixture
def tls_server(
    chain: tuple[pki.IssuedChain, pki.ChainPaths],
) -> Iterator[hostile.LoopbackServer]:
    _, files = chain
    context = hostile.tls_context(files.fullchain, files.key_pkcs8)
    with hostile.serving(hostile.implicit_tls(context)) as server:
        yield server


def name_host(dns_lab: DnsLab, address: str = "127.0.0.1") -> str:
    host = f"h{next(_serial)}.{ZONE}"
    dns_lab.update(f"{host}.", add=[(300, "A", address)])
    return host


def lab_args(lab_resolver: Resolver) -> list[str]:
    return ["--resolver", str(lab_resolver), "--timeout", "2", "--probe-timeout", "5"]


def test_probe_endpoint_json(
    chain: tuple[pki.IssuedChain, pki.ChainPaths],
    tls_server: hostile.LoopbackServer,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    issued, _ = chain
    host = name_host(dns_lab)
    owner = f"_{tls_server.port}._tcp.{host}."
    dns_lab.add_records(owner, 300, [pki.rdata(issued.leaf, 3, 1, 1)])
    argv = ["probe", "--endpoint", f"{host}:{tls_server.port}", "--format", "json"]
    code = main([*argv, *lab_args(lab_resolver)])
    document = probe_valid(json.loads(capsys.readouterr().out))
    assert code == 0, document
    (address,) = document["addresses"]
    assert address["verdict"] == "authenticated"
    assert address["tlsa_owner"] == owner
    assert address["depth"] == 0
    assert address["matched"] == pki.rdata(issued.leaf, 3, 1, 1)
    assert address["digests"][0] == hashlib.sha256(issued.leaf.der()).hexdigest()
    assert address["sender_refuses"] is False
    assert address["in_served_view"] is None  # no served view given
    assert document["exit_status"] == 0 and document["refuses"] is False

    # Another key published: the same server is now refused, exit 1.
    stranger = pki.issued_chain(pki.KeyType.ECDSA_P256, label="probe cli stranger").leaf
    other = name_host(dns_lab)
    dns_lab.add_records(f"_{tls_server.port}._tcp.{other}.", 300, [pki.rdata(stranger, 3, 1, 1)])
    code = main(["probe", "--endpoint", f"{other}:{tls_server.port}", *lab_args(lab_resolver)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.count("\n") == 1 and " not-authenticated: " in out


def test_probe_domain_gives_one_line_per_address(
    chain: tuple[pki.IssuedChain, pki.ChainPaths],
    tls_server: hostile.LoopbackServer,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two MX hosts: one presents the published key, the other sends garbage instead of TLS.
    Each address gets its one line, and the exit status is the worst (1)."""
    issued, _ = chain
    port = tls_server.port
    good = name_host(dns_lab)
    record = pki.rdata(issued.leaf, 3, 1, 1)
    with hostile.serving(hostile.send_then_hold(b"\x00garbage\xff" * 8), "127.0.13.1", port):
        bad = name_host(dns_lab, "127.0.13.1")
        domain = f"d{next(_serial)}.{ZONE}"
        dns_lab.update(f"{domain}.", add=[(300, "MX", f"10 {good}."), (300, "MX", f"20 {bad}.")])
        for host in (good, bad):
            dns_lab.add_records(f"_{port}._tcp.{host}.", 300, [record])
        code = main(["probe", domain, "--port", str(port), *lab_args(lab_resolver)])
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert code == 1, out.out
    assert lines[0] == f"{domain}:"
    assert len(lines) == 3, lines
    assert lines[1].startswith(f"  {good} 127.0.0.1:{port} authenticated: ")
    assert lines[2].startswith(f"  {bad} 127.0.13.1:{port} no-chain: ")
    assert "Traceback" not in out.out + out.err


def test_probe_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe"]) == 2
    assert main(["probe", "example.test", "--endpoint", "mx.example.test"]) == 2
    assert "give one of DOMAIN" in capsys.readouterr().err


def test_check_probe_has_the_probe_fields(
    chain: tuple[pki.IssuedChain, pki.ChainPaths],
    tls_server: hostile.LoopbackServer,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    auth_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    issued, files = chain
    host = name_host(dns_lab)
    owner = f"_{tls_server.port}._tcp.{host}."
    dns_lab.add_records(owner, 300, [pki.rdata(issued.leaf, 3, 1, 1)])
    code = main(
        [
            "check",
            "--chain",
            str(files.fullchain),
            "--key",
            str(files.key_pkcs8),
            "--endpoint",
            owner,
            "--state-dir",
            str(tmp_path),
            "--auth-port",
            str(auth_port),
            "--probe",
            "--format",
            "json",
            *lab_args(lab_resolver),
        ]
    )
    document = json.loads(capsys.readouterr().out)
    probed = probe_valid(document.pop("probe"), "probe")
    validated(json.dumps(document), "check")
    # The records are younger than 2 x TTL: check says wait (5), the probe adds nothing worse.
    assert code == 5, probed
    assert [a["verdict"] for a in probed["addresses"]] == ["authenticated"]

    code = main(
        [
            "check",
            "--chain",
            str(files.fullchain),
            "--key",
            str(files.key_pkcs8),
            "--endpoint",
            owner,
            "--state-dir",
            str(tmp_path),
            "--auth-port",
            str(auth_port),
            "--probe",
            *lab_args(lab_resolver),
        ]
    )
    text = capsys.readouterr().out
    assert code == 5
    assert "\nprobe:\n" in text and f"{host} 127.0.0.1:{tls_server.port} authenticated" in text


def test_probe_cert_name_uses_the_lineage_endpoints(
    chain: tuple[pki.IssuedChain, pki.ChainPaths],
    tls_server: hostile.LoopbackServer,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    issued, _ = chain
    host = name_host(dns_lab)
    owner = f"_{tls_server.port}._tcp.{host}."
    dns_lab.add_records(owner, 300, [pki.rdata(issued.leaf, 3, 1, 1)])
    config = tmp_path / "config.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[lineage."cli"]\nendpoints = ["{owner}"]\n'
        "probe = true\n"
    )
    argv = ["probe", "--cert-name", "cli", "--config", str(config), "--format", "json"]
    code = main([*argv, *lab_args(lab_resolver)])
    document = probe_valid(json.loads(capsys.readouterr().out))
    assert code == 0, document
    assert [(a["lineage"], a["verdict"]) for a in document["addresses"]] == [
        ("cli", "authenticated")
    ]
    assert main(["probe", "--cert-name", "nothing", "--config", str(config)]) == 3
    assert "nothing is not enrolled, configured or held" in capsys.readouterr().err
    config.write_text(config.read_text() + '[lineage."bare"]\n')
    assert main(["probe", "--cert-name", "bare", "--config", str(config)]) == 4
    assert "no endpoints configured" in capsys.readouterr().out


def test_a_bad_probe_key_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[lineage."x"]\nprobe = "yes"\n')
    assert main(["probe", "--cert-name", "x", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert f'{config}: lineage."x".probe: expected true or false' in err
    config.write_text('[lineage."x"]\nrollback_on_probe_failure = 1\n')
    assert main(["probe", "--cert-name", "x", "--config", str(config)]) == 3
    assert "rollback_on_probe_failure: expected true or false" in capsys.readouterr().err


def test_probe_lineages_compares_with_the_served_view(
    chain: tuple[pki.IssuedChain, pki.ChainPaths],
    tls_server: hostile.LoopbackServer,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    tmp_path: Path,
) -> None:
    """What `status --probe` calls: an enrolled lineage's endpoints, each address's verdict,
    and whether it presents the served view's chain (a stale service does not)."""
    issued, _ = chain
    host = name_host(dns_lab)
    owner = f"_{tls_server.port}._tcp.{host}."
    dns_lab.add_records(owner, 300, [pki.rdata(issued.leaf, 3, 1, 1)])
    leaf, ca = issued.leaf, issued.intermediate
    same = ChainFiles(leaf.key_pem(), leaf.pem(), ca.pem(), leaf.pem() + ca.pem())
    other = pki.issued_chain(pki.KeyType.ECDSA_P256, label="probe cli other")
    newer = ChainFiles(
        other.leaf.key_pem(),
        other.leaf.pem(),
        other.intermediate.pem(),
        other.leaf.pem() + other.intermediate.pem(),
    )
    view = ServedView(tmp_path / "served")
    state = State()
    state.enrolled["lin"] = Enrollment("certbot", str(view.root), (owner,))
    context = Context(
        Config(state_dir=tmp_path / "state"),
        Settings(lab_resolver, 2.0, 2),
        datetime.now(timezone.utc),
    )
    for files, served in ((same, True), (newer, False)):
        view.install(files)
        (probe,) = probe_lineages(context, state, ["lin"], limits=Limits(deadline=5.0))
        (verdict,) = probe.report.verdicts
        assert verdict.verdict is Verdict.AUTHENTICATED, probe.report.lines()
        assert probe.report.in_served_view(verdict) is served
        entry = probe_valid(probe.to_json(), "probe")
        assert entry["lineage"] == "lin" and entry["endpoints"] == [owner]
        assert entry["addresses"][0]["in_served_view"] is served
        assert ("NOT the served chain" in probe.report.lines()[0]) is not served


def test_the_budget_ends_a_silent_server(
    dns_lab: DnsLab, lab_resolver: Resolver, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that accepts and never speaks: --budget 1 ends the run after about a second
    although one address may take 10, with one timeout line and exit 0 (no TLSA here)."""
    with hostile.serving(hostile.silent) as server:
        host = name_host(dns_lab)
        begin = time.monotonic()
        argv = ["probe", "--endpoint", f"{host}:{server.port}", "--resolver", str(lab_resolver)]
        code = main([*argv, "--probe-timeout", "10", "--budget", "1"])
        took = time.monotonic() - begin
    out = capsys.readouterr().out
    assert code == 0, out
    assert took < 4.0, f"{took:.1f} s"
    assert out.count("\n") == 1 and " no-dane: " in out and "timeout: " in out, out


def test_status_probe_adds_the_probe_to_each_lineage(
    chain: tuple[pki.IssuedChain, pki.ChainPaths],
    tls_server: hostile.LoopbackServer,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`status --probe`: the same probe object as `probe --cert-name`, in each lineage's
    status entry, and the exit status is the worse of the two."""
    issued, _ = chain
    host = name_host(dns_lab)
    owner = f"_{tls_server.port}._tcp.{host}."
    config = tmp_path / "config.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[lineage."st"]\nendpoints = ["{owner}"]\n'
    )
    argv = ["status", "--probe", "--config", str(config), "--format", "json"]
    lookup = ["--resolver", str(lab_resolver), "--timeout", "2"]
    # No record yet: DANE is not in use at the endpoint, the probe cannot authenticate.
    main([*argv, *lookup])
    (entry,) = validated(capsys.readouterr().out)["lineages"]
    assert [a["verdict"] for a in entry["probe"]["addresses"]] != ["authenticated"], entry
    dns_lab.add_records(owner, 300, [pki.rdata(issued.leaf, 3, 1, 1)])
    code = main([*argv, *lookup])
    (entry,) = validated(capsys.readouterr().out)["lineages"]
    assert [a["verdict"] for a in entry["probe"]["addresses"]] == ["authenticated"], entry
    assert code == 0
    assert main(["status", "--probe", "--config", str(config), *lookup]) == 0
    assert "st: probe:" in capsys.readouterr().out
