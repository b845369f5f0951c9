"""pytest fixtures for ACME tests: Pebble over the DNS lab, real certbot, lab names to certify.

Loaded by tests/conftest.py (`pytest_plugins`). Pebble runs once per session and resolves names
through the lab's Knot primary; each test gets its own certbot directories.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.infra.certbot import Certbot, HookRecorder
from tests.infra.lab import EXAMPLE, DnsLab
from tests.infra.pebble import Pebble

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pebble(dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """Pebble on 127.0.0.1 (ACME, management and HTTP-01 ports picked at run time).

    A test may `restart()` it (new root and intermediate, accounts forgotten): read
    `intermediates()` when needed rather than keeping it from an earlier test.
    """
    server = Pebble(tmp_path_factory.mktemp("pebble"), dns_lab.primary_upstream)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def certbot(pebble: Pebble, tmp_path: Path) -> Certbot:
    """certbot with fresh config, work and logs directories under tmp_path/certbot (Pebble)."""
    if not pebble.running:
        pebble.start()  # an earlier test stopped it
    base = tmp_path / "certbot"
    return Certbot(
        config_dir=base / "config",
        work_dir=base / "work",
        logs_dir=base / "logs",
        server=pebble.directory,
        ca_bundle=pebble.ca_bundle,
        http_port=pebble.http_port,
    )


@pytest.fixture
def acme_domain(dns_lab: DnsLab, request: pytest.FixtureRequest) -> Callable[..., str]:
    """`acme_domain(zone="example.test.") -> "slug-N.example.test"`: a name no test used before,
    with an A record 127.0.0.1 in the lab zone so that Pebble reaches certbot's HTTP-01 server.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40] or "t"

    def domain(zone: str = EXAMPLE) -> str:
        name = f"{slug}-{next(_counter)}.{zone}"
        dns_lab.update(name, add=[(60, "A", "127.0.0.1")])
        return name.rstrip(".")

    return domain


@pytest.fixture
def hook_recorder(tmp_path: Path) -> Callable[[str], HookRecorder]:
    """`hook_recorder("deploy") -> HookRecorder`: a hook script that logs each run's variables."""

    def recorder(name: str = "hook") -> HookRecorder:
        return HookRecorder(tmp_path / "hooks", name)

    return recorder
