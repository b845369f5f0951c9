"""Monitoring formats of `status`: a Nagios/Icinga plugin line and Prometheus's text format.

Monitoring Plugins guidelines: one line `NAME STATE: text | 'label'=value[UOM];warn;crit;min;max`
and exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Prometheus text exposition format 0.0.4:
`# HELP`, `# TYPE`, then `name{label="value"} number`, label values escaped (backslash, double
quote, newline); node_exporter's textfile collector reads such files from its directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from dane_hook.rollover.health import Health

# Verdicts that break or threaten delivery of what is served or about to be.
_CRITICAL_VERDICTS = {"unsafe"}
_UNKNOWN_VERDICTS = {"unknown"}
_WARNING_VERDICTS = {"wait", "incomplete", "insecure"}


class NagiosState(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Thresholds:
    expiry_warn_days: float = 14
    expiry_crit_days: float = 3
    held_warn_hours: float = 24
    held_crit_hours: float = 72


def _days_left(moment: datetime, now: datetime) -> float:
    return (moment - now).total_seconds() / 86400


def nagios(health: Health, limits: Thresholds) -> tuple[str, NagiosState]:
    """The plugin's one line (plus the long text, a line per problem) and its state."""
    now = health.now
    problems: list[tuple[NagiosState, str]] = []

    def raise_to(level: NagiosState, text: str) -> None:
        problems.append((level, text))

    perf: list[str] = []
    for lineage in health.lineages:
        name = lineage.lineage
        verdict = lineage.verdict
        if lineage.held and verdict is not None:
            # The served chain is untouched; how long it is held is what needs watching.
            raise_to(NagiosState.WARNING, f"{name}: a renewal is held ({verdict})")
        elif verdict in _CRITICAL_VERDICTS:
            raise_to(NagiosState.CRITICAL, f"{name}: the served chain is {verdict}")
        elif verdict in _UNKNOWN_VERDICTS:
            raise_to(NagiosState.UNKNOWN, f"{name}: cannot decide (lookup failed)")
        elif verdict in _WARNING_VERDICTS:
            raise_to(NagiosState.WARNING, f"{name}: {verdict}")
        if lineage.served_not_after is not None:
            left = _days_left(lineage.served_not_after, now)
            if left <= limits.expiry_crit_days:
                raise_to(
                    NagiosState.CRITICAL, f"{name}: served certificate expires in {left:.1f} d"
                )
            elif left <= limits.expiry_warn_days:
                raise_to(NagiosState.WARNING, f"{name}: served certificate expires in {left:.1f} d")
            perf.append(
                f"'{name}_expiry'={left:.2f}d;{limits.expiry_warn_days};{limits.expiry_crit_days};;"
            )
        if lineage.held_since is not None:
            hours = (now - lineage.held_since).total_seconds() / 3600
            if hours >= limits.held_crit_hours:
                raise_to(NagiosState.CRITICAL, f"{name}: a chain held for {hours:.1f} h")
            elif hours >= limits.held_warn_hours:
                raise_to(NagiosState.WARNING, f"{name}: a chain held for {hours:.1f} h")
            perf.append(
                f"'{name}_held'={hours:.2f}h;{limits.held_warn_hours};{limits.held_crit_hours};0;"
            )
        for warning in lineage.warnings:
            where = f" {warning.endpoint}" if warning.endpoint else ""
            raise_to(NagiosState.WARNING, f"{name}{where}: {warning.message}")
    count = len(health.lineages)
    # CRITICAL over UNKNOWN over WARNING: a known failure outranks not knowing.
    rank = [NagiosState.OK, NagiosState.WARNING, NagiosState.UNKNOWN, NagiosState.CRITICAL]
    problems.sort(key=lambda p: rank.index(p[0]), reverse=True)
    state = problems[0][0] if problems else NagiosState.OK
    if not problems:
        summary = f"{count} lineage{'s' if count != 1 else ''}, all served chains DANE-valid"
    else:
        many = "s" if len(problems) != 1 else ""
        summary = f"{len(problems)} problem{many}: {problems[0][1]}"
    perf.insert(0, f"'lineages'={count};;;0;")
    line = f"DANE-HOOK {state.name}: {summary.replace('|', '/')} | {' '.join(perf)}"
    long_text = "".join(f"\n{text.replace('|', '/')}" for _, text in problems[1:])
    return line + long_text + "\n", state


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


_METRICS = {
    "dane_hook_lineage_verdict": ("gauge", "1 for the verdict of what is checked per lineage."),
    "dane_hook_endpoint_verdict": ("gauge", "1 for the verdict per lineage and endpoint."),
    "dane_hook_held_since_seconds": ("gauge", "When the held chain was first held (Unix time)."),
    "dane_hook_served_not_after_seconds": ("gauge", "When the served certificate expires."),
    "dane_hook_next_renewal_covered": ("gauge", "1 if the next renewal is covered."),
    "dane_hook_stale_records": ("gauge", "Published records that match nothing in use."),
    "dane_hook_tlsa_rrsig_expiry_seconds": ("gauge", "Earliest RRSIG expiry of the TLSA RRset."),
    "dane_hook_probe_ok": ("gauge", "1 if the last live probe authenticated the chain."),
    "dane_hook_warnings": ("gauge", "Warnings per lineage and kind."),
    "dane_hook_last_success_seconds": ("gauge", "When a run last observed every lineage."),
}


def prometheus(health: Health) -> str:
    """The text exposition format, every metric family with its HELP and TYPE once."""
    samples: dict[str, list[str]] = {name: [] for name in _METRICS}

    def add(metric: str, value: float, **labels: str) -> None:
        # Whole numbers as integers, others in full: Unix times need all their digits.
        number = str(int(value)) if float(value).is_integer() else repr(float(value))
        samples[metric].append(f"{metric}{_labels(**labels) if labels else ''} {number}")

    for lineage in health.lineages:
        name = lineage.lineage
        if lineage.verdict is not None:
            add("dane_hook_lineage_verdict", 1, lineage=name, verdict=lineage.verdict)
        if lineage.held_since is not None:
            add("dane_hook_held_since_seconds", lineage.held_since.timestamp(), lineage=name)
        if lineage.served_not_after is not None:
            add(
                "dane_hook_served_not_after_seconds",
                lineage.served_not_after.timestamp(),
                lineage=name,
            )
        for e in lineage.endpoints:
            add(
                "dane_hook_endpoint_verdict",
                1,
                lineage=name,
                endpoint=e.endpoint,
                verdict=e.verdict,
            )
            if e.next_renewal_covered is not None:
                covered = 1 if e.next_renewal_covered else 0
                add("dane_hook_next_renewal_covered", covered, lineage=name, endpoint=e.endpoint)
            add("dane_hook_stale_records", e.stale, lineage=name, endpoint=e.endpoint)
            if e.rrsig_expires is not None:
                expiry = e.rrsig_expires.timestamp()
                add(
                    "dane_hook_tlsa_rrsig_expiry_seconds", expiry, lineage=name, endpoint=e.endpoint
                )
            if e.probe is not None:
                ok = 1 if e.probe == "authenticated" else 0
                add("dane_hook_probe_ok", ok, lineage=name, endpoint=e.endpoint)
        kinds: dict[str, int] = {}
        for warning in lineage.warnings:
            kinds[warning.kind.value] = kinds.get(warning.kind.value, 0) + 1
        for kind, count in sorted(kinds.items()):
            add("dane_hook_warnings", count, lineage=name, kind=kind)
    if health.last_success is not None:
        add("dane_hook_last_success_seconds", health.last_success.timestamp())
    return "".join(_families(samples))


def _families(samples: dict[str, list[str]]) -> Iterator[str]:
    for metric, (kind, text) in _METRICS.items():
        if not samples[metric]:
            continue
        yield f"# HELP {metric} {text}\n# TYPE {metric} {kind}\n"
        yield "".join(f"{line}\n" for line in samples[metric])
