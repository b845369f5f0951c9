"""A real Postfix on loopback for the probe tests, and posttls-finger as the oracle.

`Postfix` runs Debian's postfix with a configuration directory of its own (`postfix -c DIR`),
which Postfix allows for the super-user without `alternate_config_directories` (postfix(1),
"-c config_dir"). Queue and data directories, the log file and both main.cf and master.cf
live in one temporary directory; master.cf holds only what smtpd needs: an smtpd with STARTTLS
(RFC 3207) and one with `smtpd_tls_wrappermode=yes` (RFC 8314), anvil, tlsmgr and postlogd.
Nothing delivers mail. Each smtpd service has one process that stays up (maxproc 1, long
max_idle): it keeps the certificate it read when it started (smtpd reads its TLS files at
process start), which is what makes "the service was not reloaded" reproducible.

The directory is made with mode 0755 outside pytest's 0700 temporary tree, because Postfix's
unprivileged daemons (user postfix) must reach the queue directory.

`posttls_finger()` runs posttls-finger -l dane. It resolves through the C library's stub
resolver, which takes its server only from /etc/resolv.conf, on port 53 (resolv.conf(5): no
port, and LOCALDOMAIN / RES_OPTIONS set only the search list and options). So it runs in a
private mount namespace (`unshare -m`) with a resolv.conf bound over /etc/resolv.conf that
names an `OracleResolver`: an Unbound of the lab on 127.0.0.153:53 (another loopback address,
so nothing else on port 53 is touched) whose every query goes to the lab's Knot. glibc >= 2.31
passes the AD bit on only with `options trust-ad`, which the file sets.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.infra.procs import LabError, free_port, run_tool, wait_until
from tests.infra.unbound import Unbound

POSTFIX_TOOLS = ("postfix", "postconf", "posttls-finger")


def postfix_missing() -> list[str]:
    return [tool for tool in POSTFIX_TOOLS if shutil.which(tool) is None]


class Postfix:
    """One Postfix instance of its own on loopback; stopped by its master's PID."""

    def __init__(
        self,
        chain_file: Path,
        key_file: Path,
        *,
        address: str = "127.0.0.1",
        hostname: str = "mx.example.test",
        tls_level: str = "may",
        ports: tuple[int, int] | None = None,
    ) -> None:
        """`ports`: (STARTTLS, implicit TLS), e.g. (25, 465) on an address of its own, so that
        the probe picks the protocol by port as it does in production; default free ports."""
        if os.geteuid() != 0:
            raise LabError("postfix -c DIR needs root (or alternate_config_directories)")
        self.home = Path(tempfile.mkdtemp(prefix="dane-hook-postfix-"))
        self.home.chmod(0o755)
        self.config = self.home / "conf"
        self.queue = self.home / "queue"
        self.data = self.home / "data"
        self.log = self.home / "maillog"
        for folder in (self.config, self.queue, self.data):
            folder.mkdir()
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.data, postfix_user.pw_uid, postfix_user.pw_gid)
        self.address = address
        self.starttls_port, self.wrapper_port = ports or (free_port(address), free_port(address))
        self.chain_file = chain_file
        self.key_file = key_file
        host = f"[{address}]" if ":" in address else address
        (self.config / "main.cf").write_text(
            "\n".join(
                [
                    "compatibility_level = 3.6",
                    f"queue_directory = {self.queue}",
                    f"data_directory = {self.data}",
                    f"maillog_file = {self.log}",
                    f"maillog_file_prefixes = {self.home}",
                    f"myhostname = {hostname}",
                    "mydestination =",
                    "relay_domains =",
                    "local_recipient_maps =",
                    "alias_maps =",
                    "alias_database =",
                    f"inet_interfaces = {host}",
                    "inet_protocols = ipv6" if ":" in address else "inet_protocols = ipv4",
                    "smtpd_relay_restrictions = reject",
                    "smtpd_banner = $myhostname ESMTP",
                    f"smtpd_tls_security_level = {tls_level}",
                    f"smtpd_tls_chain_files = {key_file}, {chain_file}",
                    "smtpd_tls_loglevel = 1",
                    "smtpd_tls_session_cache_database =",
                    # No lookups of the client: every test connection comes from loopback.
                    "smtpd_peername_lookup = no",
                    "",
                ]
            )
        )
        one = "n - n - 1"  # private=n unpriv=- chroot=n wakeup=- maxproc=1
        (self.config / "master.cf").write_text(
            "\n".join(
                [
                    f"{host}:{self.starttls_port} inet {one} smtpd -o max_idle=3600s",
                    f"{host}:{self.wrapper_port} inet {one} smtpd -o max_idle=3600s"
                    " -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt",
                    "postlog   unix-dgram n - n - 1 postlogd",
                    "tlsmgr    unix - - n 1000? 1 tlsmgr",
                    "anvil     unix - - n - 1 anvil",
                    "",
                ]
            )
        )
        self.master_pid: int | None = None

    # -- control ----------------------------------------------------------------------------

    def _postfix(self, *args: str, timeout: float = 30.0) -> str:
        done = subprocess.run(
            ["postfix", "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise LabError(
                f"postfix {' '.join(args)} failed ({done.returncode}): "
                f"{done.stderr.strip()}\n{self.log_tail()}"
            )
        return done.stdout

    def postconf(self, *settings: str) -> None:
        """`postconf -c DIR -e name=value ...`; takes effect at the next reload."""
        run_tool(["postconf", "-c", str(self.config), "-e", *settings])

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _pid_from_file(self) -> int | None:
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _alive(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie (exited, not yet reaped by its parent) counts as gone.
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if fields and fields[0] == "Z":
                return False
        return True

    def _listening(self, port: int) -> bool:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            return sock.connect_ex((self.address, port)) == 0

    def start(self, timeout: float = 30.0) -> None:
        self._postfix("start", timeout=timeout)
        wait_until(lambda: self._pid_from_file() is not None, "Postfix's master.pid", timeout)
        self.master_pid = self._pid_from_file()
        # master owns the listeners itself, so a connect succeeds as soon as it runs; the
        # smtpd behind it starts on the first connection.
        wait_until(
            lambda: self._listening(self.starttls_port) and self._listening(self.wrapper_port),
            "Postfix to listen",
            timeout,
        )

    def reload(self, timeout: float = 30.0) -> None:
        """`postfix -c DIR reload`: master rereads its files and restarts its daemons.

        Idle smtpd processes exit at once (they notice the new master generation), so the next
        connection gets a new process that reads the TLS files again. Waits until the log says
        the reload happened."""
        before = self.log.read_text(errors="replace").count("reload -- version")
        self._postfix("reload", timeout=timeout)
        wait_until(
            lambda: self.log.read_text(errors="replace").count("reload -- version") > before,
            "Postfix to reload",
            timeout,
        )

    def stop(self, timeout: float = 20.0) -> None:
        """`postfix stop`, bounded; then SIGKILL to the master's PID if it is still there."""
        pid = self.master_pid or self._pid_from_file()
        with contextlib.suppress(LabError, subprocess.TimeoutExpired):
            self._postfix("stop", timeout=timeout)
        if pid is not None:
            end = time.monotonic() + timeout
            while self._alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
            if self._alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.master_pid = None
        shutil.rmtree(self.home, ignore_errors=True)


# -- the oracle -------------------------------------------------------------------------------


class OracleResolver:
    """A validating Unbound of the lab on ADDRESS:53, for tools that can only use port 53."""

    def __init__(
        self,
        home: Path,
        address: str,
        upstream: tuple[str, int],
        stub_zones: Sequence[str],
        trust_anchors: Sequence[str],
    ) -> None:
        self.address = address
        self.unbound = Unbound(
            f"unbound-oracle-{address}", home, 53, upstream, stub_zones, trust_anchors
        )
        # tests.infra.unbound listens on 127.0.0.1; this one takes another loopback address.
        text = self.unbound.config.read_text()
        self.unbound.config.write_text(
            text.replace("interface: 127.0.0.1@53", f"interface: {address}@53")
        )
        self.unbound.address = address
        self.resolv_conf = home / "resolv.conf"
        self.resolv_conf.write_text(f"nameserver {address}\noptions trust-ad attempts:1\n")

    def start(self, probe_zone: str) -> None:
        self.unbound.start()
        self.unbound.wait_ready(probe_zone)

    def stop(self) -> None:
        self.unbound.stop()

    def flush(self, zone: str) -> None:
        self.unbound.flush_zone(zone)


@dataclass(frozen=True)
class Finger:
    """What posttls-finger -l dane concluded, and its output."""

    verdict: str
    """authenticated | not-authenticated | no-dane | bogus | no-tls | failed"""
    output: str


_VERDICTS = [
    # posttls-finger's (Postfix 3.7) own words, most telling first. Without usable TLSA
    # records it falls back to the "secure" level (posttls-finger(1), -l), so a chain that
    # is merely not PKIX-trusted, with no DANE word in the output, means no TLSA records.
    (re.compile(r"TLSA lookup error|bogus|SERVFAIL|DNSSEC validation", re.I), "bogus"),
    (re.compile(r"Verified TLS connection established"), "authenticated"),
    (re.compile(r"no matching DANE TLSA records|num=65:"), "not-authenticated"),
    (re.compile(r"untrusted issuer"), "no-dane"),
]


_STARTTLS_OFFERED = re.compile(r"< 250[ -]STARTTLS\b", re.I)


def posttls_finger(
    resolver: OracleResolver,
    host: str,
    port: int,
    *,
    options: Sequence[str] = (),
    wrapper: bool = False,
    timeout: float = 30.0,
) -> Finger:
    """posttls-finger -l dane [HOST]:PORT through `resolver`, in a private mount namespace;
    `wrapper`: implicit TLS (-w, SMTPS on 465, RFC 8314) instead of STARTTLS."""
    unshare = shutil.which("unshare")
    finger = shutil.which("posttls-finger")
    if unshare is None or finger is None:
        raise LabError("posttls-finger needs unshare(1) and Postfix's posttls-finger")
    command = (
        f"mount --bind {resolver.resolv_conf} /etc/resolv.conf && "
        f"exec {finger} -l dane -t 5 -T 5 -L summary,untrusted,certmatch "
        + ("-w " if wrapper else "")
        + "".join(f"-o '{option}' " for option in options)
        + f"'[{host}]:{port}'"
    )
    done = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    # Without STARTTLS in the EHLO reply posttls-finger just says QUIT: the chat shows it.
    # (In wrapper mode TLS comes first, and the EHLO reply inside it has no STARTTLS.)
    if (
        not wrapper
        and "< 250" in output
        and "> QUIT" in output
        and not _STARTTLS_OFFERED.search(output)
    ):
        return Finger("no-tls", output)
    for pattern, verdict in _VERDICTS:
        if pattern.search(output):
            return Finger(verdict, output)
    return Finger("failed", output)
