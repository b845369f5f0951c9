"""Knot DNS instances of the lab: a signing primary with RFC 2136 + TSIG, and a plain secondary."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from tests.infra.procs import Daemon, run_tool, wait_until
from tests.infra.wire import is_signed, soa_serial


@dataclass(frozen=True)
class Zone:
    """A zone the primary serves: its name (absolute), zone file text and whether Knot signs it."""

    name: str
    text: str
    signed: bool
    replicated: bool = False
    """Also served by the secondary (transferred, notified on every change)."""
    rrsig_lifetime: int | None = None
    """Seconds the RRSIGs Knot makes are valid (its policy's rrsig-lifetime, refreshed at half
    of it); None: Knot's default (14 days)."""


def new_tsig_secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class Knot:
    """One knotd process: config written under `home`, listening on address@port."""

    def __init__(self, name: str, home: Path, address: str, port: int) -> None:
        self.name = name
        self.home = home
        self.address = address
        self.port = port
        self.config = home / "knot.conf"
        self.socket = home / "run" / "knot.sock"
        for sub in ("run", "db", "zones"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.daemon = Daemon(name, ["knotd", "-c", str(self.config)], home / "knotd.log")

    def _header(self) -> str:
        return (
            "server:\n"
            f'    rundir: "{self.home / "run"}"\n'
            f"    listen: {self.address}@{self.port}\n"
            "database:\n"
            f'    storage: "{self.home / "db"}"\n'
            "log:\n"
            "  - target: stderr\n"
            "    any: info\n"
        )

    def start(self) -> None:
        self.daemon.start()

    def stop(self) -> None:
        self.daemon.stop()

    def knotc(self, *args: str) -> str:
        """A control command to this instance, by its own socket (never the system's knotd)."""
        return run_tool(["knotc", "-s", str(self.socket), "-t", "10", *args])

    def serial(self, zone: str) -> int | None:
        return soa_serial(self.address, self.port, zone)

    def run_pending_notify(self, zone: str) -> None:
        """Run now the NOTIFY event Knot plans one second after every change.

        Knot 3.2 plans zone events in whole seconds: an update that arrives in the second that
        event is planned for is not scheduled on its own and waits for it, up to a second.
        Running the event at once keeps every update of the lab in the millisecond range.
        """
        self.knotc("-b", "zone-notify", zone)


class KnotPrimary(Knot):
    """Signs its zones (ECDSA P-256, NSEC), accepts TSIG-signed updates, notifies the secondary."""

    KEY_NAME = "update-key."

    def __init__(
        self, home: Path, address: str, port: int, zones: list[Zone], secondary: str
    ) -> None:
        super().__init__("knot-primary", home, address, port)
        self.zones = zones
        self.tsig_secret = new_tsig_secret()
        self.secondary = secondary
        self.tlsa_keys: list[tuple[str, str, str]] = []
        """Extra keys (name, algorithm, secret) whose ACL allows TLSA updates only."""
        for zone in zones:
            (home / "zones" / f"{zone.name}zone").write_text(zone.text)
        self.config.write_text(self._render())

    def _render(self) -> str:
        lines = [
            self._header(),
            "key:\n",
            f"  - id: {self.KEY_NAME}\n    algorithm: hmac-sha256\n",
            f"    secret: {self.tsig_secret}\n",
            *(
                f"  - id: {name}\n    algorithm: {algorithm}\n    secret: {secret}\n"
                for name, algorithm, secret in self.tlsa_keys
            ),
            "remote:\n",
            f"  - id: secondary\n    address: {self.secondary}@{self.port}\n",
            "acl:\n",
            f"  - id: update\n    key: {self.KEY_NAME}\n    action: update\n",
            "  - id: transfer\n    address: 127.0.0.0/8\n    action: transfer\n",
            *(
                f"  - id: tlsa-only-{index}\n    key: {name}\n    action: update\n"
                "    update-type: [TLSA]\n"
                for index, (name, _, _) in enumerate(self.tlsa_keys)
            ),
            "policy:\n",
            # RFC 8624: ECDSA P-256 (13) is the algorithm to sign with; NSEC keeps proofs simple.
            "  - id: lab\n    algorithm: ecdsap256sha256\n    nsec3: off\n",
            *(
                f"  - id: lab-rrsig-{lifetime}\n    algorithm: ecdsap256sha256\n    nsec3: off\n"
                f"    rrsig-lifetime: {lifetime}\n    rrsig-refresh: {lifetime // 2}\n"
                for lifetime in sorted({z.rrsig_lifetime for z in self.zones if z.rrsig_lifetime})
            ),
            "template:\n",
            "  - id: default\n",
            f'    storage: "{self.home / "zones"}"\n',
            "    zonefile-sync: -1\n",
            "    zonefile-load: difference-no-serial\n",
            "    journal-content: all\n",
            "zone:\n",
        ]
        for zone in self.zones:
            lines.append(f"  - domain: {zone.name}\n    file: {zone.name}zone\n")
            tlsa_acls = "".join(f", tlsa-only-{i}" for i in range(len(self.tlsa_keys)))
            lines.append(f"    acl: [update, transfer{tlsa_acls}]\n")
            if zone.signed:
                policy = f"lab-rrsig-{zone.rrsig_lifetime}" if zone.rrsig_lifetime else "lab"
                lines.append(f"    dnssec-signing: on\n    dnssec-policy: {policy}\n")
        return "".join(lines)

    def allow_tlsa_updates(self, key_name: str, algorithm: str, secret: str) -> None:
        """Add a TSIG key whose ACL allows updates of TLSA records only, then reload Knot.

        Knot's `update-type: [TLSA]` refuses (REFUSED) an update that touches any other type.
        Zones are not reloaded: their files did not change, the journal keeps every update.
        """
        self.tlsa_keys.append((key_name, algorithm, secret))
        self.config.write_text(self._render())
        self.knotc("reload")

    def wait_ready(self, timeout: float = 10.0) -> None:
        def ready() -> bool:
            for zone in self.zones:
                if zone.signed and not is_signed(self.address, self.port, zone.name):
                    return False
                if not zone.signed and self.serial(zone.name) is None:
                    return False
            return True

        wait_until(
            ready, f"{self.name} to serve its signed zones", timeout, self.daemon.check_alive
        )


class KnotSecondary(Knot):
    """Transfers the replicated zones from the primary on NOTIFY; signs nothing itself."""

    def __init__(self, home: Path, address: str, port: int, zones: list[str], primary: str) -> None:
        super().__init__("knot-secondary", home, address, port)
        self.zone_names = zones
        self.primary = primary
        self.config.write_text(self._render())

    def _render(self) -> str:
        lines = [
            self._header(),
            "remote:\n",
            f"  - id: primary\n    address: {self.primary}@{self.port}\n",
            "acl:\n",
            "  - id: notify\n    address: 127.0.0.0/8\n    action: notify\n",
            "template:\n",
            "  - id: default\n",
            f'    storage: "{self.home / "zones"}"\n',
            "    zonefile-sync: -1\n",
            "    zonefile-load: none\n",
            "    journal-content: none\n",
            "zone:\n",
        ]
        for name in self.zone_names:
            lines.append(f"  - domain: {name}\n    master: primary\n    acl: notify\n")
        return "".join(lines)

    def hold(self, zone: str) -> None:
        """Postpone every zone event, so NOTIFY from the primary no longer brings changes."""
        self.knotc("-b", "zone-freeze", zone)

    def release(self, zone: str) -> None:
        """Thaw the zone and refresh it from the primary now."""
        self.knotc("-b", "zone-thaw", zone)
        self.refresh(zone)

    def refresh(self, zone: str) -> None:
        """Ask the primary for its serial and transfer what changed; returns when done."""
        self.knotc("-b", "zone-refresh", zone)
        self.run_pending_notify(zone)
