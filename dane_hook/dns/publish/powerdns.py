"""PowerDNS Authoritative's HTTP API: read the RRset, change only our records, write, read again.

The API has no "add one record": PATCH with `changetype: REPLACE` replaces the whole RRset
(https://doc.powerdns.com/authoritative/http-api/zone.html). So every change is a
read-modify-write, and the read after the write checks that nothing of anyone else's got lost
to a writer that came in between; a record that did is put back and reported.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

import dns.name

from dane_hook.dns.publish.base import (
    Change,
    Outcome,
    Publisher,
    PublishError,
    RRsetView,
    Settings,
    by_owner,
    owner_name,
    read_private_file,
    tlsa_text,
)

DEFAULT_TIMEOUT = 10.0
ROUNDS = 3
"""Writes per owner before giving up on an RRset that others keep changing."""


class PowerDnsPublisher(Publisher):
    """One zone (or every zone of one server) behind a PowerDNS API at `url`."""

    kind = "powerdns"

    def __init__(
        self,
        name: str,
        url: str,
        api_key: str,
        *,
        server_id: str = "localhost",
        zone: dns.name.Name | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ttl: int | None = None,
    ) -> None:
        """`url`: the API's web server, e.g. http://127.0.0.1:8081 (a trailing /api/v1 is fine)."""
        super().__init__(name, ttl)
        base = url.rstrip("/")
        if base.endswith("/api/v1"):
            base = base[: -len("/api/v1")]
        self.url = base
        self._api_key = api_key
        self.server_id = server_id
        self.zone = zone
        self.timeout = timeout

    def __repr__(self) -> str:  # never the API key
        return f"PowerDnsPublisher({self.name!r}, {self.url!r}, zone={self.zone})"

    @classmethod
    def from_table(cls, settings: Settings) -> PowerDnsPublisher:
        url = settings.string("url", required=True)
        assert url is not None
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise settings.fail("url", "an http:// or https:// URL")
        key_file = settings.path("api_key_file", required=True)
        assert key_file is not None
        server_id = settings.string("server_id") or "localhost"
        zone = settings.zone()
        timeout = settings.seconds("timeout", DEFAULT_TIMEOUT)
        ttl = settings.integer("ttl", 0, 2**31 - 1)
        settings.finish()
        api_key = read_private_file(key_file, "a PowerDNS API key").strip()
        if not api_key or any(c in api_key for c in "\r\n"):
            raise settings.fail("api_key_file", "a file holding the API key on one line")
        return cls(
            settings.name,
            url,
            api_key,
            server_id=server_id,
            zone=zone,
            timeout=timeout,
            ttl=ttl,
        )

    # -- Publisher --------------------------------------------------------------------------

    def read(self, owner: dns.name.Name | str) -> RRsetView:
        name = owner_name(owner)
        return self._read(self.zone_of(name), name)

    def apply(self, changes: Sequence[Change]) -> Outcome:
        warnings: list[str] = []
        for owner, owner_changes in by_owner(changes).items():
            warnings += self._apply_owner(self.zone_of(owner), owner, owner_changes)
        return Outcome(tuple(changes), tuple(warnings))

    # -- the read-modify-write loop ---------------------------------------------------------

    def _apply_owner(
        self, zone: dns.name.Name, owner: dns.name.Name, changes: Sequence[Change]
    ) -> list[str]:
        adds = {c.rdata: c.ttl for c in changes if c.action == "add"}
        removes = {c.rdata for c in changes if c.action == "remove"} - set(adds)
        current = self._read(zone, owner)
        # Every record that is not one of ours must still be there when we are done.
        theirs = set(current.records) - removes - set(adds)
        # RFC 2181 §5.2: one TTL per RRset; ours join the RRset's (as first read: a writer in
        # between may have deleted it), or start a new one with theirs.
        ttl = current.ttl if current.ttl is not None else min(adds.values(), default=0)
        warnings: list[str] = []
        for _ in range(ROUNDS):
            wanted = theirs | set(adds)
            if set(current.records) != wanted:
                self._write(zone, owner, ttl, sorted(wanted))
            current = self._read(zone, owner)
            now = set(current.records)
            lost = sorted(theirs - now)
            # A record someone added meanwhile is theirs too, and stays.
            theirs |= now - removes - set(adds)
            if not lost and set(adds) <= now and not (removes & now):
                return warnings
            warnings += [
                f"{owner} TLSA {record}: not dane-hook's, vanished while {self.name} updated "
                f"zone {zone}; put back"
                for record in lost
            ]
        raise PublishError(
            f"zone {zone} at {self.url} (PowerDNS API): the TLSA RRset at {owner} kept changing "
            f"during {ROUNDS} writes",
            transient=True,
            zone=zone.to_text(),
            server=self.url,
            hint="someone else is writing the same RRset; the next run tries again",
        )

    # -- zone discovery ---------------------------------------------------------------------

    def zone_of(self, owner: dns.name.Name) -> dns.name.Name:
        """The `zone` setting, else the longest zone of the server that holds `owner`."""
        if self.zone is not None:
            if not owner.is_subdomain(self.zone):
                raise self._failure(self.zone, f"{owner} is not in this zone", False)
            return self.zone
        listed = self._request("GET", f"/api/v1/servers/{self._quote(self.server_id)}/zones", None)
        candidates = []
        for item in listed if isinstance(listed, list) else []:
            text = item.get("name") if isinstance(item, dict) else None
            if isinstance(text, str):
                zone = dns.name.from_text(text)
                if owner.is_subdomain(zone):
                    candidates.append(zone)
        if not candidates:
            raise self._failure(None, f"no zone holding {owner} on server {self.server_id}", False)
        return max(candidates, key=len)

    # -- HTTP -------------------------------------------------------------------------------

    def _zone_path(self, zone: dns.name.Name) -> str:
        return f"/api/v1/servers/{self._quote(self.server_id)}/zones/{self._quote(zone.to_text())}"

    @staticmethod
    def _quote(text: str) -> str:
        return urllib.parse.quote(text, safe="")

    def _read(self, zone: dns.name.Name, owner: dns.name.Name) -> RRsetView:
        # rrset_name/rrset_type narrow the answer (PowerDNS 4.6+); filtered here all the same.
        query = urllib.parse.urlencode({"rrset_name": owner.to_text(), "rrset_type": "TLSA"})
        body = self._request("GET", f"{self._zone_path(zone)}?{query}", None, zone)
        rrsets = body.get("rrsets", []) if isinstance(body, dict) else []
        for rrset in rrsets:
            if not isinstance(rrset, dict) or rrset.get("type") != "TLSA":
                continue
            if dns.name.from_text(str(rrset.get("name", ""))) != owner:
                continue
            records = tuple(
                sorted(
                    tlsa_text(str(record.get("content", "")))
                    for record in rrset.get("records", [])
                    if isinstance(record, dict) and not record.get("disabled", False)
                )
            )
            ttl = rrset.get("ttl")
            if records:
                return RRsetView(owner, int(ttl) if isinstance(ttl, int) else None, records)
        return RRsetView(owner, None, ())

    def _write(
        self, zone: dns.name.Name, owner: dns.name.Name, ttl: int, records: list[str]
    ) -> None:
        rrset: dict[str, Any] = {
            "name": owner.to_text(),
            "type": "TLSA",
            "ttl": ttl,
            "changetype": "REPLACE" if records else "DELETE",
        }
        if records:
            rrset["records"] = [{"content": r, "disabled": False} for r in records]
        # An empty RRset is removed with DELETE: REPLACE with no records is the same to
        # PowerDNS, but DELETE says so. Only reached when every record left is ours to remove.
        self._request("PATCH", self._zone_path(zone), {"rrsets": [rrset]}, zone)

    def _request(
        self, method: str, path: str, payload: object, zone: dns.name.Name | None = None
    ) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("X-API-Key", self._api_key)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(50_000_000)
        except urllib.error.HTTPError as error:
            raise self._http_failure(zone, error) from None
        except TimeoutError:
            raise self._failure(zone, f"no answer within {self.timeout:g} s", True) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, TimeoutError):
                raise self._failure(zone, f"no answer within {self.timeout:g} s", True) from None
            text = reason.strerror if isinstance(reason, OSError) else str(reason)
            raise self._failure(zone, f"cannot reach it: {text}", True) from None
        except OSError as error:
            raise self._failure(zone, f"cannot reach it: {error.strerror or error}", True) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise self._failure(zone, "the answer is not JSON", False) from None

    def _http_failure(
        self, zone: dns.name.Name | None, error: urllib.error.HTTPError
    ) -> PublishError:
        detail = ""
        try:
            body = json.loads(error.read(10_000) or b"null")
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                detail = ": " + " ".join(body["error"].split())[:200]
        except (ValueError, OSError):
            pass
        meaning = {
            401: "the API key was refused",
            403: "the API key may not do this",
            404: "no such server or zone",
            422: "the change was refused",
        }.get(error.code, "")
        what = f"HTTP {error.code}" + (f" ({meaning})" if meaning else "")
        # 5xx and 429: the server could not now; 4xx: someone must change something.
        transient = error.code >= 500 or error.code == 429
        return self._failure(zone, what + detail, transient)

    def _failure(self, zone: dns.name.Name | None, reason: str, transient: bool) -> PublishError:
        where = f"zone {zone} at {self.url}" if zone is not None else f"server {self.url}"
        return PublishError(
            f"{where} (PowerDNS API, server id {self.server_id}): {reason}",
            transient=transient,
            zone=zone.to_text() if zone is not None else "",
            server=self.url,
        )
