"""The CA catalog: the shipped data, the overlay, which intermediates a renewal may come from,
and what `records`, `check` and `plan` make of it.

Real Let's Encrypt certificates cannot issue test leaves, but coverage is counted on SPKI
digests and DANE-TA matching on digests at a given depth, so a chain whose issuer object is
the real E6 certificate exercises the same code as a served Let's Encrypt chain. End to end,
against the DNS lab, a test CA is added to the overlay with `dane-hook catalog add`.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path

import pytest
from cryptography import x509

from dane_hook.catalog import SHIPPED_DATE, Catalog, Status, load_catalog
from dane_hook.catalog.coverage import Coverage, IssuerSet, coverage_of, issuers_for
from dane_hook.catalog.model import KeyFamily
from dane_hook.catalog.shipped import age_warning, shipped_entries
from dane_hook.certs.chain import ServedChain
from dane_hook.cli import main
from dane_hook.dns.lookup import Resolver
from dane_hook.exitcodes import ExitCode
from dane_hook.render.check import PLAN_RENDERERS, PlanFormat, PlanReport
from dane_hook.rollover.decision import Publication, Published, decide
from dane_hook.rollover.plan import MAX_RRSET_RECORDS, make_plan
from dane_hook.tlsa.generate import certificate_record
from dane_hook.tlsa.record import TLSARecord
from tests import pki
from tests.schemas import validated

NOW = pki.NOW
ENDPOINT = "_25._tcp.mx.example.test."
DATA = files("dane_hook.catalog") / "data"
CATALOG = load_catalog(None, NOW)


def shipped(name: str) -> x509.Certificate:
    """A Let's Encrypt certificate from the shipped catalog, by its file's short name."""
    return x509.load_pem_x509_certificate((DATA / f"letsencrypt-{name}.pem").read_bytes())


def ta(certificate: x509.Certificate) -> TLSARecord:
    return certificate_record(certificate, 2, 1, 1)


def ee(certificate: x509.Certificate) -> TLSARecord:
    return certificate_record(certificate, 3, 1, 1)


ECDSA_LEAF = pki.leaf(pki.root("catalog stand-in"), label="catalog ECDSA leaf")
RSA_LEAF = pki.leaf(
    pki.root("catalog stand-in"), label="catalog RSA leaf", key_type=pki.KeyType.RSA_2048
)


def le_chain(leaf: pki.Issued, intermediate: str) -> ServedChain:
    """A chain as Let's Encrypt serves it: the leaf, then the real intermediate."""
    return ServedChain(leaf.certificate, (shipped(intermediate),))


def published(*records: TLSARecord, endpoint: str = ENDPOINT) -> Published:
    seen = {r: NOW - timedelta(days=30) for r in records}
    return Published(endpoint, Publication.SECURE, records, 300, seen)


def coverage(chain: ServedChain, *records: TLSARecord, catalog: Catalog = CATALOG) -> Coverage:
    return coverage_of(ENDPOINT, issuers_for(chain, catalog, NOW), records, catalog)


# -- the shipped data -------------------------------------------------------------------------


def manifest() -> list[dict[str, str]]:
    text = (DATA / "MANIFEST.tsv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def test_every_manifest_row_is_loaded_with_computed_digests() -> None:
    rows = {row["file"]: row for row in manifest()}
    entries = shipped_entries()
    assert len(entries) == len(rows) == 82
    for entry in entries:
        row = rows[entry.file]
        assert (entry.ca, entry.role.value, entry.status.value) == (
            row["ca"],
            row["role"],
            row["status"],
        )
        assert entry.name == row["cn"] and entry.key == row["key"]
        assert entry.spki_sha256.hex() == row["spki_sha256"]
        assert entry.cert_sha256.hex() == row["cert_sha256"]


def test_the_catalog_date_is_no_older_than_its_newest_certificate() -> None:
    newest = max(e.not_before for e in shipped_entries())
    assert newest.date() <= SHIPPED_DATE <= datetime.now(timezone.utc).date()


def test_age_warning_after_twelve_months() -> None:
    day = datetime.combine(SHIPPED_DATE, datetime.min.time(), timezone.utc)
    assert age_warning(day + timedelta(days=365)) is None
    warning = age_warning(day + timedelta(days=400))
    assert warning is not None and "13 months old" in warning and "catalog add" in warning
    assert load_catalog(None, day + timedelta(days=400)).warnings == (warning,)


def test_lets_encrypt_intermediates_by_key_type() -> None:
    ecdsa = CATALOG.intermediates("letsencrypt", KeyFamily.ECDSA, now=NOW)
    rsa = CATALOG.intermediates("letsencrypt", KeyFamily.RSA, now=NOW)
    assert [k.describe() for k in ecdsa] == ["YE1 (active)", "YE2 (active)", "YE3 (backup)"]
    assert [k.describe() for k in rsa] == ["YR1 (active)", "YR2 (active)", "YR3 (backup)"]
    # A key with cross-signs is one key: E5 has two certificates, one 2 1 1 record.
    e5 = CATALOG.key_of(shipped("E5"))
    assert e5 is not None and len(e5.certificates) == 2 and len(e5.records(2, 1, 1)) == 1
    assert len(e5.records(2, 0, 1)) == 2


# -- coverage (the done-when, with the real certificates) -----------------------------

E5, E6 = shipped("E5"), shipped("E6")
YE = [shipped(n) for n in ("YE1", "YE2", "YE3")]


def test_e6_chain_with_e5_e6_pinned_is_not_covered() -> None:
    chain = le_chain(ECDSA_LEAF, "E6")
    result = coverage(chain, ee(chain.leaf), ta(E5), ta(E6))
    assert not result.covered
    assert [k.name for k in result.missing_keys] == ["YE1", "YE2", "YE3"]
    assert result.to_add == tuple(ta(c) for c in YE)
    summary = result.summary()
    assert summary == "the renewal is NOT covered: add the 2 1 1 records of YE1, YE2, YE3"
    notes = result.notes()
    assert "YE1 is an active intermediate and may issue your next certificate" in notes[0]
    assert (
        "YE3 is a backup intermediate and may issue your next certificate without warning"
        in notes[2]
    )
    assert notes[3] == (
        f"{ta(E5).short()} pins only the retired intermediate E5: remove it once no served "
        "chain is issued by it"
    )
    assert notes[4].endswith("remove it once no served chain is issued by it (this chain is)")
    assert "E6" in notes[4]


def test_with_every_intermediate_pinned_the_renewal_is_covered() -> None:
    chain = le_chain(ECDSA_LEAF, "E6")
    result = coverage(chain, ee(chain.leaf), ta(E5), ta(E6), *(ta(c) for c in YE))
    assert result.covered and not result.missing
    assert result.summary() == (
        "the renewal is covered: the 2 1 1 records pin every one of the intermediates "
        "letsencrypt may issue an ECDSA certificate from (YE1, YE2, YE3)"
    )
    # E5 and E6 are still named for removal later.
    assert [r.keys[0].name for r in result.retired] == ["E5", "E6"]


def test_rsa_chain_needs_the_rsa_intermediates() -> None:
    chain = le_chain(RSA_LEAF, "YR2")
    result = coverage(chain, ee(chain.leaf), ta(shipped("YR2")))
    assert result.issuers.expected[0].name == "YR2"  # the chain's own issuer first
    assert [k.name for k in result.missing_keys] == ["YR1", "YR3"]
    assert (
        "YR3 is a backup intermediate and may issue your next certificate without warning"
        in (result.notes()[1])
    )
    # ECDSA intermediates are not asked of an RSA endpoint, and vice versa.
    assert not any(k.family is KeyFamily.ECDSA for k in result.issuers.expected)


def test_every_combination_in_use_must_pin_every_intermediate() -> None:
    chain = le_chain(ECDSA_LEAF, "YE1")
    full = [ta(c) for c in YE]
    sha512 = [certificate_record(c, 2, 1, 2) for c in YE[:2]]
    result = coverage(chain, *full, *sha512)
    assert [(m.key.name, m.params) for m in result.missing] == [("YE3", (2, 1, 2))]
    assert result.to_add == (certificate_record(YE[2], 2, 1, 2),)


def test_a_pinned_root_the_chain_serves_covers_its_intermediates() -> None:
    chain = ServedChain(ECDSA_LEAF.certificate, (shipped("YE1"), shipped("root-ye")))
    assert coverage(chain, ta(shipped("root-ye"))).covered
    # A root the chain does not serve covers nothing.
    result = coverage(le_chain(ECDSA_LEAF, "YE1"), ta(shipped("root-ye")))
    assert [k.name for k in result.missing_keys] == ["YE1", "YE2", "YE3"]


def test_a_retired_root_is_named_as_a_root() -> None:
    dst = x509.load_pem_x509_certificate((DATA / "identrust-dst-root-ca-x3.pem").read_bytes())
    result = coverage(
        le_chain(RSA_LEAF, "YR1"), ta(dst), *(ta(shipped(n)) for n in ("YR1", "YR2", "YR3"))
    )
    assert result.covered
    (retired,) = result.retired
    assert "pins only the retired root DST Root CA X3: remove it" in retired.message()


def test_endpoint_without_dane_ta_does_not_depend_on_intermediates() -> None:
    chain = le_chain(ECDSA_LEAF, "E6")
    result = coverage(chain, ee(chain.leaf))
    assert not result.applies and not result.covered and result.notes() == []


@pytest.mark.parametrize(
    ("situation", "chain", "expected"),
    [
        (
            "private CA",
            ServedChain(ECDSA_LEAF.certificate, (pki.root("catalog stand-in").certificate,)),
            "is not in the CA catalog (a private CA?): coverage of the CA's other "
            "intermediates cannot be checked",
        ),
        (
            "new intermediate of a known CA",
            ServedChain(
                ECDSA_LEAF.certificate,
                (pki.root("catalog YE9").certificate, shipped("root-ye")),
            ),
            "though its CA letsencrypt is (the catalog may be out of date",
        ),
        (
            "CA whose statuses the catalog does not know",
            ServedChain(
                ECDSA_LEAF.certificate,
                (
                    x509.load_pem_x509_certificate(
                        (DATA / "zerossl-ecc-domain-secure-site-ca.pem").read_bytes()
                    ),
                ),
            ),
            "no unexpired ECDSA intermediate of zerossl marked active or backup",
        ),
        (
            "Ed25519 leaf",
            ServedChain(
                pki.leaf(
                    pki.root("catalog stand-in"),
                    label="catalog Ed25519 leaf",
                    key_type=pki.KeyType.ED25519,
                ).certificate,
                (E6,),
            ),
            "the leaf's key type (Ed25519) has no intermediates in the CA catalog",
        ),
        (
            "leaf without its issuer",
            ServedChain(ECDSA_LEAF.certificate, ()),
            "the chain holds no issuer certificate",
        ),
    ],
)
def test_fallback_to_the_chains_own_issuer(
    situation: str, chain: ServedChain, expected: str
) -> None:
    issuers = issuers_for(chain, CATALOG, NOW)
    assert not issuers.checkable and issuers.expected == ()
    result = coverage_of(ENDPOINT, issuers, [ta(E6)], CATALOG)
    assert expected in result.summary()
    assert "cannot be checked" in result.summary()
    assert result.missing == () and not result.covered


# -- the plan -----------------------------------------------------------------------------------


def plan_for(
    chain: ServedChain, records: list[TLSARecord], current: ServedChain | None = None
) -> tuple[PlanReport, Coverage]:
    p = published(*records)
    decision = decide(chain, current, [p], NOW)
    covered = coverage_of(ENDPOINT, issuers_for(chain, CATALOG, NOW), p.records, CATALOG)
    plan = make_plan(
        chain,
        [],
        [p],
        decision,
        NOW,
        host_of={ENDPOINT: "mx.example.test"},
        coverage={ENDPOINT: covered},
        current=current,
    )
    return PlanReport([("e6 chain", decision, plan)], NOW), covered


def test_plan_adds_the_missing_intermediates_and_removes_retired_ones_later() -> None:
    chain = le_chain(ECDSA_LEAF, "E6")
    report, _ = plan_for(chain, [ee(chain.leaf), ta(E5), ta(E6)])
    (endpoint,) = report.plans[0][2].endpoints
    assert endpoint.add == tuple(ta(c) for c in YE)
    assert endpoint.remove == (ta(E5),)
    assert endpoint.later == (ta(E6),)
    zone = PLAN_RENDERERS[PlanFormat.ZONE](report)
    live = [line for line in zone.splitlines() if not line.startswith(";")]
    assert live == [f"{ENDPOINT} 300 IN TLSA {ta(c).to_text()}" for c in YE]
    assert "; later, once no served chain is issued by a retired intermediate, remove:" in zone
    assert f";   {ENDPOINT} 300 IN TLSA {ta(E6).to_text()}" in zone
    assert "YE3 is a backup intermediate and may issue your next certificate without warning" in (
        zone
    )
    document = validated(PLAN_RENDERERS[PlanFormat.JSON](report))
    (endpoint_json,) = document["plans"][0]["endpoints"]
    assert endpoint_json["remove_later"] == [ta(E6).to_text()]
    assert endpoint_json["catalog"][0].startswith("the renewal is NOT covered")


def test_plan_keeps_a_backup_intermediate_that_the_chain_does_not_use() -> None:
    chain = le_chain(ECDSA_LEAF, "YE1")
    report, covered = plan_for(chain, [ee(chain.leaf), *(ta(c) for c in YE)])
    (endpoint,) = report.plans[0][2].endpoints
    assert covered.covered and endpoint.add == () and endpoint.remove == ()
    assert set(endpoint.keep) == {ee(chain.leaf), *(ta(c) for c in YE)}


def test_plan_adds_nothing_where_no_dane_ta_is_published() -> None:
    chain = le_chain(ECDSA_LEAF, "E6")
    old_leaf = pki.leaf(pki.root("catalog stand-in"), label="catalog old key")
    report, _ = plan_for(chain, [ee(old_leaf.certificate)])
    (endpoint,) = report.plans[0][2].endpoints
    assert endpoint.add == (ee(chain.leaf),) and endpoint.notes == ()


def test_too_large_rrset_gets_the_smallest_covering_set() -> None:
    current = le_chain(pki.leaf(pki.root("catalog stand-in"), label="catalog cur key"), "E6")
    chain = le_chain(ECDSA_LEAF, "E6")
    stale = [TLSARecord(3, 1, 1, bytes([i]) * 32) for i in range(9)]
    report, _ = plan_for(chain, [ee(current.leaf), ta(E5), ta(E6), *stale], current)
    (endpoint,) = report.plans[0][2].endpoints
    (warning,) = endpoint.warnings
    # 12 published, 4 added (the new key's 3 1 1, YE1-YE3): 16.
    assert "would hold 16 TLSA records during the rollover" in warning
    assert "the smallest set that still covers the current and next key and the " in warning
    assert "letsencrypt may issue an ECDSA certificate from has 6 records" in warning
    assert endpoint.smallest == (
        ee(current.leaf),
        ee(chain.leaf),
        *(ta(c) for c in YE),
        ta(E6),
    )
    assert len(endpoint.smallest) <= MAX_RRSET_RECORDS
    zone = PLAN_RENDERERS[PlanFormat.ZONE](report)
    assert f"; the smallest set for {ENDPOINT}:" in zone


# -- the overlay and the commands -------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _valid_now() -> pki.Validity:
    now = datetime.now(timezone.utc)
    return pki.Validity(now - timedelta(days=1), now + timedelta(days=60))


class FakeCA:
    """A CA with the statuses Let's Encrypt uses: two active ECDSA intermediates, a backup,
    and two retired ones, all valid now (the commands judge at the real time)."""

    def __init__(self, label: str) -> None:
        validity = _valid_now()
        key = pki.KeyType.ECDSA_P384
        self.root = pki.root(f"{label} root", key_type=key, validity=validity)

        def make(name: str) -> pki.Issued:
            return pki.intermediate(f"{label} {name}", self.root, key_type=key, validity=validity)

        self.active = [make("A1"), make("A2")]
        self.backup = make("B1")
        self.retired = [make("OLD1"), make("OLD2")]

    def add_to(self, capsys: pytest.CaptureFixture[str], state: Path, folder: Path) -> None:
        def pem(issued: pki.Issued) -> str:
            path = folder / f"{issued.certificate.serial_number}.pem"
            path.write_bytes(issued.pem())
            return str(path)

        groups = [
            ("active", self.active),
            ("backup", [self.backup]),
            ("retired", [*self.retired, self.root]),
        ]
        for status, members in groups:
            code, out, err = run(
                capsys,
                "catalog",
                "add",
                *(pem(i) for i in members),
                "--ca",
                "testca",
                "--status",
                status,
                "--state-dir",
                str(state),
            )
            assert code == ExitCode.OK, err
            assert out.count("added ") == len(members)

    def leaf(self, host: str, issuer: pki.Issued, label: str = "key") -> pki.Issued:
        return pki.leaf(issuer, [host], label=f"catalog {label}", validity=_valid_now())


def test_overlay_add_show_and_change_status(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ca = FakeCA("catalog overlay")
    state = tmp_path / "state"
    ca.add_to(capsys, state, tmp_path)
    code, out, _ = run(capsys, "catalog", "show", "--state-dir", str(state), "--format", "json")
    assert code == ExitCode.OK
    document = validated(out)
    assert document["schema_version"] == 1 and document["date"] == SHIPPED_DATE.isoformat()
    ours = {k["name"]: k for k in document["keys"] if k["ca"] == "testca"}
    assert {n.split()[-1]: k["status"] for n, k in ours.items()} == {
        "A1": "active",
        "A2": "active",
        "B1": "backup",
        "OLD1": "retired",
        "OLD2": "retired",
        "root": "retired",
    }
    assert ours["dane-hook test catalog overlay root"]["role"] == "root"
    assert len([k for k in document["keys"] if k["ca"] == "letsencrypt"]) > 20
    # Adding again changes the status: B1 becomes active.
    path = tmp_path / "b1.pem"
    path.write_bytes(ca.backup.pem())
    argv = ["catalog", "add", str(path), "--ca", "testca", "--status", "active"]
    assert run(capsys, *argv, "--state-dir", str(state))[0] == ExitCode.OK
    catalog = load_catalog(state, NOW)
    key = catalog.key_of(ca.backup.certificate)
    assert key is not None and key.status is Status.ACTIVE
    assert len([e for e in catalog.entries if e.origin != "shipped"]) == 6
    code, out, _ = run(capsys, "catalog", "show", "--state-dir", str(state))
    assert out.startswith(f"CA catalog of {SHIPPED_DATE:%Y-%m-%d}")
    assert "(overlay)" in out and "YE3" in out


def test_overlay_overrides_a_shipped_status(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "ye3.pem"
    path.write_bytes((DATA / "letsencrypt-YE3.pem").read_bytes())
    state = tmp_path / "state"
    argv = ["catalog", "add", str(path), "--ca", "letsencrypt", "--status", "active"]
    assert run(capsys, *argv, "--state-dir", str(state))[0] == ExitCode.OK
    catalog = load_catalog(state, NOW)
    chain = le_chain(ECDSA_LEAF, "YE1")
    result = coverage(chain, ta(YE[0]), ta(YE[1]), catalog=catalog)
    assert [m.message() for m in result.missing] == [
        "YE3 is an active intermediate and may issue your next certificate: publish its "
        "2 1 1 record"
    ]


def test_overlay_refuses_what_is_not_a_ca(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "leaf.pem"
    path.write_bytes(ECDSA_LEAF.pem())
    code, _, err = run(
        capsys, "catalog", "add", str(path), "--ca", "x", "--status", "active",
        "--state-dir", str(tmp_path),
    )  # fmt: skip
    assert code == ExitCode.BAD_INPUT and "is not a CA certificate" in err


def test_unusable_overlay_is_a_warning_and_is_never_overwritten(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "catalog-overlay.json").write_text("{not json")
    catalog = load_catalog(tmp_path, NOW)
    assert len(catalog.entries) == 82
    (warning,) = catalog.warnings
    assert "not usable" in warning and "using the shipped one" in warning
    path = tmp_path / "ye3.pem"
    path.write_bytes((DATA / "letsencrypt-YE3.pem").read_bytes())
    code, _, err = run(
        capsys, "catalog", "add", str(path), "--ca", "letsencrypt", "--status", "active",
        "--state-dir", str(tmp_path),
    )  # fmt: skip
    assert code == ExitCode.BAD_INPUT and "fix or remove the file" in err
    assert (tmp_path / "catalog-overlay.json").read_text() == "{not json"


def test_records_from_the_catalog_current_issuer_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ca = FakeCA("catalog records")
    state = tmp_path / "state"
    ca.add_to(capsys, state, tmp_path)
    leaf = ca.leaf("mx.example.test", ca.active[1], "records key")
    chain = pki.write_bundle(tmp_path / "full.pem", [leaf, ca.active[1]])
    argv = ["records", "--chain", str(chain), "--format", "rdata", "--state-dir", str(state)]
    code, out, _ = run(capsys, *argv, "--issuers", "catalog")
    assert code == ExitCode.OK
    expected = [ca.active[1], ca.active[0], ca.backup]
    assert out.splitlines() == [
        pki.rdata(leaf, 3, 1, 1),
        *(pki.rdata(i, 2, 1, 1) for i in expected),
    ]
    # Retired issuer: it comes first, with a note on stderr.
    old = ca.leaf("mx.example.test", ca.retired[0], "records old key")
    chain = pki.write_bundle(tmp_path / "old.pem", [old, ca.retired[0]])
    argv[2] = str(chain)
    code, out, err = run(capsys, *argv, "--issuers", "catalog")
    assert out.splitlines()[1:] == [
        pki.rdata(i, 2, 1, 1) for i in [ca.retired[0], ca.active[0], ca.active[1], ca.backup]
    ]
    assert "is retired: keep its record only while this chain is served" in err


def test_records_of_a_private_ca_fall_back_to_the_chain(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    issuer = pki.intermediate("catalog private", pki.root("catalog private root"))
    leaf = pki.leaf(issuer, label="catalog private key")
    chain = pki.write_bundle(tmp_path / "full.pem", [leaf, issuer])
    code, out, err = run(
        capsys, "records", "--chain", str(chain), "--format", "rdata", "--issuers", "catalog",
        "--state-dir", str(tmp_path),
    )  # fmt: skip
    assert code == ExitCode.OK
    assert out.splitlines() == [pki.rdata(leaf, 3, 1, 1), pki.rdata(issuer, 2, 1, 1)]
    assert "coverage of the CA's other intermediates cannot be checked" in err


def test_records_without_issuers_does_not_import_the_catalog(tmp_path: Path) -> None:
    leaf = pki.leaf(pki.root("catalog import"), label="catalog import key")
    chain = pki.write_bundle(tmp_path / "full.pem", [leaf])
    base = [sys.executable, "-X", "importtime", "-m", "dane_hook", "records", "--chain"]
    argv = [*base, str(chain), "--format", "rdata"]

    def imported(*extra: str) -> str:
        result = subprocess.run(
            [*argv, *extra], capture_output=True, text=True, check=True, timeout=60
        )
        return result.stderr

    assert "dane_hook.catalog" not in imported()
    assert "dane_hook.catalog" in imported("--issuers", "catalog", "--state-dir", str(tmp_path))


# -- check and plan against the real DNS lab ----------------------------------------------------


@pytest.fixture
def cli(
    lab_resolver: Resolver, auth_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    state = tmp_path / "state"

    def command(*argv: str) -> tuple[int, str, str]:
        lab = ["--resolver", str(lab_resolver), "--auth-port", str(auth_port), "--timeout", "1"]
        return run(capsys, *argv, *lab, "--state-dir", str(state))

    return command


@pytest.mark.slow
def test_check_and_plan_name_the_intermediates_to_add_and_to_remove_later(
    cli: Callable[..., tuple[int, str, str]],
    capsys: pytest.CaptureFixture[str],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
    tmp_path: Path,
) -> None:
    ca = FakeCA("catalog lab")
    ca.add_to(capsys, tmp_path / "state", tmp_path)
    owner = fresh_owner()
    host = owner.split(".", 2)[2].rstrip(".")
    leaf = ca.leaf(host, ca.retired[0], "lab key")
    chain = pki.write_bundle(tmp_path / "full.pem", [leaf, ca.retired[0]])
    old = [pki.rdata(leaf, 3, 1, 1), *(pki.rdata(i, 2, 1, 1) for i in ca.retired)]
    add_records(owner, 300, old)
    args = ("--chain", str(chain), "--current", str(chain), "--endpoint", owner)

    code, out, err = cli("check", *args)
    assert code == ExitCode.OK, out + err
    name = "dane-hook test catalog lab"
    assert (
        f"CA catalog: the renewal is NOT covered: add the 2 1 1 records of {name} A1, "
        f"{name} A2, {name} B1\n" in out
    )
    assert f"{name} B1 is a backup intermediate and may issue your next certificate without " in out
    assert f"pins only the retired intermediate {name} OLD2: remove it once no served" in out
    assert f"{name} OLD1: remove it once no served chain is issued by it (this chain is)" in out

    code, out, _ = cli("plan", *args)
    live = [line for line in out.splitlines() if not line.startswith(";")]
    missing = [*ca.active, ca.backup]
    assert live == [f"{owner} 300 IN TLSA {pki.rdata(i, 2, 1, 1)}" for i in missing]
    assert f";   {owner} 300 IN TLSA {pki.rdata(ca.retired[1], 2, 1, 1)}" in out  # step 3
    later = out.split("; later, once no served chain is issued by a retired intermediate")[1]
    assert f";   {owner} 300 IN TLSA {pki.rdata(ca.retired[0], 2, 1, 1)}" in later

    code, script, _ = cli("plan", *args, "--format", "nsupdate-add")
    assert script.count("update add") == 3

    add_records(owner, 300, [pki.rdata(i, 2, 1, 1) for i in missing])
    code, out, _ = cli("check", *args, "--format", "json")
    (endpoint,) = validated(out)["chains"][0]["endpoints"]
    catalog = endpoint["catalog"]
    assert catalog["covered"] and catalog["missing"] == []
    assert catalog["issuer"] == f"{name} OLD1" and catalog["ca"] == "testca"
    retired = sorted(n for r in catalog["retired"] for n in r["intermediates"])
    assert retired == [f"{name} OLD1", f"{name} OLD2"]
    code, out, _ = cli("check", *args)
    assert "CA catalog: the renewal is covered: the 2 1 1 records pin every one of" in out


@pytest.mark.slow
def test_check_of_a_private_ca_says_coverage_cannot_be_checked(
    cli: Callable[..., tuple[int, str, str]],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
    tmp_path: Path,
) -> None:
    owner = fresh_owner()
    host = owner.split(".", 2)[2].rstrip(".")
    validity = _valid_now()
    issuer = pki.intermediate("catalog lab private", pki.root("catalog lab private root"))
    leaf = pki.leaf(issuer, [host], label="catalog lab private key", validity=validity)
    chain = pki.write_bundle(tmp_path / "full.pem", [leaf, issuer])
    add_records(owner, 300, [pki.rdata(leaf, 3, 1, 1), pki.rdata(issuer, 2, 1, 1)])
    code, out, _ = cli("check", "--chain", str(chain), "--current", str(chain), "--endpoint", owner)
    assert code == ExitCode.OK
    assert (
        "CA catalog: the issuer dane-hook test catalog lab private is not in the CA catalog "
        "(a private CA?): coverage of the CA's other intermediates cannot be checked" in out
    )


def test_issuer_set_names_the_ca() -> None:
    issuers: IssuerSet = issuers_for(le_chain(ECDSA_LEAF, "E6"), CATALOG, NOW)
    assert issuers.ca == "letsencrypt" and issuers.family is KeyFamily.ECDSA
    assert issuers.describe() == "the intermediates letsencrypt may issue an ECDSA certificate from"
