"""Probe lineages: each lineage's endpoints, what its addresses present, and the served view.

For `probe --cert-name` and `status --probe`. A lineage's endpoints are the ones `check` and
the promotion use (configured, else enrolled, else every DNS name of the served chain at the
configured ports); all lineages' addresses are probed in one run, side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dane_hook.config import Config
from dane_hook.errors import Error
from dane_hook.probe.report import (
    ProbeReport,
    ProbeSettings,
    probe_targets,
    served_ders,
    targets_of_endpoints,
)
from dane_hook.probe.targets import TargetSet
from dane_hook.probe.wire import Limits
from dane_hook.rollover.lineages import NotEnrolled, enrollment_of, served_chain
from dane_hook.rollover.observe import endpoints_of, parse_endpoint
from dane_hook.rollover.promotion import Context, explicit_endpoints
from dane_hook.rollover.served_view import ServedView
from dane_hook.rollover.state import State


@dataclass(frozen=True)
class LineageProbe:
    """One lineage's probe; `to_json()` is its object in `probe` and `status --probe`."""

    lineage: str
    endpoints: tuple[str, ...]
    report: ProbeReport

    def to_json(self) -> dict[str, Any]:
        return {"lineage": self.lineage, "endpoints": list(self.endpoints), **self.report.to_json()}


@dataclass(frozen=True)
class _Lineage:
    name: str
    endpoints: tuple[str, ...]
    served: tuple[bytes, ...] | None
    problems: tuple[str, ...]


def _lineage(config: Config, state: State, name: str) -> _Lineage:
    enrollment = enrollment_of(config, state, name)
    served: tuple[bytes, ...] | None = None
    chain = None
    problems: list[str] = []
    if enrollment is not None:
        view = ServedView(Path(enrollment.served_dir))
        try:
            chain = served_chain(view, name)
            if chain is not None:
                served = served_ders(view.read_current().fullchain, f"served {name}")
        except Error as exc:
            problems.append(f"{name}: {exc.diagnostics()}")
    explicit = explicit_endpoints(config, name, enrollment)
    if explicit:
        endpoints = tuple(dict.fromkeys(parse_endpoint(e) for e in explicit))
    elif chain is not None:
        endpoints = tuple(endpoints_of(chain, (), config.ports))
    else:
        endpoints = ()
        problems.append(f"{name}: no endpoints configured and no served chain to take names from")
    return _Lineage(name, endpoints, served, tuple(problems))


def settings_of(context: Context, limits: Limits | None, budget: float | None) -> ProbeSettings:
    settings = context.settings
    return ProbeSettings(
        settings.resolver, settings.timeout, settings.tries, limits or Limits(), budget
    )


def probe_lineages(
    context: Context,
    state: State,
    names: Sequence[str] | None = None,
    *,
    limits: Limits | None = None,
    budget: float | None = None,
) -> list[LineageProbe]:
    """Each lineage (enrolled, configured or held; only `names` if given), probed.

    `status --probe` calls this with the state it read; nothing in `state` is changed.
    """
    config = context.config
    every = sorted(set(state.enrolled) | set(config.lineages) | set(state.held))
    missing = sorted(set(names or ()) - set(every))
    if missing:
        # As `status` and `rollback` do: a name nothing knows is an error (exit 3).
        raise NotEnrolled(
            f"{', '.join(missing)} is not enrolled, configured or held",
            "see 'dane-hook status' for the lineages dane-hook knows",
        )
    chosen = [n for n in every if not names or n in names]
    lineages = [_lineage(config, state, name) for name in chosen]
    settings = settings_of(context, limits, budget)
    found = [targets_of_endpoints(entry.endpoints, settings) for entry in lineages]
    # One run for all of them: the addresses of every lineage side by side, one budget.
    joined = TargetSet(tuple(t for f in found for t in f.targets))
    everything = probe_targets(joined, settings, now=context.now)
    probes: list[LineageProbe] = []
    start = 0
    for entry, targets in zip(lineages, found, strict=True):
        verdicts = everything.verdicts[start : start + len(targets.targets)]
        start += len(targets.targets)
        report = ProbeReport(verdicts, entry.problems + targets.problems, entry.served)
        probes.append(LineageProbe(entry.name, entry.endpoints, report))
    return probes


def probes_json(probes: Sequence[LineageProbe]) -> list[dict[str, Any]]:
    return [p.to_json() for p in probes]


__all__ = ["LineageProbe", "probe_lineages", "probes_json"]
