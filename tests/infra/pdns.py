"""PowerDNS Authoritative for the publishing tests: its own config dir, sqlite3, API on loopback.

Debian's pdns-server + pdns-backend-sqlite3, never the system service: `--config-dir` points at
a directory of the test's own (pdns.conf, the sqlite3 database, the control socket). The zone
is created and DNSSEC-signed with pdnsutil before the server starts. `delegate()` makes the
lab's validating Unbound validate it: NS + glue + DS go into the lab's signed `test.` zone (as a
registrar would put them) and `unbound-control stub_add` sends the zone's queries to the
server's port, because a delegation's glue cannot carry a port. Nothing in the lab's files
changes. Every address is 127.0.0.1; security polling (a DNS query to the outside) is off.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import dns.flags
import dns.rcode

from tests.infra.lab import DnsLab
from tests.infra.procs import Daemon, LabError, free_port, run_tool, wait_until
from tests.infra.wire import ask

ADDRESS = "127.0.0.1"
SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
REQUIRED_TOOLS = ("pdns_server", "pdnsutil")
DEB_PACKAGES = ("pdns-server", "pdns-backend-sqlite3")


def missing() -> str | None:
    """Why PowerDNS cannot run here, or None."""
    absent = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if absent or not SCHEMA.exists():
        return f"{', '.join(absent) or SCHEMA.name} not found: install {' '.join(DEB_PACKAGES)}"
    return None


class PowerDns:
    """One pdns_server serving `zone` (signed) on 127.0.0.1@port, API on 127.0.0.1@api_port."""

    def __init__(self, home: Path, zone: str, ttl: int = 60) -> None:
        self.home = home
        self.zone = zone
        self.port = free_port(ADDRESS)
        self.api_port = free_port(ADDRESS)
        self.api_key = secrets.token_urlsafe(24)
        self.url = f"http://{ADDRESS}:{self.api_port}"
        home.mkdir(parents=True, exist_ok=True)
        self.database = home / "pdns.sqlite3"
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            db.executescript(SCHEMA.read_text())
            db.commit()
        (home / "pdns.conf").write_text(
            "\n".join(
                [
                    "launch=gsqlite3",
                    f"gsqlite3-database={self.database}",
                    "gsqlite3-dnssec=yes",
                    f"local-address={ADDRESS}",
                    f"local-port={self.port}",
                    f"socket-dir={home}",
                    "daemon=no",
                    "guardian=no",
                    "disable-syslog=yes",
                    "write-pid=no",
                    "security-poll-suffix=",  # no query to the outside for security status
                    "api=yes",
                    f"api-key={self.api_key}",
                    f"webserver-address={ADDRESS}",
                    f"webserver-port={self.api_port}",
                    f"webserver-allow-from={ADDRESS}",
                    # No caches: every answer shows the database as the API left it.
                    "cache-ttl=0",
                    "query-cache-ttl=0",
                    "negquery-cache-ttl=0",
                    "zone-cache-refresh-interval=0",
                    "receiver-threads=1",
                    "distributor-threads=1",
                    "loglevel=4",
                    f"default-soa-content=ns1.@ hostmaster.@ 1 10800 3600 604800 {ttl}",
                    f"default-ttl={ttl}",
                    "",
                ]
            )
        )
        self.pdnsutil("create-zone", zone, f"ns1.{zone}")
        self.pdnsutil("add-record", zone, "ns1", "A", str(ttl), ADDRESS)
        self.pdnsutil("secure-zone", zone)  # ECDSA P-256 CSK (RFC 8624)
        self.pdnsutil("rectify-zone", zone)
        self.daemon = Daemon(
            "pdns", ["pdns_server", f"--config-dir={home}"], home / "pdns_server.log"
        )
        self._delegated: DnsLab | None = None

    def pdnsutil(self, *args: str) -> str:
        return run_tool(["pdnsutil", f"--config-dir={self.home}", *args])

    def ds_texts(self) -> list[str]:
        """The zone's DS rdata (SHA-256 digests) as `pdnsutil export-zone-ds` gives them."""
        found = []
        for line in self.pdnsutil("export-zone-ds", self.zone).splitlines():
            fields = line.split(";", 1)[0].split()
            if len(fields) == 7 and fields[2] == "DS" and fields[5] == "2":
                found.append(" ".join(fields[3:]))
        if not found:
            raise LabError(f"pdnsutil export-zone-ds {self.zone} gave no SHA-256 DS")
        return found

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.daemon.start()

        def ready() -> bool:
            reply = ask(ADDRESS, self.port, self.zone, "SOA", timeout=0.5)
            if reply is None or reply.rcode() != dns.rcode.NOERROR:
                return False
            try:
                self.api("GET", "/api/v1/servers/localhost")
            except (LabError, OSError):
                return False
            return True

        wait_until(ready, "pdns_server to answer DNS and its API", 15.0, self.daemon.check_alive)

    def stop(self) -> None:
        if self._delegated is not None:
            self.undelegate()
        self.daemon.stop()

    # -- the API, as another user of it would call it -----------------------------------------

    def api(self, method: str, path: str, payload: object = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("X-API-Key", self.api_key)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=5.0) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise LabError(f"PowerDNS API {method} {path}: HTTP {error.code}") from None
        return json.loads(raw) if raw else None

    def zone_path(self) -> str:
        return f"/api/v1/servers/localhost/zones/{self.zone}"

    def replace_tlsa(self, owner: str, ttl: int, records: list[str]) -> None:
        """Someone else's write: the whole TLSA RRset at `owner` becomes `records`."""
        rrset: dict[str, Any] = {"name": owner, "type": "TLSA", "ttl": ttl}
        if records:
            rrset["changetype"] = "REPLACE"
            rrset["records"] = [{"content": r, "disabled": False} for r in records]
        else:
            rrset["changetype"] = "DELETE"
        self.api("PATCH", self.zone_path(), {"rrsets": [rrset]})

    def tlsa(self, owner: str) -> tuple[int | None, list[str]]:
        """(TTL, records) of the TLSA RRset at `owner`, as the API has it."""
        body = self.api("GET", self.zone_path())
        for rrset in body.get("rrsets", []):
            if rrset["name"] == owner and rrset["type"] == "TLSA":
                return int(rrset["ttl"]), sorted(r["content"] for r in rrset["records"])
        return None, []

    # -- the lab's resolver validates the zone -----------------------------------------------

    def delegate(self, lab: DnsLab, parent: str = "test.") -> None:
        """Secure delegation from the lab's `test.` and a stub zone in the lab's Unbound."""
        if not self.zone.endswith("." + parent) or lab.resolver is None:
            raise LabError(f"{self.zone} must be a child of {parent}, the lab running")
        adds = [
            (self.zone, 300, "NS", f"ns1.{self.zone}"),
            (f"ns1.{self.zone}", 300, "A", ADDRESS),
            *((self.zone, 300, "DS", ds) for ds in self.ds_texts()),
        ]
        lab.updater.send(parent, add=adds)
        lab.resolver.control("stub_add", self.zone, f"{ADDRESS}@{self.port}")
        self._delegated = lab
        resolver = lab.resolver

        def validated() -> bool:
            lab.flush(parent)
            reply = ask(resolver.address, resolver.port, self.zone, "SOA", recursion=True)
            return (
                reply is not None
                and reply.rcode() == dns.rcode.NOERROR
                and bool(reply.flags & dns.flags.AD)
            )

        wait_until(validated, f"the lab's Unbound to validate {self.zone}", 10.0)

    def undelegate(self) -> None:
        lab = self._delegated
        self._delegated = None
        if lab is None or lab.resolver is None:
            return
        with contextlib.suppress(LabError):
            lab.resolver.control("stub_remove", self.zone)
        lab.updater.send("test.", delete=[(self.zone, "NS", None), (self.zone, "DS", None)])
        lab.updater.send("test.", delete=[(f"ns1.{self.zone}", "A", None)])
        lab.flush("test.")
