"""`dane-hook check` and `plan` against the real lab: signed zones, two authoritative servers,
a validating Unbound, a tamper proxy. Every case runs the command in process (`main([...])`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dane_hook.cli import main
from dane_hook.dns.lookup import Resolver
from dane_hook.exitcodes import ExitCode
from dane_hook.tlsa.generate import certificate_record
from tests import pki
from tests.infra.knot import KnotPrimary
from tests.infra.lab import OTHER, PRIMARY_ADDRESS, UNSIGNED, DnsLab
from tests.schemas import validated

pytestmark = pytest.mark.slow

ROOT = pki.root("check root")
CA_1 = pki.intermediate("check CA 1", ROOT)
CA_2 = pki.intermediate("check CA 2", ROOT)


def host(owner: str) -> str:
    return owner.split(".", 2)[2].rstrip(".")


@dataclass(frozen=True)
class Served:
    """A chain written as a user has it: fullchain.pem (leaf + issuer)."""

    leaf: pki.Issued
    issuer: pki.Issued
    path: Path

    @property
    def ee(self) -> str:
        return certificate_record(self.leaf.certificate, 3, 1, 1).to_text()

    @property
    def ta(self) -> str:
        return certificate_record(self.issuer.certificate, 2, 1, 1).to_text()


@pytest.fixture
def make_chain(tmp_path: Path) -> Callable[..., Served]:
    count = iter(range(1000))

    def make(owner: str, issuer: pki.Issued = CA_1, key: str = "check key") -> Served:
        leaf = pki.leaf(issuer, [host(owner)], label=key, validity=_now_valid())
        path = pki.write_bundle(tmp_path / f"chain{next(count)}.pem", [leaf, issuer])
        return Served(leaf, issuer, path)

    return make


def _now_valid() -> pki.Validity:
    # Real lookups happen now, so the leaf must be valid now (pki.NOW is a fixed past date).
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    return pki.Validity(now - timedelta(days=1), now + timedelta(days=60))


@pytest.fixture
def cli(
    lab_resolver: Resolver, auth_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    state = tmp_path / "state"

    def run(*argv: str, resolver: Resolver | None = None) -> tuple[int, str, str]:
        code = main(
            [
                *argv,
                "--resolver",
                str(resolver or lab_resolver),
                "--auth-port",
                str(auth_port),
                "--state-dir",
                str(state),
                "--timeout",
                "1",
            ]
        )
        out, err = capsys.readouterr()
        return code, out, err

    return run


def check_json(cli: Callable[..., tuple[int, str, str]], *argv: str, **kw: Any) -> tuple[int, Any]:
    code, out, err = cli("check", *argv, "--format", "json", **kw)
    assert out, err
    document = validated(out)
    assert document["schema_version"] == 1
    return code, document["chains"][0]


def test_secure_match_published_long_ago_is_safe_on_second_sight(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
) -> None:
    owner = fresh_owner()
    served = make_chain(owner)
    add_records(owner, 2, [served.ee])
    # The first sight starts the clock (RFC 7671 §8.1) ...
    code, chain = check_json(cli, "--chain", str(served.path), "--endpoint", owner)
    assert code == ExitCode.WAIT and chain["verdict"] == "wait"
    # ... but the chain served now is authenticated by the same record: safe at once.
    code, chain = check_json(
        cli, "--chain", str(served.path), "--current", str(served.path), "--endpoint", owner
    )
    assert code == ExitCode.OK and chain["verdict"] == "safe"
    (endpoint,) = chain["endpoints"]
    assert endpoint["publication"] == "secure"
    assert [r["match"] for r in endpoint["records"]] == ["matched"]
    assert endpoint["records"][0]["first_seen"] is not None
    assert {s["nameserver"] for s in endpoint["servers"]} == {
        "ns1.example.test.",
        "ns2.example.test.",
    }


def test_ttl_2s_wait_then_safe_in_real_time(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
) -> None:
    owner = fresh_owner()
    old = make_chain(owner, key="check old key")
    new = make_chain(owner, key="check new key")
    add_records(owner, 2, [old.ee])
    args = ("--chain", str(new.path), "--current", str(old.path), "--endpoint", owner)
    assert check_json(cli, *args)[0] == ExitCode.UNSAFE
    add_records(owner, 2, [new.ee])
    code, chain = check_json(cli, *args)
    assert code == ExitCode.WAIT and chain["earliest"] is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.5)
        code, chain = check_json(cli, *args)
        if code != ExitCode.WAIT:
            break
    assert code == ExitCode.OK and chain["verdict"] == "safe"


def test_secure_mismatch_is_unsafe_and_plan_lists_the_records(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
) -> None:
    owner = fresh_owner()
    old = make_chain(owner, CA_1, key="check old key")
    new = make_chain(owner, CA_2, key="check new key")
    add_records(owner, 300, [old.ee, old.ta])
    args = ("--chain", str(new.path), "--current", str(old.path), "--endpoint", owner)
    code, out, _ = cli("check", *args)
    assert code == ExitCode.UNSAFE and "UNSAFE" in out
    code, out, _ = cli("plan", *args)
    assert code == ExitCode.UNSAFE
    live = [line for line in out.splitlines() if not line.startswith(";")]
    assert live == [f"{owner} 300 IN TLSA {new.ee}", f"{owner} 300 IN TLSA {new.ta}"]
    assert f";   {owner} 300 IN TLSA {old.ee}" in out and f";   {owner} 300 IN TLSA {old.ta}" in out


def test_only_the_211_matches_is_incomplete(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
) -> None:
    owner = fresh_owner()
    old = make_chain(owner, key="check old key")
    new = make_chain(owner, key="check new key")
    add_records(owner, 300, [old.ee, old.ta])
    args = ("--chain", str(new.path), "--current", str(old.path), "--endpoint", owner)
    code, chain = check_json(cli, *args)
    assert code == ExitCode.OK and chain["verdict"] == "incomplete"
    assert "RFC 7671 §8" in chain["endpoints"][0]["reason"]
    assert check_json(cli, *args, "--strict")[0] == ExitCode.UNSAFE


def test_unsigned_zone_is_insecure_and_does_not_block(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
) -> None:
    owner = fresh_owner(UNSIGNED)
    served = make_chain(owner)
    add_records(owner, 300, ["3 1 1 " + "00" * 32])
    code, chain = check_json(cli, "--chain", str(served.path), "--endpoint", owner)
    assert code == ExitCode.OK and chain["verdict"] == "insecure"
    assert "not DNSSEC-signed" in chain["endpoints"][0]["reason"]


def test_forged_answer_is_unknown_exit_4(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
    tamper_resolver: Resolver,
) -> None:
    owner = fresh_owner()
    served = make_chain(owner)
    add_records(owner, 300, [served.ee])
    code, chain = check_json(
        cli, "--chain", str(served.path), "--endpoint", owner, resolver=tamper_resolver
    )
    assert code == ExitCode.UNKNOWN and chain["verdict"] == "unknown"
    (endpoint,) = chain["endpoints"]
    assert endpoint["publication"] == "bogus"
    assert any("EDE 6" in e for e in endpoint["extended_errors"])


def test_secure_nxdomain_is_no_dane(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
) -> None:
    owner = fresh_owner()
    served = make_chain(owner)
    code, chain = check_json(cli, "--chain", str(served.path), "--endpoint", owner)
    assert code == ExitCode.OK and chain["verdict"] == "no-dane"


def test_cname_into_another_signed_zone(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
    dns_lab: DnsLab,
) -> None:
    owner = fresh_owner()
    target = fresh_owner(OTHER)
    served = make_chain(owner)
    add_records(target, 120, [served.ee])
    dns_lab.update(owner, add=[(60, "CNAME", target)])
    args = ("--chain", str(served.path), "--current", str(served.path), "--endpoint", owner)
    code, chain = check_json(cli, *args)
    assert code == ExitCode.OK and chain["verdict"] == "safe"
    (endpoint,) = chain["endpoints"]
    assert endpoint["cname_chain"] == [target]
    # The wait counts the TLSA RRset's own TTL as the zone publishes it.
    assert endpoint["ttl"] >= 60


def test_lagging_secondary_means_not_yet_published(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
    dns_lab: DnsLab,
) -> None:
    owner = fresh_owner()
    old = make_chain(owner, key="check old key")
    new = make_chain(owner, key="check new key")
    add_records(owner, 300, [old.ee])
    args = ("--chain", str(new.path), "--current", str(old.path), "--endpoint", owner)
    with dns_lab.secondary_held():
        add_records(owner, 300, [new.ee])
        code, chain = check_json(cli, *args)
        assert code == ExitCode.WAIT
        records = {r["rdata"]: r["first_seen"] for r in chain["endpoints"][0]["records"]}
        assert records[new.ee] is None and records[old.ee] is not None
        code, out, _ = cli("check", *args)
        assert "lagging: ns2.example.test. 127.0.0.3" in out
    code, chain = check_json(cli, *args)
    records = {r["rdata"]: r["first_seen"] for r in chain["endpoints"][0]["records"]}
    assert code == ExitCode.WAIT and records[new.ee] is not None


def test_resolver_down_is_unknown_with_one_line(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    dead_resolver: Resolver,
) -> None:
    owner = fresh_owner()
    served = make_chain(owner)
    code, out, err = cli(
        "check", "--chain", str(served.path), "--endpoint", owner, resolver=dead_resolver
    )
    assert code == ExitCode.UNKNOWN
    assert "UNKNOWN: cannot decide" in out
    assert err == ""


def test_nsupdate_scripts_publish_and_remove_for_real(
    cli: Callable[..., tuple[int, str, str]],
    make_chain: Callable[..., Served],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
    dns_lab: DnsLab,
    tmp_path: Path,
) -> None:
    owner = fresh_owner()
    old = make_chain(owner, key="check old key")
    new = make_chain(owner, key="check new key")
    add_records(owner, 2, [old.ee])
    args = ("--chain", str(new.path), "--current", str(old.path), "--endpoint", owner)
    code, script, _ = cli("plan", *args, "--format", "nsupdate-add")
    assert code == ExitCode.UNSAFE
    assert script == f"update add {owner} 2 IN TLSA {new.ee}\nsend\n"
    header = (
        f"server {PRIMARY_ADDRESS} {dns_lab.auth_port}\n"
        f"key hmac-sha256:{KnotPrimary.KEY_NAME} {dns_lab.primary.tsig_secret}\n"
    )
    for body in (script,):
        (tmp_path / "add.txt").write_text(header + body)
        subprocess.run(["nsupdate", str(tmp_path / "add.txt")], check=True, timeout=30)
    dns_lab.primary.run_pending_notify(dns_lab.zone_of(owner))
    dns_lab.secondary.refresh(dns_lab.zone_of(owner))
    dns_lab.wait_secondary_synced()
    dns_lab.flush()
    assert check_json(cli, *args)[0] == ExitCode.WAIT
    time.sleep(4.5)  # 2 x TTL of 2 s
    assert check_json(cli, *args)[0] == ExitCode.OK
    code, remove, _ = cli("plan", *args, "--format", "nsupdate-remove")
    assert remove == f"update delete {owner} IN TLSA {old.ee}\nsend\n"
    (tmp_path / "remove.txt").write_text(header + remove)
    subprocess.run(["nsupdate", str(tmp_path / "remove.txt")], check=True, timeout=30)
    dns_lab.secondary.refresh(dns_lab.zone_of(owner))
    dns_lab.wait_secondary_synced()
    dns_lab.flush()
    code, chain = check_json(cli, *args)
    assert [r["rdata"] for r in chain["endpoints"][0]["records"]] == [new.ee]


def test_worker_processes_see_what_threads_see(
    lab_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
    tmp_path: Path,
) -> None:
    """A large check spreads its lookups over worker processes: same observations."""
    from datetime import datetime, timezone

    from dane_hook.rollover.observe import MIN_ENDPOINTS_PER_PROCESS, Settings, observe
    from dane_hook.rollover.state import StateStore

    published = [fresh_owner() for _ in range(3)]
    for owner in published:
        add_records(owner, 300, ["3 1 1 " + "ab" * 32])
    endpoints = published + [fresh_owner() for _ in range(2 * MIN_ENDPOINTS_PER_PROCESS)]
    settings = Settings(lab_resolver, 2.0, 2, auth_port)
    now = datetime.now(timezone.utc)
    results = []
    for processes in (1, 2):
        with StateStore(tmp_path / f"state{processes}").locked(now) as state:
            found = observe(endpoints, settings, state, now, processes=processes)
        results.append([(o.endpoint, o.published.status, o.published.records) for o in found])
    assert results[0] == results[1]
    statuses = [status.value for _, status, _ in results[1]]
    assert statuses[:3] == ["secure"] * 3 and set(statuses[3:]) == {"no-dane"}


# -- issue 15, 8b: a certbot lineage's served and held chains are in use -----------------------


def test_plan_keeps_an_enrolled_lineages_held_chain_and_plans_it_by_cert_name(
    tmp_path: Path,
    dns_lab: DnsLab,
    lab_resolver: Resolver,
    auth_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.test_defects import make_site, write_lineage

    name = f"check-inuse-{id(tmp_path) % 10000}.example.test"
    owner = f"_25._tcp.{name}."
    extra = f'[lineage."{name}"]\nendpoints = ["{name}"]\n'
    site = make_site(tmp_path / "site", str(lab_resolver), extra=extra, auth_port=auth_port)
    first = pki.issued_chain(pki.KeyType.ECDSA_P256, label="check in use v1")
    second = pki.issued_chain(pki.KeyType.ECDSA_P256, label="check in use v2")
    served_311, held_311 = pki.rdata(first.leaf, 3, 1, 1), pki.rdata(second.leaf, 3, 1, 1)
    dns_lab.add_records(owner, 300, [served_311])

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--config", str(site.config)])  # it names every directory
        out, err = capsys.readouterr()
        return code, out, err

    write_lineage(site.certbot_dir, name, [first])
    assert run("enroll", "--cert-name", name)[0] == ExitCode.OK
    lineage = write_lineage(site.certbot_dir, name, [first, second])
    code, out, _ = run("deploy", "--lineage", str(lineage.live))
    assert code == ExitCode.UNSAFE and "HELD" in out, out
    dns_lab.add_records(owner, 300, [held_311])  # step 1 of the held chain's plan

    served = str(site.served_dir / name / "fullchain.pem")
    code, out, err = run("plan", "--chain", served, "--endpoint", name, "--format", "json")
    (endpoint,) = validated(out)["plans"][0]["endpoints"]
    assert held_311 in endpoint["keep"] and held_311 not in endpoint["remove"], endpoint

    code, out, err = run("plan", "--cert-name", name, "--format", "json")
    plan = validated(out)["plans"][0]
    assert plan["chain"] == f"{name} (held)" and plan["verdict"] == "wait", (plan, err)
    (endpoint,) = plan["endpoints"]
    assert endpoint["remove"] == [served_311], endpoint  # step 3: the chain it replaces

    code, _out, err = run("plan", "--cert-name", "not-enrolled.example.test")
    assert code == ExitCode.BAD_INPUT and "not enrolled" in err, err
