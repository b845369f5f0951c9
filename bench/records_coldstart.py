"""Cold-start wall time of `dane-hook records --cert F` beside hash-slinger's `tlsa --create` and
`danetool --tlsa-rr` on the same certificate: the median of repeated runs, each a new process.

The goal (issue 2, item 8) is at most half the time of `tlsa --create`, the Python peer. Every
tool runs in its offline mode on a local file; the script checks that all three print the same
3 1 1 digest, so the times are for the same work.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

GOAL = 0.5
"""dane-hook / tlsa --create, at most."""

HOST = "mail.example.test"
_DIGEST = re.compile(r"\b[0-9a-f]{64}\b")


def default_dane_hook() -> list[str]:
    """The console script of this interpreter's environment, else the one on PATH, else -m."""
    beside = Path(sys.executable).parent / "dane-hook"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("dane-hook")
    if found:
        return [found]
    return [sys.executable, "-m", "dane_hook"]


def write_certificate(folder: Path) -> Path:
    """A self-signed ECDSA P-256 leaf for HOST (certbot's default key type)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = folder / "cert.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def commands(dane_hook: Sequence[str], cert: Path, host: str) -> dict[str, list[str]]:
    """Each tool's command for the 3 1 1 record of cert at port 25 of host."""
    tlsa = ["tlsa", "--create", "--certificate", str(cert), "-p", "25"]
    danetool = ["danetool", "--tlsa-rr", "--host", host, "--port", "25"]
    return {
        "dane-hook": [*dane_hook, "records", "--cert", str(cert), "--host", host],
        "tlsa": [*tlsa, "-u", "3", "-s", "1", "-m", "1", host],
        "danetool": [*danetool, "--load-certificate", str(cert)],
    }


def digest_of(name: str, argv: Sequence[str]) -> str:
    """The 3 1 1 digest a command prints; also proves it runs."""
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    found = _DIGEST.search(done.stdout)
    if done.returncode != 0 or not found:
        raise SystemExit(
            f"{name} failed (exit {done.returncode}): {shlex.join(argv)}\n{done.stderr.strip()}"
        )
    return found.group(0)


def wall_time(argv: Sequence[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"exit {done.returncode} during the runs: {shlex.join(argv)}")
    return elapsed


def measure(argvs: dict[str, list[str]], runs: int, warmup: int) -> dict[str, float]:
    """Median wall time per command; the commands take turns so drift hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in argvs}
    for round_number in range(warmup + runs):
        for name, argv in argvs.items():
            elapsed = wall_time(argv)
            if round_number >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=21, help="measured runs per tool (21)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs first (2)")
    parser.add_argument("--cert", type=Path, help="certificate (default: a fresh P-256 one)")
    parser.add_argument("--host", default=HOST, help=f"host for the owner name ({HOST})")
    parser.add_argument(
        "--dane-hook",
        metavar="CMD",
        help="how to run dane-hook, e.g. 'python3 -m dane_hook' (default: the console script)",
    )
    parser.add_argument(
        "--require-goal",
        action="store_true",
        help=f"exit 1 when dane-hook takes more than {GOAL:g} x the time of tlsa --create",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    for tool, package in (("tlsa", "hash-slinger"), ("danetool", "gnutls-bin")):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed: apt-get install {package}")
    dane_hook = shlex.split(args.dane_hook) if args.dane_hook else default_dane_hook()

    with tempfile.TemporaryDirectory(prefix="dane-hook-bench-") as folder:
        cert = args.cert or write_certificate(Path(folder))
        argvs = commands(dane_hook, cert, args.host)
        digests = {name: digest_of(name, argv) for name, argv in argvs.items()}
        if len(set(digests.values())) != 1:
            print(f"the tools disagree on the 3 1 1 digest: {digests}", file=sys.stderr)
            return 1
        medians = measure(argvs, args.runs, args.warmup)

    print(f"cold start, median of {args.runs} runs each ({cert.name}, 3 1 1 for {args.host}):")
    for name, argv in argvs.items():
        print(f"  {name:<10} {medians[name] * 1000:8.1f} ms   {shlex.join(argv)}")
    to_tlsa = medians["dane-hook"] / medians["tlsa"]
    to_danetool = medians["dane-hook"] / medians["danetool"]
    verdict = "met" if to_tlsa <= GOAL else "NOT met"
    print(f"  dane-hook / tlsa     {to_tlsa:6.2f}   (goal <= {GOAL:g}: {verdict})")
    print(f"  dane-hook / danetool {to_danetool:6.2f}")
    return 1 if args.require_goal and to_tlsa > GOAL else 0


if __name__ == "__main__":
    sys.exit(main())
