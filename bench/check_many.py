"""Wall time and memory of one `dane-hook check` over many lineages, beside `dig` asking the same.

Builds N lineages (default 2,000: one CA, one P-256 leaf per lineage, one DNS name each), puts
the 3 1 1 record of every leaf at two endpoints (ports 25 and 465) in a signed zone of the test
lab (tests/infra: Knot primary + secondary, a validating Unbound, all on loopback), then times
`dane-hook check --lineage ... --format json` as a new process: once with no state and a flushed
resolver, once more with the state and caches in place. Beside it: the same TLSA questions
through the same resolver by `dig -f` (one process, one query after another), and by `dig` with
the direct questions to both authoritative servers too; the process start and one round trip
beside a check of one endpoint; the peak RSS of a check of N/10 and of N lineages.

Goals (issue 3, item 7): 2,000 lineages x 2 endpoints in at most 10 s; one endpoint in about a
process start plus one round trip; memory that grows with the lineages by their data only.
Run from the repository root (`python3 bench/check_many.py`): the lab comes from tests.infra.
Everything it starts is stopped by its PID; every process and every wait is bounded in time.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.infra, whatever the directory it is run from

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402

from tests.infra.lab import PRIMARY_ADDRESS, SECONDARY_ADDRESS, DnsLab  # noqa: E402

GOAL_SECONDS = 10.0
"""Wall time of one check of 2,000 lineages x 2 endpoints, at most."""
GOAL_LINEAGES = 2000
ZONE = "bench.test."
PORTS = (25, 465)
EXIT_SAFE, EXIT_WAIT = 0, 5
"""Records seen for the first time make a check wait 2 x TTL (RFC 7671 §8.1): exit 5."""
_GNU_TIME = "/usr/bin/time"
_TOOLS = ("knotd", "knotc", "unbound", "unbound-control", "unbound-checkconf", "dig", _GNU_TIME)


# -- the lineages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lineage:
    directory: Path
    """Holds fullchain.pem (leaf + CA) and privkey.pem, as certbot's live/NAME does."""
    host: str
    record: str
    """The 3 1 1 rdata of the leaf ("3 1 1 HEX"), published at each port of `host`."""

    def owners(self) -> list[str]:
        return [f"_{port}._tcp.{self.host}." for port in PORTS]


def write_lineages(folder: Path, count: int) -> list[Lineage]:
    """One CA and `count` leaves, each with its own P-256 key and one DNS name in ZONE."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dane-hook bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    lineages = []
    for number in range(count):
        host = f"mx{number:05d}.{ZONE.rstrip('.')}"
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        directory = folder / host
        directory.mkdir(parents=True)
        (directory / "fullchain.pem").write_bytes(
            leaf.public_bytes(serialization.Encoding.PEM) + ca_pem
        )
        (directory / "privkey.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        # RFC 6698 §2.1: selector 1 = SubjectPublicKeyInfo, matching type 1 = SHA-256.
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        lineages.append(Lineage(directory, host, "3 1 1 " + hashlib.sha256(spki).hexdigest()))
    return lineages


def zone_records(lineages: Sequence[Lineage]) -> str:
    """The TLSA records of every lineage, relative to ZONE: written once, signed at load."""
    return "".join(
        f"{owner.removesuffix('.' + ZONE)} TLSA {lineage.record}\n"
        for lineage in lineages
        for owner in lineage.owners()
    )


# -- running processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    code: int
    stdout: bytes
    stderr: bytes
    peak_rss_kib: int = 0
    """Maximum resident set size of the process in KiB (0 when not asked for)."""


def run(argv: Sequence[str], timeout: float, *, rss: bool = False) -> Run:
    """Run argv to its end (killed by its PID after `timeout`): wall time, and peak RSS.

    The peak RSS comes from GNU time, which forks the command from its own small process:
    a child forked from this one would start with this process's RSS as its high-water mark
    (Linux keeps ru_maxrss across execve), and wait4() here would report at least that.
    """
    if not rss:
        return _run(list(argv), timeout)
    with tempfile.NamedTemporaryFile(prefix="maxrss-") as peak:
        done = _run([_GNU_TIME, "-f", "%M", "-o", peak.name, *argv], timeout)
        kib = int(Path(peak.name).read_text().split()[-1])
    return Run(done.seconds, done.code, done.stdout, done.stderr, kib)


_ENVIRONMENT = dict(os.environ)
"""What measured processes run with; `main()` gives them a bytecode cache."""


def _run(argv: list[str], timeout: float) -> Run:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        # Its own process group, led by its PID: what it forks (GNU time forks the command)
        # is stopped with it, by that ID.
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=_ENVIRONMENT,
            start_new_session=True,
        )
        # A pidfd waits for exactly this process, with a timeout and without polling.
        pidfd = os.pidfd_open(process.pid)
        exited = False
        try:
            exited = bool(select.select([pidfd], [], [], timeout)[0])
        finally:
            if not exited:  # too slow, or this bench is being stopped: the group goes too
                os.killpg(process.pid, signal.SIGKILL)  # not reaped yet: the ID is still ours
            _, status = os.waitpid(process.pid, 0)
            os.close(pidfd)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if not exited:
            raise SystemExit(f"killed after {timeout:g} s: {shlex.join(argv)[:200]}")
        out.seek(0)
        err.seek(0)
        return Run(seconds, process.returncode, out.read(), err.read())


def default_dane_hook() -> list[str]:
    """The console script of this interpreter's environment, else the one on PATH, else -m."""
    beside = Path(sys.executable).parent / "dane-hook"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("dane-hook")
    return [found] if found else [sys.executable, "-m", "dane_hook"]


@dataclass(frozen=True)
class Lab:
    resolver_port: int
    """Of the validating Unbound, on 127.0.0.1."""
    auth_port: int
    """Of both authoritative servers (PRIMARY_ADDRESS, SECONDARY_ADDRESS)."""

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.resolver_port}"


def check_argv(
    dane_hook: Sequence[str],
    lab: Lab,
    lineages: Sequence[Lineage],
    state: Path,
    ports: Sequence[int] = PORTS,
) -> list[str]:
    argv = [*dane_hook, "check"]
    for lineage in lineages:
        argv += ["--lineage", str(lineage.directory)]
    for port in ports:
        argv += ["--port", str(port)]
    return [
        *argv,
        *("--resolver", lab.resolver, "--auth-port", str(lab.auth_port)),
        *("--state-dir", str(state), "--format", "json"),
    ]


def verified_check(argv: Sequence[str], lineages: Sequence[Lineage], timeout: float) -> Run:
    """One check, and proof it did the work: every endpoint secure, matched, on both servers."""
    done = run(argv, timeout, rss=True)
    if done.code not in (EXIT_SAFE, EXIT_WAIT):
        raise SystemExit(f"check exited {done.code}: {done.stderr.decode()[-2000:]}")
    chains = json.loads(done.stdout)["chains"]
    if len(chains) != len(lineages):
        raise SystemExit(f"check reported {len(chains)} chains, not {len(lineages)}")
    for chain in chains:
        for endpoint in chain["endpoints"]:
            servers = {s["address"] for s in endpoint["servers"] if s["error"] is None}
            matched = [r["match"] for r in endpoint["records"]]
            if (
                endpoint["publication"] != "secure"
                or matched != ["matched"]
                or servers != {PRIMARY_ADDRESS, SECONDARY_ADDRESS}
            ):
                raise SystemExit(f"unexpected result for {endpoint['endpoint']}: {endpoint}")
    return done


def median_seconds(argv: Sequence[str], runs: int, timeout: float) -> float:
    times = []
    for _ in range(runs):
        done = run(argv, timeout)
        if done.code not in (EXIT_SAFE, EXIT_WAIT):
            raise SystemExit(f"exit {done.code}: {shlex.join(argv)[:200]}\n{done.stderr.decode()}")
        times.append(done.seconds)
    return statistics.median(times)


# -- the peers --------------------------------------------------------------------------------


def dig_batch(
    folder: Path, name: str, lab: Lab, owners: Sequence[str], *, direct: bool
) -> tuple[list[str], int]:
    """`dig -f` over the owners through the resolver; with `direct`, each owner is also asked
    of both authoritative servers without recursion, as dane-hook does. Returns (argv, count)."""
    lines = [f"@127.0.0.1 -p {lab.resolver_port} +dnssec {owner} TLSA" for owner in owners]
    if direct:
        lines += [
            f"@{address} -p {lab.auth_port} +norec {owner} TLSA"
            for owner in owners
            for address in (PRIMARY_ADDRESS, SECONDARY_ADDRESS)
        ]
    batch = folder / f"{name}.batch"
    batch.write_text("\n".join(lines) + "\n")
    return ["dig", "+tries=2", "+time=2", "-f", str(batch)], len(lines)


def verified_dig(argv: Sequence[str], count: int, validated: int, timeout: float) -> Run:
    """dig's run, and proof: `count` NOERROR answers, `validated` of them with AD."""
    done = run(argv, timeout)
    text = done.stdout.decode(errors="replace")
    answered = text.count("status: NOERROR")
    with_ad = sum(1 for line in text.splitlines() if line.startswith(";; flags:") and " ad" in line)
    if done.code != 0 or answered != count or with_ad != validated:
        raise SystemExit(f"dig: {answered} of {count} answered, {with_ad} validated")
    return done


def round_trip(lab: Lab, owner: str, runs: int) -> float:
    """Median seconds of one TLSA query to the resolver (cached), from this process."""
    times = []
    for _ in range(runs):
        query = dns.message.make_query(owner, "TLSA", want_dnssec=True, payload=1232)
        start = time.perf_counter()
        reply = dns.query.udp(query, "127.0.0.1", timeout=2.0, port=lab.resolver_port)
        times.append(time.perf_counter() - start)
        if not reply.flags & dns.flags.AD:
            raise SystemExit(f"{owner}: the resolver did not validate")
    return statistics.median(times)


# -- the bench --------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace,
    dane_hook: list[str],
    folder: Path,
    lineages: list[Lineage],
    dns_lab: DnsLab,
    lab: Lab,
) -> None:
    count = len(lineages)
    small = lineages[: count // 10]
    owners = [owner for lineage in lineages for owner in lineage.owners()]
    timeout = args.run_timeout

    # Fill the bytecode cache first (not measured): a check of one lineage imports everything.
    run(check_argv(dane_hook, lab, lineages[:1], folder / "state-warmup"), timeout)

    # dane-hook: resolver flushed and no state; then again with both in place; then N/10.
    dns_lab.flush()
    state = folder / "state"
    cold = verified_check(check_argv(dane_hook, lab, lineages, state), lineages, timeout)
    warm = verified_check(check_argv(dane_hook, lab, lineages, state), lineages, timeout)
    fewer = verified_check(
        check_argv(dane_hook, lab, small, folder / "state-small"), small, timeout
    )

    # The peer: the same TLSA questions through the same resolver, flushed and cached.
    via_resolver, asked = dig_batch(folder, "resolver", lab, owners, direct=False)
    dns_lab.flush()
    dig_cold = verified_dig(via_resolver, asked, asked, timeout)
    dig_warm = verified_dig(via_resolver, asked, asked, timeout)
    same_queries, asked_all = dig_batch(folder, "all", lab, owners, direct=True)
    dig_all = verified_dig(same_queries, asked_all, asked, timeout)

    # One endpoint: the process start, one round trip, a check of one lineage at port 25.
    one = check_argv(dane_hook, lab, lineages[:1], folder / "state-one", PORTS[:1])
    interpreter = median_seconds([sys.executable, "-c", "pass"], args.runs, timeout)
    started = median_seconds([*dane_hook, "--version"], args.runs, timeout)
    single = median_seconds(one, args.runs, timeout)
    trip = round_trip(lab, lineages[0].owners()[0], args.runs)

    def row(what: str, done: Run | float, note: str = "") -> None:
        seconds = done if isinstance(done, float) else done.seconds
        peak = done.peak_rss_kib if isinstance(done, Run) else 0
        rss = f"{peak / 1024:7.1f} MiB" if peak else ""
        print(f"  {what:<50} {seconds:8.3f} s {rss:>11}  {note}".rstrip())

    goal = GOAL_SECONDS * count / GOAL_LINEAGES
    verdict = "met" if cold.seconds <= goal else "NOT met"
    print(f"\n{count} lineages x {len(PORTS)} endpoints = {len(owners)} TLSA owners:")
    print(f"  {'':<50} {'wall':>10} {'peak RSS':>11}")
    row("dane-hook check, no state, resolver flushed", cold, f"goal <= {goal:g} s: {verdict}")
    row("dane-hook check, state and caches in place", warm)
    row(f"dane-hook check, {len(small)} lineages", fewer)
    row(f"dig -f, {asked} TLSA via the resolver, flushed", dig_cold)
    row(f"dig -f, {asked} TLSA via the resolver, cached", dig_warm)
    row(f"dig -f, the same + {asked_all - asked} direct to both servers", dig_all)
    print("  dane-hook / dig:")
    print(f"    flushed, TLSA via the resolver      {cold.seconds / dig_cold.seconds:6.2f}")
    print(f"    cached, TLSA via the resolver       {warm.seconds / dig_warm.seconds:6.2f}")
    print(f"    cached, the same queries            {warm.seconds / dig_all.seconds:6.2f}")

    print(f"\none lineage x one endpoint, median of {args.runs} runs:")
    row("python -c pass", interpreter)
    row("dane-hook --version (process start)", started)
    row("one TLSA round trip via the resolver", trip)
    row("dane-hook check, 1 lineage x 1 endpoint", single)
    print(f"  check - (process start + round trip)               {single - started - trip:8.3f} s")

    growth = (cold.peak_rss_kib - fewer.peak_rss_kib) / (count - len(small))
    pem = sum(
        (lineage.directory / name).stat().st_size
        for lineage in lineages
        for name in ("fullchain.pem", "privkey.pem")
    )
    state_bytes = (state / "state.json").stat().st_size
    print(f"\nmemory, {len(small)} -> {count} lineages:")
    print(f"  peak RSS growth per lineage                 {growth:8.1f} KiB")
    print(f"  per lineage: PEM files read                 {pem / count / 1024:8.1f} KiB")
    written = len(cold.stdout) / count / 1024
    print(f"  per lineage: JSON written                   {written:8.1f} KiB")
    print(f"  per lineage: state kept                     {state_bytes / count / 1024:8.1f} KiB")
    print(f"  growth / JSON written                       {growth / written:8.1f} x")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`: the lab is stopped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lineages", type=int, default=GOAL_LINEAGES, help="lineages (2000)")
    parser.add_argument("--runs", type=int, default=11, help="runs of each one-endpoint timing")
    parser.add_argument(
        "--run-timeout", type=float, default=120.0, help="seconds any one process may take (120)"
    )
    parser.add_argument(
        "--dane-hook",
        metavar="CMD",
        help="how to run dane-hook, e.g. 'python3 -m dane_hook' (default: the console script)",
    )
    args = parser.parse_args(argv)
    if args.lineages < 10 or args.runs < 1:
        parser.error("--lineages must be at least 10 and --runs at least 1")
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        parser.error(f"not installed: {', '.join(missing)} (Debian: knot, unbound, dnsutils, time)")
    dane_hook = shlex.split(args.dane_hook) if args.dane_hook else default_dane_hook()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    with tempfile.TemporaryDirectory(prefix="dane-hook-bench-") as name:
        folder = Path(name)
        # An installed dane-hook starts from cached bytecode. Where PYTHONDONTWRITEBYTECODE is
        # set (CI, containers) every run would compile it first: give the runs a cache here.
        _ENVIRONMENT.pop("PYTHONDONTWRITEBYTECODE", None)
        _ENVIRONMENT["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        begin = time.perf_counter()
        lineages = write_lineages(folder / "live", args.lineages)
        written = time.perf_counter() - begin
        dns_lab = DnsLab(folder / "lab", extra_zones={ZONE: zone_records(lineages)})
        try:
            dns_lab.start()
            assert dns_lab.resolver is not None
            lab = Lab(dns_lab.resolver.port, dns_lab.auth_port)
            print(
                f"{args.lineages} lineages written in {written:.1f} s; lab up in "
                f"{dns_lab.startup_seconds:.1f} s: {ZONE} signed on both servers, "
                f"resolver {lab.resolver}, authoritative servers on port {lab.auth_port}",
                flush=True,
            )
            measure(args, dane_hook, folder, lineages, dns_lab, lab)
        finally:
            dns_lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
