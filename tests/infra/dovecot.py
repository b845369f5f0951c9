"""A real Dovecot (Debian's dovecot-imapd and dovecot-pop3d) on loopback for the probe tests.

`dovecot -F -c FILE` runs the master in the foreground with a configuration of its own; as
root it needs no installed configuration. Base, state and log paths are in one temporary
directory (mode 0755: the login processes run as dovenull). It listens on 127.0.0.1 only:
IMAP with STARTTLS and implicit-TLS IMAP (RFC 8314), POP3 with STLS and implicit-TLS POP3.
Nobody logs in: a static passdb/userdb only satisfies the configuration check. Stopped by the
master's PID; `reload()` sends it SIGHUP, which rereads ssl_cert and ssl_key.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path

from tests.infra.procs import Daemon, LabError, free_port, wait_until


def dovecot_missing() -> list[str]:
    wanted = ["dovecot"]
    found = [tool for tool in wanted if shutil.which(tool) is None]
    if not found and not Path("/usr/lib/dovecot/imap-login").exists():
        found.append("dovecot-imapd")
    if not found and not Path("/usr/lib/dovecot/pop3-login").exists():
        found.append("dovecot-pop3d")
    return found


class Dovecot:
    """One dovecot master in the foreground; ports `imap`, `imaps`, `pop3`, `pop3s`."""

    def __init__(self, chain_file: Path, key_file: Path, address: str = "127.0.0.1") -> None:
        if os.geteuid() != 0:
            raise LabError("dovecot -c FILE with its own users needs root here")
        self.home = Path(tempfile.mkdtemp(prefix="dane-hook-dovecot-"))
        self.home.chmod(0o755)
        for sub in ("run", "state", "home"):
            (self.home / sub).mkdir()
        self.address = address
        self.imap, self.imaps, self.pop3, self.pop3s = (free_port(address) for _ in range(4))
        self.log = self.home / "dovecot.log"
        self.config = self.home / "dovecot.conf"
        self.config.write_text(
            f"""base_dir = {self.home / "run"}
state_dir = {self.home / "state"}
log_path = {self.log}
protocols = imap pop3
listen = {address}
ssl = yes
ssl_cert = <{chain_file}
ssl_key = <{key_file}
default_internal_user = dovecot
default_login_user = dovenull
mail_location = mbox:{self.home / "home" / "mail"}
passdb {{
  driver = static
  args = nopassword=no
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={self.home / "home"}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap}
  }}
  inet_listener imaps {{
    port = {self.imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3}
  }}
  inet_listener pop3s {{
    port = {self.pop3s}
    ssl = yes
  }}
}}
"""
        )
        self.daemon = Daemon(
            "dovecot", ["dovecot", "-F", "-c", str(self.config)], self.home / "dovecot.out"
        )

    def _listening(self) -> bool:
        for port in (self.imap, self.imaps, self.pop3, self.pop3s):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                if sock.connect_ex((self.address, port)) != 0:
                    return False
        return True

    def start(self, timeout: float = 20.0) -> None:
        self.daemon.start()
        wait_until(self._listening, "dovecot to listen", timeout, self.daemon.check_alive)

    def reload(self, timeout: float = 20.0) -> None:
        """SIGHUP to the master: it rereads its configuration and the certificate files."""
        before = self.log.read_text(errors="replace").count("SIGHUP received")
        if self.daemon.pid is None:
            raise LabError("dovecot is not running")
        os.kill(self.daemon.pid, signal.SIGHUP)
        wait_until(
            lambda: self.log.read_text(errors="replace").count("SIGHUP received") > before,
            "dovecot to reload",
            timeout,
            self.daemon.check_alive,
        )

    def stop(self) -> None:
        self.daemon.stop()
        shutil.rmtree(self.home, ignore_errors=True)
