"""The monitoring formats: Nagios plugin lines and states, Prometheus text read by its own parser.

The warnings themselves come from real conditions in the lab (tests/test_monitoring_lab.py);
here the renderers are held to the formats' rules on documents as `status` builds them, and the
pure warning rules to their limits on real certificates (tests/pki.py).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dane_hook.certs.chain import ServedChain
from dane_hook.cli import main
from dane_hook.cli.status import StatusFormat
from dane_hook.render.monitoring import NagiosState, Thresholds, nagios, prometheus
from dane_hook.rollover.health import (
    EndpointHealth,
    Health,
    HealthWarning,
    LineageHealth,
    WarningKind,
    held_expiry_warning,
    lifetime_warning,
)
from tests import pki
from tests.infra.procs import free_port
from tests.schemas import schema

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
# Monitoring Plugins guidelines: 'label'=value[UOM];[warn];[crit];[min];[max]
PERF = re.compile(r"^'[^'=]+'=-?[0-9.]+(d|h|s|%|)?;[0-9.]*;[0-9.]*;[0-9.]*;[0-9.]*$")


def lineage(
    name: str = 'mx"1\\a',
    *,
    verdict: str | None = "safe",
    held: bool = False,
    expires_in: timedelta = timedelta(days=40),
    held_for: timedelta | None = None,
    warnings: tuple[HealthWarning, ...] = (),
) -> LineageHealth:
    endpoint = EndpointHealth(
        "_25._tcp.mx.example.test",
        verdict or "no-dane",
        next_renewal_covered=False,
        stale=2,
        rrsig_expires=NOW + timedelta(days=3),
        probe="authenticated",
    )
    return LineageHealth(
        name,
        verdict,
        held,
        NOW + expires_in,
        NOW - held_for if held_for is not None else None,
        (endpoint,),
        warnings,
    )


def state_of(*lineages: LineageHealth) -> NagiosState:
    return nagios(Health(NOW, lineages, NOW), Thresholds())[1]


def test_nagios_line_follows_the_plugin_guidelines() -> None:
    text, state = nagios(Health(NOW, (lineage(held_for=timedelta(hours=2)),), NOW), Thresholds())
    first = text.splitlines()[0]
    assert state == NagiosState.OK
    assert first.startswith("DANE-HOOK OK: 1 lineage, ")
    status, perfdata = first.split(" | ")
    assert "|" not in status
    assert all(PERF.match(item) for item in perfdata.split(" ")), perfdata


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (lineage(), NagiosState.OK),
        (lineage(verdict="unsafe"), NagiosState.CRITICAL),
        (lineage(verdict="unsafe", held=True, held_for=timedelta(hours=1)), NagiosState.WARNING),
        (lineage(verdict="unknown"), NagiosState.UNKNOWN),
        (lineage(verdict="wait"), NagiosState.WARNING),
        (lineage(expires_in=timedelta(days=10)), NagiosState.WARNING),
        (lineage(expires_in=timedelta(days=2)), NagiosState.CRITICAL),
        (lineage(held=True, held_for=timedelta(hours=30)), NagiosState.WARNING),
        (lineage(held=True, held_for=timedelta(hours=80)), NagiosState.CRITICAL),
        (
            lineage(warnings=(HealthWarning(WarningKind.STALE_RECORD, "x", None, "stale"),)),
            NagiosState.WARNING,
        ),
    ],
)
def test_nagios_state_is_the_worst_problem(case: LineageHealth, expected: NagiosState) -> None:
    assert state_of(case) == expected


def test_critical_outranks_unknown_which_outranks_warning() -> None:
    assert state_of(lineage(verdict="unknown"), lineage(verdict="wait")) == NagiosState.UNKNOWN
    assert state_of(lineage(verdict="unknown"), lineage(verdict="unsafe")) == NagiosState.CRITICAL


def test_prometheus_text_parses_with_prometheus_client() -> None:
    warning = HealthWarning(WarningKind.RRSIG_EXPIRING, "x", "_25._tcp.mx", "soon")
    health = Health(
        NOW, (lineage(held=True, held_for=timedelta(hours=3), warnings=(warning,)),), NOW
    )
    families = {f.name: f for f in text_string_to_metric_families(prometheus(health))}
    assert set(families) >= {
        "dane_hook_lineage_verdict",
        "dane_hook_held_since_seconds",
        "dane_hook_served_not_after_seconds",
        "dane_hook_next_renewal_covered",
        "dane_hook_stale_records",
        "dane_hook_tlsa_rrsig_expiry_seconds",
        "dane_hook_probe_ok",
        "dane_hook_warnings",
        "dane_hook_last_success_seconds",
    }
    (verdict,) = families["dane_hook_lineage_verdict"].samples
    assert verdict.labels == {"lineage": 'mx"1\\a', "verdict": "safe"}  # escaped and read back
    (held,) = families["dane_hook_held_since_seconds"].samples
    assert held.value == (NOW - timedelta(hours=3)).timestamp()
    (stale,) = families["dane_hook_stale_records"].samples
    assert stale.value == 2
    (warned,) = families["dane_hook_warnings"].samples
    assert warned.labels["kind"] == "rrsig-expiring"


# -- the warning rules on real certificates -----------------------------------------------------


def served_chain(lifetime: timedelta, *, issued: datetime = NOW) -> ServedChain:
    validity = pki.Validity(issued, issued + lifetime)
    chain = pki.issued_chain(pki.KeyType.ECDSA_P256, label="lifetime", validity=validity)
    return ServedChain(chain.leaf.certificate, (chain.intermediate.certificate,))


@pytest.mark.parametrize(
    ("case", "lifetime", "left", "ttl", "warns"),
    [
        # Let's Encrypt's shortlived profile: about 6 days, renewed with about two days left.
        ("6-day certificate, 2 days left at renewal, TTL 1 day", 6, 2, 86400, True),
        ("6-day certificate, 2 days left at renewal, TTL 5 min", 6, 2, 300, False),
        ("45-day certificate, 15 days left, TTL 1 day", 45, 15, 86400, False),
        ("renewal due after the expiry, TTL 5 min", 6, -1, 300, True),
    ],
)
def test_lifetime_warning(case: str, lifetime: int, left: int, ttl: int, warns: bool) -> None:
    served = served_chain(timedelta(days=lifetime))
    renews = NOW + timedelta(days=lifetime - left)
    found = lifetime_warning("x", served, ttl, renewal_time=renews)
    assert (found is not None) == warns, case
    if found is not None:
        assert found.kind is WarningKind.LIFETIME_TOO_SHORT and f"{2 * ttl} s" in found.message


def test_certbot_renews_a_short_certificate_at_half_its_lifetime() -> None:
    # certbot 5 _default_renewal_time: lifetime < 10 days renews at 1/2, else at 2/3.
    short = lifetime_warning("x", served_chain(timedelta(hours=2)), 900)
    assert short is not None and "leaves 60 min" in short.message


@pytest.mark.parametrize(
    ("case", "expires_in", "earliest_in", "warns"),
    [
        ("promotable days before the expiry", 10, 2, False),
        ("promotable only after the expiry limit", 3, 2.5, True),
        ("nothing authenticates it, expiry within expiry_warn_days", 10, None, True),
        ("nothing authenticates it, expiry far off", 60, None, False),
    ],
)
def test_held_expiry_warning(
    case: str, expires_in: float, earliest_in: float | None, warns: bool
) -> None:
    served = served_chain(timedelta(days=expires_in + 30), issued=NOW - timedelta(days=30))
    earliest = NOW + timedelta(days=earliest_in) if earliest_in is not None else None
    found = held_expiry_warning("x", served, earliest, "serve", NOW)
    assert (found is not None) == warns, case
    if found is not None:
        assert "expiry_action = serve" in found.message and "from " in found.message


# -- the formats and the schema stay in step -------------------------------------------------


def test_every_warning_kind_is_in_the_status_schema() -> None:
    lineage_schema = schema("status")["properties"]["lineages"]["items"]
    kinds = lineage_schema["properties"]["warnings"]["items"]["properties"]["kind"]["enum"]
    assert sorted(kinds) == sorted(k.value for k in WarningKind)


def test_every_status_format_is_an_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--help"]) == 0
    usage = capsys.readouterr().out
    assert all(f.value in usage for f in StatusFormat)


def test_nagios_says_unknown_when_it_cannot_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--state-dir", str(tmp_path / "state"), "--served-dir", str(tmp_path / "served")]
    resolver = ["--resolver", f"127.0.0.1:{free_port()}", "--timeout", "0.3", "--tries", "1"]
    argv = ["status", *dirs, *resolver, "--certbot-dir", str(tmp_path), "--config", "/dev/null"]
    code = main([*argv, "--format", "nagios", "--cert-name", "nothing.test"])
    out = capsys.readouterr().out
    assert code == NagiosState.UNKNOWN and out.startswith("DANE-HOOK UNKNOWN: "), out
    assert len(out.splitlines()) == 1


def test_an_unwritable_textfile_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--state-dir", str(tmp_path / "state"), "--served-dir", str(tmp_path / "served")]
    argv = ["status", *dirs, "--certbot-dir", str(tmp_path), "--config", "/dev/null"]
    code = main([*argv, "--textfile", str(tmp_path / "missing" / "dane-hook.prom")])
    err = capsys.readouterr().err
    assert code == 3 and "--textfile" in err and len(err.splitlines()) == 1, err


def test_the_textfile_is_written_with_nothing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--state-dir", str(tmp_path / "state"), "--served-dir", str(tmp_path / "served")]
    argv = ["status", *dirs, "--certbot-dir", str(tmp_path), "--config", "/dev/null"]
    target = tmp_path / "dane-hook.prom"
    assert main([*argv, "--textfile", str(target)]) == 0
    assert capsys.readouterr().out == ""
    families = {f.name for f in text_string_to_metric_families(target.read_text())}
    assert families == {"dane_hook_last_success_seconds"}  # nothing enrolled, a run succeeded
    assert oct(target.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize(
    "example",
    ["packaging/monitoring/nagios-dane-hook.cfg", "packaging/monitoring/icinga2-dane-hook.conf"],
)
def test_the_monitoring_examples_name_only_options_status_has(
    example: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (Path(__file__).resolve().parents[1] / example).read_text()
    assert main(["status", "--help"]) == 0
    options = set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))
    named = set(re.findall(r"--[a-z][a-z-]*", text))
    assert named and named <= options, named - options


def test_thresholds_out_of_order_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--state-dir", str(tmp_path / "state"), "--config", "/dev/null"]
    code = main(["status", *dirs, "--format", "text", "--expiry-crit-days", "20"])
    err = capsys.readouterr().err
    assert code == 2 and "--expiry-crit-days" in err, err
