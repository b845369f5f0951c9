"""Wall time of `dane-hook probe` of one lineage with 2 endpoints, beside posttls-finger.

Starts the DNS lab of tests/infra (Knot primary + secondary, a validating Unbound, loopback),
a real Postfix (tests/infra/postfix.py) on 127.0.0.1:25 (STARTTLS) and :465 (implicit TLS),
publishes the 3 1 1 record of its leaf at _25._tcp and _465._tcp of its name, and then times,
in the same run and alternately:

- `dane-hook probe --cert-name bench --config F`: one process that resolves both endpoints,
  does both handshakes side by side and judges both chains against the validated TLSA RRsets;
- posttls-finger -l dane once per endpoint (`[HOST]:25`, then `-w [HOST]:465`), each resolving
  through an Unbound of the same lab on 127.0.0.156:53 (posttls-finger can only use port 53);

and prints the medians and the ratio. Both must say "authenticated" for both endpoints first.
Needs root (postfix -c DIR), postfix, knot, unbound and unshare. Run from the repository root
(`python3 bench/probe_compare.py`). Everything it starts is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.infra, whatever the directory it is run from

from tests import pki  # noqa: E402
from tests.infra.lab import EXAMPLE, DnsLab  # noqa: E402
from tests.infra.postfix import OracleResolver, Postfix, posttls_finger  # noqa: E402

HOST = "bench-probe.example.test"
ORACLE_ADDRESS = "127.0.0.156"
PORTS = (25, 465)
_TOOLS = ("knotd", "unbound", "postfix", "posttls-finger", "unshare")


def default_dane_hook() -> list[str]:
    """The console script of this interpreter's environment, else the one on PATH, else -m."""
    beside = Path(sys.executable).parent / "dane-hook"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("dane-hook")
    return [found] if found else [sys.executable, "-m", "dane_hook"]


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`: everything is stopped


def _ports_free() -> bool:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _chain(folder: Path) -> tuple[pki.IssuedChain, Path, Path]:
    validity = pki.valid_now()
    top = pki.root("bench probe root", validity=validity)
    ca = pki.intermediate("bench probe CA", top, validity=validity)
    leaf = pki.leaf(ca, [HOST], label="bench probe leaf", validity=validity)
    chain = pki.IssuedChain(top, ca, leaf)
    fullchain = pki.write_bundle(folder / "fullchain.pem", [leaf, ca])
    key = folder / "privkey.pem"
    key.write_bytes(leaf.key_pem())
    key.chmod(0o600)
    return chain, fullchain, key


_ENVIRONMENT = dict(os.environ)
"""For the dane-hook processes: given a bytecode cache in `measure` (as installed)."""


def _probe_once(dane_hook: list[str], config: Path, timeout: float) -> tuple[float, list[str]]:
    begin = time.perf_counter()
    done = subprocess.run(
        [*dane_hook, "probe", "--cert-name", "bench", "--config", str(config), "--format", "json"],
        env=_ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    took = time.perf_counter() - begin
    if done.returncode != 0:
        raise SystemExit(f"dane-hook probe exited {done.returncode}: {done.stderr.strip()}")
    verdicts = [a["verdict"] for a in json.loads(done.stdout)["addresses"]]
    return took, verdicts


def _version_once(dane_hook: list[str], timeout: float) -> float:
    begin = time.perf_counter()
    subprocess.run(
        [*dane_hook, "--version"],
        env=_ENVIRONMENT,
        capture_output=True,
        timeout=timeout,
        check=True,
    )
    return time.perf_counter() - begin


def _finger_once(oracle: OracleResolver, timeout: float) -> tuple[float, list[str]]:
    begin = time.perf_counter()
    verdicts = [
        posttls_finger(oracle, HOST, port, wrapper=port == 465, timeout=timeout).verdict
        for port in PORTS
    ]
    return time.perf_counter() - begin, verdicts


def _library(config: Path) -> Callable[[], float]:
    """One probe of the lineage through the library, in this process: no start-up."""
    from datetime import datetime, timezone

    from dane_hook.config import load_config
    from dane_hook.dns.exchange import Resolver
    from dane_hook.rollover.observe import Settings
    from dane_hook.rollover.probing import probe_lineages
    from dane_hook.rollover.promotion import Context
    from dane_hook.rollover.state import State

    loaded = load_config(config)
    assert loaded.resolver is not None

    def once() -> float:
        context = Context(
            loaded, Settings(Resolver.parse(loaded.resolver or "")), datetime.now(timezone.utc)
        )
        begin = time.perf_counter()
        (probe,) = probe_lineages(context, State(), ["bench"])
        took = time.perf_counter() - begin
        verdicts = [v.verdict.value for v in probe.report.verdicts]
        if verdicts != ["authenticated"] * 2:
            raise SystemExit(f"the library probe says {verdicts}")
        return took

    return once


def measure(args: argparse.Namespace, dane_hook: list[str], folder: Path) -> None:
    # An installed dane-hook starts from cached bytecode. Where PYTHONDONTWRITEBYTECODE is set
    # (CI, containers) every run would compile it first: give the runs a cache here.
    _ENVIRONMENT.pop("PYTHONDONTWRITEBYTECODE", None)
    _ENVIRONMENT["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    chain, fullchain, key = _chain(folder)
    lab = DnsLab(folder / "lab")
    started: list[object] = []
    try:
        lab.start()
        assert lab.resolver is not None
        lab.update(f"{HOST}.", add=[(300, "A", "127.0.0.1")])
        record = pki.rdata(chain.leaf, 3, 1, 1)
        for port in PORTS:
            lab.add_records(f"_{port}._tcp.{HOST}.", 300, [record])
        lab.wait_secondary_synced()
        server = Postfix(fullchain, key, ports=PORTS)
        server.start()
        started.append(server)
        oracle = OracleResolver(
            folder / "oracle",
            ORACLE_ADDRESS,
            lab.primary_upstream,
            [zone.name for zone in lab.zones],
            lab.trust_anchors(),
        )
        oracle.start(EXAMPLE)
        started.append(oracle)
        config = folder / "config.toml"
        endpoints = ", ".join(f'"_{port}._tcp.{HOST}."' for port in PORTS)
        config.write_text(
            f'resolver = "127.0.0.1:{lab.resolver.port}"\nstate_dir = "{folder / "state"}"\n'
            f'[lineage."bench"]\nendpoints = [{endpoints}]\n'
        )
        # Warm both (resolver caches, page cache) and check that they agree before timing.
        _, ours = _probe_once(dane_hook, config, args.run_timeout)
        _, theirs = _finger_once(oracle, args.run_timeout)
        if ours != ["authenticated"] * 2 or theirs != ["authenticated"] * 2:
            raise SystemExit(f"no agreement before timing: probe {ours}, posttls-finger {theirs}")
        if args.profile:
            profiled = [sys.executable, "-m", "cProfile", "-o", args.profile, "-m", "dane_hook"]
            subprocess.run(
                [*profiled, "probe", "--cert-name", "bench", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                timeout=args.run_timeout,
                check=False,
            )
        library = _library(config)
        library()
        probe_times: list[float] = []
        finger_times: list[float] = []
        library_times: list[float] = []
        version_times: list[float] = []
        for _ in range(args.runs):  # alternately, so that both see the same machine load
            probe_times.append(_probe_once(dane_hook, config, args.run_timeout)[0])
            finger_times.append(_finger_once(oracle, args.run_timeout)[0])
            library_times.append(library())
            version_times.append(_version_once(dane_hook, args.run_timeout))
        ours_median = statistics.median(probe_times)
        theirs_median = statistics.median(finger_times)
        library_median = statistics.median(library_times)
        print(
            f"one lineage, 2 endpoints ({HOST} :25 STARTTLS, :465 implicit TLS), "
            f"median of {args.runs} runs each, caches warm:"
        )
        print(f"  dane-hook probe --cert-name (one process):   {ours_median * 1000:8.1f} ms")
        print(f"  posttls-finger -l dane, once per endpoint:   {theirs_median * 1000:8.1f} ms")
        print(f"  ratio dane-hook / posttls-finger:            {ours_median / theirs_median:8.2f}")
        print(f"  the same probe in process (probe_lineages):  {library_median * 1000:8.1f} ms")
        print(
            f"  ratio in process / posttls-finger:           {library_median / theirs_median:8.2f}"
        )
        version_median = statistics.median(version_times)
        print(f"  beside it, dane-hook --version (start-up):   {version_median * 1000:8.1f} ms")
        print(
            "  (posttls-finger runs in `unshare -m` with its resolv.conf bound over "
            "/etc/resolv.conf; dane-hook starts a Python process)"
        )
    finally:
        for thing in reversed(started):
            thing.stop()  # type: ignore[attr-defined]
        lab.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=11, help="timed runs of each (11)")
    parser.add_argument(
        "--run-timeout", type=float, default=60.0, help="seconds any one process may take (60)"
    )
    parser.add_argument(
        "--dane-hook",
        metavar="CMD",
        help="how to run dane-hook, e.g. 'python3 -m dane_hook' (default: the console script)",
    )
    parser.add_argument("--profile", metavar="FILE", help="also write a cProfile of one probe run")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        parser.error(f"not installed: {', '.join(missing)} (Debian: postfix, knot, unbound)")
    if not _ports_free():
        parser.error("something already listens on 127.0.0.1:25 or :465")
    dane_hook = shlex.split(args.dane_hook) if args.dane_hook else default_dane_hook()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="dane-hook-bench-probe-") as name:
        measure(args, dane_hook, Path(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
