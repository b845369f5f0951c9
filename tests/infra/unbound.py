"""Unbound resolvers of the lab: validating (or not), every upstream query kept on loopback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dns.flags
import dns.rcode

from tests.infra.procs import Daemon, run_tool, wait_until
from tests.infra.wire import ask


class Unbound:
    """One unbound process on 127.0.0.1@port whose stub zones all point at one upstream.

    RECIPE's rule, kept here: `stub-zone: "."` points at the lab's own server and
    `outgoing-interface: 127.0.0.1`, so a name outside the lab fails at once instead of
    sending a query to the real root servers.
    """

    def __init__(
        self,
        name: str,
        home: Path,
        port: int,
        upstream: tuple[str, int],
        stub_zones: Sequence[str],
        trust_anchors: Sequence[str] | None,
    ) -> None:
        self.name = name
        self.home = home
        self.address = "127.0.0.1"
        self.port = port
        self.upstream = upstream
        self.validating = trust_anchors is not None
        home.mkdir(parents=True, exist_ok=True)
        self.config = home / "unbound.conf"
        self.control_socket = home / "control.sock"
        anchors = home / "anchors.ds"
        if trust_anchors is not None:
            if not trust_anchors:
                # An empty anchor file is accepted silently and nothing ever validates (RECIPE §5).
                raise ValueError("a validating resolver needs at least one trust anchor")
            anchors.write_text("".join(f"{line}\n" for line in trust_anchors))
        self.config.write_text(self._render(stub_zones, anchors if self.validating else None))
        run_tool(["unbound-checkconf", str(self.config)])
        self.daemon = Daemon(name, ["unbound", "-d", "-c", str(self.config)], home / "unbound.log")

    def _render(self, stub_zones: Sequence[str], anchors: Path | None) -> str:
        host, port = self.upstream
        server = [
            f"    interface: {self.address}@{self.port}",
            "    access-control: 127.0.0.0/8 allow",
            "    outgoing-interface: 127.0.0.1",
            "    do-ip6: no",
            "    do-not-query-localhost: no",
            '    username: ""',
            '    chroot: ""',
            f'    directory: "{self.home}"',
            f'    pidfile: "{self.home / "unbound.pid"}"',
            "    use-syslog: no",
            '    logfile: ""',
            "    verbosity: 1",
            "    num-threads: 1",
            "    so-reuseport: no",
            # RFC 6761 §6.2 makes .test special; unbound answers NXDOMAIN for it unless told.
            '    local-zone: "test." nodefault',
            "    ede: yes",
            "    val-log-level: 2",
            "    cache-max-negative-ttl: 60",
        ]
        if anchors is not None:
            server += [
                '    module-config: "validator iterator"',
                f'    trust-anchor-file: "{anchors}"',
            ]
        else:
            server += ['    module-config: "iterator"']
        stubs = []
        for zone in [*stub_zones, "."]:
            stubs += ["stub-zone:", f'    name: "{zone}"', f"    stub-addr: {host}@{port}"]
        control = [
            "remote-control:",
            "    control-enable: yes",
            f'    control-interface: "{self.control_socket}"',
            "    control-use-cert: no",
        ]
        return "\n".join(["server:", *server, *stubs, *control, ""])

    def start(self) -> None:
        self.daemon.start()

    def stop(self) -> None:
        self.daemon.stop()

    def wait_ready(self, probe_zone: str, timeout: float = 10.0) -> None:
        """Until the resolver answers the probe zone's SOA (with AD when it validates)."""

        def ready() -> bool:
            reply = ask(self.address, self.port, probe_zone, "SOA", recursion=True, timeout=0.5)
            if reply is None or reply.rcode() != dns.rcode.NOERROR:
                return False
            return not self.validating or bool(reply.flags & dns.flags.AD)

        wait_until(ready, f"{self.name} to answer {probe_zone}", timeout, self.daemon.check_alive)

    def control(self, *args: str) -> str:
        return run_tool(["unbound-control", "-c", str(self.config), *args])

    def flush_zone(self, zone: str) -> None:
        """Forget everything cached at and below `zone`, negative answers and NSEC ranges too."""
        self.control("flush_zone", zone)
