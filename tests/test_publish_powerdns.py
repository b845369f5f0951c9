"""The PowerDNS publisher against a real pdns_server whose signed zone the lab's Unbound validates.

Races are real: a loopback HTTP proxy in front of the API makes another client's write land
just before or just after the publisher's PATCH.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.flags
import dns.rdatatype
import pytest

from dane_hook.dns.publish import (
    Change,
    PowerDnsPublisher,
    PublishError,
    publisher_from_table,
)
from dane_hook.errors import BadInput
from tests.infra.lab import DnsLab
from tests.infra.pdns import PowerDns, missing
from tests.infra.procs import LabError, free_port
from tests.infra.wire import ask

ZONE = "pdns.test."
FOREIGN = "3 1 1 " + "e4" * 32
OURS = ["3 1 1 " + "d5" * 32, "2 1 1 " + "c6" * 32]


@pytest.fixture(scope="module")
def pdns(dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PowerDns]:
    why = missing()
    if why is not None:
        raise LabError(why)
    server = PowerDns(tmp_path_factory.mktemp("pdns"), ZONE)
    server.pdnsutil("set-meta", ZONE, "API-RECTIFY", "1")  # NSEC order kept on API writes
    server.start()
    try:
        server.delegate(dns_lab)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def key_file(pdns: PowerDns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdns-key") / "api.key"
    path.touch(0o600)
    path.write_text(pdns.api_key + "\n")
    return path


def _publisher(url: str, key_file: Path, **extra: object) -> PowerDnsPublisher:
    table = {"type": "powerdns", "url": url, "api_key_file": str(key_file), "timeout": 5}
    publisher = publisher_from_table("pdns", table | extra)
    assert isinstance(publisher, PowerDnsPublisher)
    return publisher


def _owner(fresh_owner: Callable[..., str]) -> str:
    return str(fresh_owner(zone=ZONE))


def _validated(dns_lab: DnsLab, owner: str) -> list[str]:
    """The TLSA RRset from the lab's validating Unbound, which must set AD."""
    assert dns_lab.resolver is not None
    dns_lab.flush(ZONE)
    reply = ask(dns_lab.resolver.address, dns_lab.resolver.port, owner, "TLSA", recursion=True)
    assert reply is not None and reply.flags & dns.flags.AD, reply
    return sorted(
        rdata.to_text()
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.TLSA
        for rdata in rrset
    )


def test_add_and_remove_beside_a_foreign_record(
    pdns: PowerDns, key_file: Path, dns_lab: DnsLab, fresh_owner: Callable[..., str]
) -> None:
    owner = _owner(fresh_owner)
    pdns.replace_tlsa(owner, 120, [FOREIGN])
    publisher = _publisher(pdns.url, key_file)  # no zone: found in the server's zone list

    outcome = publisher.apply([Change.add(owner, 60, record) for record in OURS])
    assert outcome.warnings == ()
    assert pdns.tlsa(owner) == (120, sorted([FOREIGN, *OURS]))  # the RRset's TTL is kept
    assert publisher.read(owner).records == tuple(sorted([FOREIGN, *OURS]))
    assert _validated(dns_lab, owner) == sorted([FOREIGN, *OURS])

    publisher.apply([Change.remove(owner, OURS[0])])
    assert pdns.tlsa(owner) == (120, sorted([FOREIGN, OURS[1]]))
    publisher.apply([Change.remove(owner, OURS[1])])
    assert pdns.tlsa(owner) == (120, [FOREIGN])
    assert _validated(dns_lab, owner) == [FOREIGN]


def test_new_rrset_and_its_last_record(
    pdns: PowerDns, key_file: Path, fresh_owner: Callable[..., str]
) -> None:
    owner = _owner(fresh_owner)
    publisher = _publisher(pdns.url + "/api/v1", key_file, zone=ZONE)
    for _ in range(2):  # repeated: still one record
        publisher.apply([Change.add(owner, 60, OURS[0])])
    assert pdns.tlsa(owner) == (60, [OURS[0]])
    for _ in range(2):
        publisher.apply([Change.remove(owner, OURS[0])])
    assert pdns.tlsa(owner) == (None, [])


class RacingProxy:
    """HTTP proxy to the API that runs `race` once, just before or after forwarding a PATCH."""

    def __init__(self, upstream: str, race: Callable[[], None], after_patch: bool) -> None:
        self.raced = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                racing = self.command == "PATCH" and proxy.raced == 0
                if racing and not after_patch:
                    proxy.raced += 1
                    race()
                request = urllib.request.Request(upstream + self.path, body, method=self.command)
                for name in ("X-API-Key", "Content-Type", "Accept"):
                    if name in self.headers:
                        request.add_header(name, self.headers[name])
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        status, data = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, data = error.code, error.read()
                if racing and after_patch:
                    proxy.raced += 1
                    race()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RacingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def test_foreign_record_removed_right_after_our_write_is_put_back(
    pdns: PowerDns, key_file: Path, dns_lab: DnsLab, fresh_owner: Callable[..., str]
) -> None:
    """Another client's stale read-modify-write lands between our PATCH and our check."""
    owner = _owner(fresh_owner)
    pdns.replace_tlsa(owner, 120, [FOREIGN])
    # The other client read the RRset before our write and writes it back without FOREIGN.
    with RacingProxy(pdns.url, lambda: pdns.replace_tlsa(owner, 120, []), after_patch=True) as px:
        outcome = _publisher(px.url, key_file).apply([Change.add(owner, 60, OURS[0])])
    assert px.raced == 1
    assert pdns.tlsa(owner) == (120, sorted([FOREIGN, OURS[0]]))
    assert len(outcome.warnings) == 1
    assert FOREIGN in outcome.warnings[0] and "put back" in outcome.warnings[0]
    assert _validated(dns_lab, owner) == sorted([FOREIGN, OURS[0]])


def test_our_record_lost_to_a_concurrent_writer_is_written_again(
    pdns: PowerDns, key_file: Path, fresh_owner: Callable[..., str]
) -> None:
    owner = _owner(fresh_owner)
    pdns.replace_tlsa(owner, 120, [FOREIGN])
    with RacingProxy(
        pdns.url, lambda: pdns.replace_tlsa(owner, 120, [FOREIGN]), after_patch=True
    ) as px:
        outcome = _publisher(px.url, key_file).apply([Change.add(owner, 60, OURS[1])])
    assert pdns.tlsa(owner) == (120, sorted([FOREIGN, OURS[1]]))
    assert outcome.warnings == ()


def test_foreign_record_removed_between_read_and_write_survives(
    pdns: PowerDns, key_file: Path, fresh_owner: Callable[..., str]
) -> None:
    """PATCH replaces the RRset with what we read: a removal that came in between is undone."""
    owner = _owner(fresh_owner)
    pdns.replace_tlsa(owner, 120, [FOREIGN])
    with RacingProxy(pdns.url, lambda: pdns.replace_tlsa(owner, 120, []), after_patch=False) as px:
        _publisher(px.url, key_file).apply([Change.add(owner, 60, OURS[0])])
    assert px.raced == 1
    assert pdns.tlsa(owner) == (120, sorted([FOREIGN, OURS[0]]))


def test_wrong_api_key_is_one_line_without_the_key(
    pdns: PowerDns, tmp_path: Path, fresh_owner: Callable[..., str]
) -> None:
    wrong = tmp_path / "wrong.key"
    wrong.touch(0o600)
    wrong.write_text("not-the-key-" + pdns.api_key[::-1] + "\n")
    publisher = _publisher(pdns.url, wrong, zone=ZONE)
    with pytest.raises(PublishError) as caught:
        publisher.apply([Change.add(_owner(fresh_owner), 60, OURS[0])])
    text = caught.value.diagnostics()
    assert "HTTP 401 (the API key was refused)" in text and f"zone {ZONE}" in text
    assert "\n" not in text and caught.value.transient is False
    assert pdns.api_key[::-1] not in text and pdns.api_key not in text
    assert pdns.api_key not in repr(publisher)


def test_api_down_is_a_transient_error(key_file: Path) -> None:
    publisher = _publisher(f"http://127.0.0.1:{free_port()}", key_file, zone=ZONE, timeout=1)
    with pytest.raises(PublishError) as caught:
        publisher.apply([Change.add("_25._tcp.mx." + ZONE, 60, OURS[0])])
    assert caught.value.transient is True
    assert "cannot reach it" in caught.value.diagnostics()


def test_api_key_file_others_can_read_is_refused(pdns: PowerDns, tmp_path: Path) -> None:
    exposed = tmp_path / "api.key"
    exposed.write_text(pdns.api_key)
    exposed.chmod(0o640)
    with pytest.raises(BadInput) as caught:
        _publisher(pdns.url, exposed)
    text = caught.value.diagnostics()
    assert "permissions 0640 are too open" in text and pdns.api_key not in text


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"url": "ftp://127.0.0.1/"}, "url"),
        ({"server_id": 5}, "server_id"),
        ({"timeout": "10"}, "timeout"),
        ({"zone": ""}, "zone"),
        ({"api_key": "inline"}, "api_key"),
    ],
    ids=str,
)
def test_bad_powerdns_settings_name_the_key(
    extra: dict[str, object], key: str, key_file: Path
) -> None:
    with pytest.raises(BadInput) as caught:
        table = {"type": "powerdns", "url": "http://127.0.0.1:8081", "api_key_file": str(key_file)}
        publisher_from_table("pdns", table | extra)
    assert f"publisher.pdns.{key}: " in caught.value.diagnostics()
