"""The monitoring formats: Nagios plugin lines and states, Prometheus text read by its own parser.

The warnings themselves come from real conditions in the lab (tests/test_health*.py); here the
renderers are held to the formats' rules on documents as `status` builds them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dane_hook.render.monitoring import NagiosState, Thresholds, nagios, prometheus
from dane_hook.rollover.health import (
    EndpointHealth,
    Health,
    HealthWarning,
    LineageHealth,
    WarningKind,
)

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
