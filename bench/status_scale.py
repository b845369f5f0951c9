"""Wall time and peak memory of `dane-hook status --format prometheus` over many enrolled lineages.

Builds N lineages as bench/check_many.py does (one CA, one P-256 leaf per lineage, the 3 1 1 of
every leaf at `_25._tcp` and `_465._tcp` of its name in the signed zone bench.test. of the
test lab: Knot primary + secondary, a validating Unbound, all on loopback), enrolls each one the
way `enroll` leaves it (a served view under the served directory, an enrollment with its two
endpoints in the state), then times one `dane-hook status --format prometheus` process over all
of them: with the resolver flushed, then with its cache in place, and the peak RSS (GNU time) at
N/10 and N lineages.

Goal (issue 14): 10,000 lineages x 2 endpoints in at most 10 s, memory flat in the lineages.
Run from the repository root (`python3 bench/status_scale.py [--lineages N]`). Every daemon is
stopped by its PID at the end; every process and wait is bounded in time.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT, ROOT / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))  # tests.infra and check_many, whatever the directory

import check_many  # noqa: E402
from check_many import (  # noqa: E402
    EXIT_SAFE,
    EXIT_WAIT,
    PORTS,
    ZONE,
    Lab,
    Lineage,
    Run,
    default_dane_hook,
    run,
    write_lineages,
    zone_records,
)

from tests.infra.lab import DnsLab  # noqa: E402

GOAL_SECONDS = 10.0
GOAL_LINEAGES = 10_000
_TOOLS = ("knotd", "knotc", "unbound", "unbound-control", "unbound-checkconf", "/usr/bin/time")


def enroll_all(site: Path, lineages: Sequence[Lineage], lab: Lab) -> Path:
    """A configuration, a served view per lineage and the state's enrollments, written through
    dane-hook's own library (what `enroll` leaves), without a process per lineage."""
    from dane_hook.rollover.served_view import ChainFiles, ServedView
    from dane_hook.rollover.state import Enrollment, StateStore

    served, state_dir = site / "served", site / "state"
    site.mkdir(parents=True, exist_ok=True)
    config = site / "config.toml"
    config.write_text(
        f'resolver = "{lab.resolver}"\nstate_dir = "{state_dir}"\nserved_dir = "{served}"\n'
        f'certbot_dir = "{site / "letsencrypt"}"\nauth_port = {lab.auth_port}\n'
    )
    with StateStore(state_dir).locked() as state:
        for lineage in lineages:
            full = (lineage.directory / "fullchain.pem").read_bytes()
            key = (lineage.directory / "privkey.pem").read_bytes()
            view = ServedView(served / lineage.host)
            view.install(ChainFiles(key, full, b"", full))
            state.enrolled[lineage.host] = Enrollment(
                "certbot", str(view.root), tuple(lineage.owners())
            )
    return config


def status_argv(dane_hook: Sequence[str], config: Path) -> list[str]:
    return [*dane_hook, "status", "--config", str(config), "--format", "prometheus"]


def verified_status(argv: Sequence[str], lineages: Sequence[Lineage], timeout: float) -> Run:
    """One status run, and proof it did the work: every endpoint judged, none unknown or
    unsafe (records seen for the first time may make the verdict "wait": exit 5)."""
    done = run(argv, timeout, rss=True)
    if done.code not in (EXIT_SAFE, EXIT_WAIT):
        raise SystemExit(f"status exited {done.code}: {done.stderr.decode()[-2000:]}")
    verdicts = [
        line.split('verdict="')[1].split('"')[0]
        for line in done.stdout.decode().splitlines()
        if line.startswith("dane_hook_endpoint_verdict{")
    ]
    expected = len(lineages) * len(PORTS)
    judged = [v for v in verdicts if v in ("safe", "wait")]
    if len(verdicts) != expected or len(judged) != expected:
        raise SystemExit(f"status judged {len(judged)} of {expected} endpoints: {set(verdicts)}")
    return done


def measure(
    args: argparse.Namespace, dane_hook: list[str], folder: Path, lineages: list[Lineage]
) -> None:
    count = len(lineages)
    small = lineages[: count // 10]
    dns_lab = DnsLab(folder / "lab", extra_zones={ZONE: zone_records(lineages)})
    try:
        dns_lab.start()
        assert dns_lab.resolver is not None
        lab = Lab(dns_lab.resolver.port, dns_lab.auth_port)
        begin = time.perf_counter()
        config = enroll_all(folder / "site", lineages, lab)
        config_small = enroll_all(folder / "site-small", small, lab)
        print(f"enrolled in {time.perf_counter() - begin:.1f} s; lab up", flush=True)
        # Fill the bytecode cache first (not measured).
        run([*dane_hook, "--version"], args.run_timeout)
        dns_lab.flush()
        cold = verified_status(status_argv(dane_hook, config), lineages, args.run_timeout)
        warm = verified_status(status_argv(dane_hook, config), lineages, args.run_timeout)
        fewer = verified_status(status_argv(dane_hook, config_small), small, args.run_timeout)
    finally:
        dns_lab.close()

    def row(what: str, done: Run, note: str = "") -> None:
        rss = f"{done.peak_rss_kib / 1024:7.1f} MiB"
        print(f"  {what:<52} {done.seconds:8.3f} s {rss:>11}  {note}".rstrip())

    goal = GOAL_SECONDS * count / GOAL_LINEAGES
    verdict = "met" if cold.seconds <= goal else "NOT met"
    print(f"\n{count} lineages x {len(PORTS)} endpoints, status --format prometheus:")
    row("resolver flushed", cold, f"goal <= {goal:g} s: {verdict}")
    row("resolver cache in place", warm)
    row(f"{len(small)} lineages, cache in place", fewer)
    growth = (warm.peak_rss_kib - fewer.peak_rss_kib) / max(1, count - len(small))
    print(f"  peak RSS growth per lineage {growth:8.1f} KiB")


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`: the lab is stopped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lineages", type=int, default=GOAL_LINEAGES, help="lineages (10000)")
    parser.add_argument(
        "--run-timeout", type=float, default=600.0, help="seconds any one process may take (600)"
    )
    parser.add_argument("--dane-hook", metavar="CMD", help="how to run dane-hook")
    args = parser.parse_args(argv)
    if args.lineages < 10:
        parser.error("--lineages must be at least 10")
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        parser.error(f"not installed: {', '.join(missing)} (Debian: knot, unbound, time)")
    dane_hook = shlex.split(args.dane_hook) if args.dane_hook else default_dane_hook()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="dane-hook-status-bench-") as name:
        folder = Path(name)
        check_many._ENVIRONMENT.pop("PYTHONDONTWRITEBYTECODE", None)
        check_many._ENVIRONMENT["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        begin = time.perf_counter()
        lineages = write_lineages(folder / "live", args.lineages)
        print(f"{args.lineages} lineages written in {time.perf_counter() - begin:.1f} s")
        measure(args, dane_hook, folder, lineages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
