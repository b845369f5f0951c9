"""Time from `certbot renew` to the new chain served, with a publisher (issue 12).

Starts the test lab (tests/infra: Knot primary + secondary, a validating Unbound, Pebble, all on
loopback), issues one certificate with real certbot, enrolls it with a publisher (RFC 2136 with
a TSIG key allowed TLSA updates only) and then, `--runs` times: `certbot renew` with a new key
(dane-hook's deploy hook holds the chain and publishes its 3 1 1 at once), then the timer
(`dane-hook release` every `--period` seconds) until the served view holds the new chain.

Printed per run and as the median: the time from the start of `certbot renew` to the new chain
served, beside the floor: certbot's own run time (issuance and the deploy hook) + 2 x TTL
(RFC 7671 §8.1) + propagation (the secondary serving the update) + one timer period. The
lab's primary sends no NOTIFY (tests/infra/knot.py): the secondary is refreshed after certbot
returns and before each timer run, as NOTIFY would. So the deploy hook's own observation sees
the record on the primary only, and the clock starts at the first timer run.
Run from the repository root: `python3 bench/publish_latency.py`. Every wait is bounded;
everything started is stopped by its PID (DnsLab.close, Pebble.stop).
"""

from __future__ import annotations

import argparse
import base64
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.infra, whatever the directory it is run from

from dane_hook.dns.publish import load_tsig_key  # noqa: E402
from tests.infra.certbot import Certbot  # noqa: E402
from tests.infra.lab import PRIMARY_ADDRESS, DnsLab  # noqa: E402
from tests.infra.pebble import Pebble  # noqa: E402

DANE_HOOK = str(Path(sys.executable).parent / "dane-hook")
NAME = "bench-publish.example.test"
OWNER = f"_25._tcp.{NAME}."
LIMIT = 120.0
"""Seconds one run may take from `certbot renew` to the new chain served."""


def _tlsa_key(folder: Path, dns_lab: DnsLab) -> Path:
    done = subprocess.run(
        ["keymgr", "-t", "bench-publish.", "hmac-sha256"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    path = folder / "tlsa.key"
    path.touch(mode=0o600)
    path.write_text(done.stdout)
    key = load_tsig_key(path)
    secret = base64.b64encode(key.secret).decode()
    dns_lab.primary.allow_tlsa_updates(key.name.to_text(), "hmac-sha256", secret)
    return path


def _dane_hook(config: Path, certbot: Certbot, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DANE_HOOK, *argv],
        env=certbot.environment({"DANE_HOOK_CONFIG": str(config)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _pull(dns_lab: DnsLab) -> float:
    """The secondary transfers what changed (NOTIFY's job); returns the seconds it took."""
    started = time.monotonic()
    zone = dns_lab.zone_of(OWNER)
    dns_lab.secondary.refresh(zone)
    dns_lab.wait_secondary_synced(zone)
    return time.monotonic() - started


def one_run(
    certbot: Certbot, dns_lab: DnsLab, config: Path, served: Path, period: float
) -> tuple[float, float, float]:
    """(renew to served, certbot's own seconds, propagation seconds) for one renewal."""
    live = certbot.lineage(NAME).live_file()
    started = time.monotonic()
    certbot.renew(reuse_key=False, env={"DANE_HOOK_CONFIG": str(config)})
    renewed = time.monotonic()
    propagation = _pull(dns_lab)
    while (served / "fullchain.pem").read_bytes() != live.read_bytes():
        if time.monotonic() - started > LIMIT:
            raise SystemExit(f"the new chain was not served within {LIMIT:.0f} s")
        time.sleep(max(0.0, period - (time.monotonic() - renewed) % period))
        _pull(dns_lab)
        done = _dane_hook(config, certbot, "release")
        # 1 and 5 are normal here: until the resolver's cached RRset (TTL) expires, the new
        # record is not seen (unsafe), then it is younger than 2 x TTL (wait).
        if done.returncode not in (0, 1, 5):
            raise SystemExit(
                f"dane-hook release exited {done.returncode}: {(done.stdout + done.stderr).strip()}"
            )
    return time.monotonic() - started, renewed - started, propagation


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ttl", type=int, default=3, help="TTL of the TLSA RRset (seconds)")
    parser.add_argument("--period", type=float, default=2.0, help="timer period (seconds)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dane-hook-bench-") as name:
        folder = Path(name)
        dns_lab = DnsLab(folder / "lab")
        pebble: Pebble | None = None
        try:
            dns_lab.start()
            pebble = Pebble(folder / "pebble", dns_lab.primary_upstream)
            pebble.start()
            dns_lab.update(NAME + ".", add=[(60, "A", "127.0.0.1")])
            base = folder / "certbot"
            certbot = Certbot(
                base / "config",
                base / "work",
                base / "logs",
                pebble.directory,
                pebble.ca_bundle,
                pebble.http_port,
            )
            certbot.certonly([NAME])
            from dane_hook.sources.files import load_certificates
            from dane_hook.tlsa.generate import certificate_record

            leaf = load_certificates(certbot.lineage(NAME).live_file("cert"))[0]
            dns_lab.add_records(OWNER, args.ttl, [certificate_record(leaf, 3, 1, 1).to_text()])
            key = _tlsa_key(folder, dns_lab)
            config = folder / "dane-hook.toml"
            assert dns_lab.resolver is not None
            resolver = f"{dns_lab.resolver.address}:{dns_lab.resolver.port}"
            config.write_text(
                f'resolver = "{resolver}"\n'
                f'state_dir = "{folder / "state"}"\n'
                f'served_dir = "{folder / "served"}"\n'
                f'certbot_dir = "{certbot.config_dir}"\n'
                f"auth_port = {dns_lab.auth_port}\n"
                f'[lineage."{NAME}"]\npublish = "lab"\nadopt = true\n'
                f'[publisher.lab]\ntype = "rfc2136"\nkey_file = "{key}"\n'
                f'server = "{PRIMARY_ADDRESS}"\nport = {dns_lab.auth_port}\nttl = {args.ttl}\n'
            )
            enrolled = _dane_hook(config, certbot, "enroll", "--cert-name", NAME)
            if enrolled.returncode != 0:
                raise SystemExit(f"enroll failed: {enrolled.stderr.strip()}")
            certbot.install_hook(
                "00-dane-hook", f"#!/bin/sh\nexec {shlex.quote(DANE_HOOK)} deploy\n"
            )
            served = folder / "served" / NAME
            results = []
            for run in range(args.runs):
                total, renew, propagation = one_run(certbot, dns_lab, config, served, args.period)
                # certbot's own run (ACME issuance, the deploy hook) is inside the interval.
                floor = renew + 2 * args.ttl + propagation + args.period
                results.append((total, floor))
                print(
                    f"run {run + 1}: renew to served {total:.1f} s; floor {floor:.1f} s = "
                    f"certbot {renew:.1f} s + 2 x TTL {2 * args.ttl} s + propagation "
                    f"{propagation:.2f} s + period {args.period} s; over the floor "
                    f"{total - floor:+.1f} s"
                )
                # The old record is retired 2 x TTL after promotion: let the next run start clean.
                time.sleep(2 * args.ttl + 1)
                _pull(dns_lab)
                _dane_hook(config, certbot, "release")
            totals = [t for t, _ in results]
            floors = [f for _, f in results]
            print(
                f"median over {args.runs} runs (TTL {args.ttl} s, timer every {args.period} s): "
                f"renew to served {statistics.median(totals):.1f} s, "
                f"floor {statistics.median(floors):.1f} s"
            )
        finally:
            if pebble is not None:
                pebble.stop()
            dns_lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
