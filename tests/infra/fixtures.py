"""pytest fixtures over the DNS lab; loaded by tests/conftest.py (`pytest_plugins`).

Each server is started once per session, on loopback ports picked at run time, with its files
under a pytest temporary directory, and stopped by its PID when the session ends.
"""

from __future__ import annotations

import itertools
import re
import shutil
import socket
from collections.abc import Callable, Iterator

import pytest

from dane_hook.dns.lookup import Resolver
from tests.infra.lab import EXAMPLE, DnsLab
from tests.infra.procs import LabError, free_port

_REQUIRED_TOOLS = ("knotd", "knotc", "unbound", "unbound-control", "unbound-checkconf")
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def dns_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsLab]:
    """Knot primary (127.0.0.2) + secondary (127.0.0.3) on `auth_port`, validating unbound."""
    missing = [tool for tool in _REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise LabError(
            f"{', '.join(missing)} not found: install Debian's knot and unbound (tests/run.sh does)"
        )
    lab = DnsLab(tmp_path_factory.mktemp("dns-lab"))
    lab.start()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="session")
def lab_resolver(dns_lab: DnsLab) -> Resolver:
    """The validating resolver: trust anchor = DS of `test.`, caches flushed on every update."""
    assert dns_lab.resolver is not None
    return Resolver(dns_lab.resolver.address, dns_lab.resolver.port)


@pytest.fixture(scope="session")
def tamper_resolver(dns_lab: DnsLab) -> Resolver:
    """A validating resolver whose every upstream answer has its TLSA rdata forged."""
    _, unbound = dns_lab.tamper_resolver()
    return Resolver(unbound.address, unbound.port)


@pytest.fixture(scope="session")
def plain_resolver(dns_lab: DnsLab) -> Resolver:
    """A resolver that does not validate (no trust anchor, no validator): never sets AD."""
    unbound = dns_lab.plain_resolver()
    return Resolver(unbound.address, unbound.port)


@pytest.fixture(scope="session")
def auth_port(dns_lab: DnsLab) -> int:
    """The port both authoritative servers listen on (on 127.0.0.2 and 127.0.0.3)."""
    return dns_lab.auth_port


@pytest.fixture(scope="session")
def dead_resolver() -> Resolver:
    """127.0.0.1 on a port nobody listens on: queries are refused (ICMP port unreachable)."""
    return Resolver("127.0.0.1", free_port())


@pytest.fixture(scope="session")
def silent_resolver() -> Iterator[Resolver]:
    """A UDP socket that reads queries and never answers: every query times out."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        yield Resolver("127.0.0.1", int(hole.getsockname()[1]))


@pytest.fixture(scope="session")
def add_records(dns_lab: DnsLab) -> Callable[[str, int, list[str]], int]:
    """`add_records(owner, ttl, ["3 1 1 hex", ...]) -> serial`: RFC 2136 + TSIG, then flush."""
    return dns_lab.add_records


@pytest.fixture(scope="session")
def delete_records(dns_lab: DnsLab) -> Callable[..., int]:
    """`delete_records(owner, records=None) -> serial`: None deletes the whole TLSA RRset."""
    return dns_lab.delete_records


@pytest.fixture
def fresh_owner(request: pytest.FixtureRequest) -> Callable[..., str]:
    """`fresh_owner(zone="example.test.", port=25)`: a TLSA owner name no test used before."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40] or "t"

    def owner(zone: str = EXAMPLE, port: int = 25) -> str:
        return f"_{port}._tcp.{slug}-{next(_counter)}.{zone}"

    return owner
