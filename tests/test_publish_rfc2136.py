"""RFC 2136 + TSIG publishing against the lab's Knot primary, with a key limited to TLSA updates.

Key files come from the real tools: Knot's `keymgr -t` and BIND's `tsig-keygen`.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.name
import dns.rdatatype
import pytest

from dane_hook.dns.publish import (
    Change,
    PublishError,
    Rfc2136Publisher,
    TsigKey,
    load_tsig_key,
    publisher_from_table,
)
from dane_hook.errors import BadInput
from tests.infra.lab import EXAMPLE, PRIMARY_ADDRESS, DnsLab
from tests.infra.procs import free_port
from tests.infra.wire import ask

FOREIGN = "3 1 1 " + "f0" * 32
OURS = ["3 1 1 " + "a1" * 32, "2 1 1 " + "b2" * 32]


def _tool_key(tmp: Path, argv: list[str], file_name: str) -> Path:
    """A key file written by a real tool, readable by its owner only (as one must keep it)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True)
    path = tmp / file_name
    path.write_text(done.stdout)
    path.chmod(0o600)
    return path


def _secret_b64(key: TsigKey) -> str:
    return base64.b64encode(key.secret).decode()


@pytest.fixture(scope="module")
def keys(dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Key files: `knot` (keymgr) and `bind` (tsig-keygen, when installed), both TLSA-only."""
    tmp = tmp_path_factory.mktemp("tsig")
    files = {"knot": _tool_key(tmp, ["keymgr", "-t", "tlsa-knot.", "hmac-sha256"], "knot.key")}
    if shutil.which("tsig-keygen"):
        files["bind"] = _tool_key(
            tmp, ["tsig-keygen", "-a", "hmac-sha512", "tlsa-bind.example."], "bind.key"
        )
    for path in files.values():
        key = load_tsig_key(path)
        algorithm = key.algorithm.to_text(omit_final_dot=True)
        dns_lab.primary.allow_tlsa_updates(key.name.to_text(), algorithm, _secret_b64(key))
    # A second keymgr run for the same name: a real key file with another secret.
    files["wrong-secret"] = _tool_key(
        tmp, ["keymgr", "-t", "tlsa-knot.", "hmac-sha256"], "wrong.key"
    )
    files["unknown"] = _tool_key(tmp, ["keymgr", "-t", "nobody.", "hmac-sha256"], "unknown.key")
    return files


def _publisher(dns_lab: DnsLab, key_file: Path, **extra: Any) -> Rfc2136Publisher:
    table = {"type": "rfc2136", "key_file": str(key_file), "server": PRIMARY_ADDRESS}
    table |= {"port": dns_lab.auth_port, "timeout": 3} | extra
    publisher = publisher_from_table("lab", table)
    assert isinstance(publisher, Rfc2136Publisher)
    return publisher


def _validated(dns_lab: DnsLab, owner: str) -> list[str]:
    """The TLSA RRset as the lab's validating Unbound returns it (AD required)."""
    assert dns_lab.resolver is not None
    dns_lab.flush(dns_lab.zone_of(owner))
    reply = ask(dns_lab.resolver.address, dns_lab.resolver.port, owner, "TLSA", recursion=True)
    assert reply is not None and reply.flags & dns.flags.AD
    return sorted(
        rdata.to_text()
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.TLSA
        for rdata in rrset
    )


def _no_secret(key_file: Path, *texts: str) -> None:
    key = load_tsig_key(key_file)
    for text in texts:
        assert _secret_b64(key) not in text
        assert key.secret.decode("latin-1") not in text


def test_key_files_of_keymgr_and_tsig_keygen_parse(keys: dict[str, Path]) -> None:
    knot = load_tsig_key(keys["knot"])
    assert knot.name == dns.name.from_text("tlsa-knot.")
    assert knot.algorithm == dns.name.from_text("hmac-sha256")
    # keymgr also writes the key as a comment line `# hmac-sha256:NAME:SECRET`.
    assert keys["knot"].read_text().splitlines()[0].endswith(":" + _secret_b64(knot))
    assert len(knot.secret) == 32
    assert "secret" not in repr(knot) or _secret_b64(knot) not in repr(knot)
    if "bind" not in keys:
        pytest.skip("tsig-keygen (Debian bind9) not installed")
    bind = load_tsig_key(keys["bind"])
    assert bind.name == dns.name.from_text("tlsa-bind.example.")
    assert bind.algorithm == dns.name.from_text("hmac-sha512")
    assert f'secret "{_secret_b64(bind)}";' in keys["bind"].read_text()


@pytest.mark.parametrize("kind", ["knot", "bind"])
def test_add_and_remove_single_records_beside_a_foreign_one(
    kind: str, dns_lab: DnsLab, keys: dict[str, Path], fresh_owner: Callable[..., str]
) -> None:
    if kind not in keys:
        pytest.skip("tsig-keygen (Debian bind9) not installed")
    owner = fresh_owner()
    dns_lab.add_records(owner, 300, [FOREIGN])  # someone else's, with the lab's full key
    publisher = _publisher(dns_lab, keys[kind])

    publisher.apply([Change.add(owner, 60, record) for record in OURS])
    view = publisher.read(owner)
    assert view.records == tuple(sorted([FOREIGN, *OURS]))
    assert view.ttl == 300  # RFC 2181 §5.2: ours joined the RRset with its TTL, not 60
    assert _validated(dns_lab, owner) == sorted([FOREIGN, *OURS])

    publisher.apply([Change.remove(owner, OURS[0])])
    assert publisher.read(owner).records == tuple(sorted([FOREIGN, OURS[1]]))
    publisher.apply([Change.remove(owner, OURS[1]), Change.remove(owner, OURS[1])])
    assert publisher.read(owner).records == (FOREIGN,)
    assert _validated(dns_lab, owner) == [FOREIGN]


def test_repeating_changes_is_harmless(
    dns_lab: DnsLab, keys: dict[str, Path], fresh_owner: Callable[..., str]
) -> None:
    """A run killed after the update and before its ledger write repeats it: no duplicates."""
    owner = fresh_owner()
    publisher = _publisher(dns_lab, keys["knot"])
    for _ in range(2):
        publisher.apply([Change.add(owner, 60, OURS[0])])
    view = publisher.read(owner)
    assert view.records == (OURS[0],) and view.ttl == 60
    for _ in range(2):
        publisher.apply([Change.remove(owner, OURS[0])])
    assert publisher.read(owner).ttl is None


def test_default_server_is_the_primary_named_by_the_soa(
    dns_lab: DnsLab, keys: dict[str, Path], fresh_owner: Callable[..., str]
) -> None:
    """No `server`: zone from the resolver, primary from its SOA MNAME (ns1 -> 127.0.0.2)."""
    assert dns_lab.resolver is not None
    owner = fresh_owner()
    table = {
        "type": "rfc2136",
        "key_file": str(keys["knot"]),
        "port": dns_lab.auth_port,
        "resolver": dns_lab.resolver.address,
        "resolver_port": dns_lab.resolver.port,
        "timeout": 3,
    }
    publisher = publisher_from_table("soa", table)
    assert isinstance(publisher, Rfc2136Publisher)
    publisher.apply([Change.add(owner, 60, OURS[0])])
    assert publisher.zone_of(dns.name.from_text(owner)) == dns.name.from_text(EXAMPLE)
    assert _validated(dns_lab, owner) == [OURS[0]]
    publisher.apply([Change.remove(owner, OURS[0])])


def test_tlsa_only_key_is_denied_another_type(
    dns_lab: DnsLab, keys: dict[str, Path], fresh_owner: Callable[..., str]
) -> None:
    publisher = _publisher(dns_lab, keys["knot"])
    zone = dns.name.from_text(EXAMPLE)
    update = publisher.new_update(zone)
    update.add(fresh_owner(), 60, "A", "127.0.0.9")
    with pytest.raises(PublishError) as caught:
        publisher.send(zone, update)
    text = caught.value.diagnostics()
    # Knot 3.2 answers an update its ACL denies to a known key with NOTAUTH + TSIG BADKEY
    # (BIND would say REFUSED); either way one line that says the key may not do this.
    assert "BADKEY" in text and "does not allow it this update" in text and "\n" not in text
    assert f"zone {EXAMPLE}" in text and "tlsa-knot." in text
    assert f"{PRIMARY_ADDRESS}@{dns_lab.auth_port}" in text
    assert caught.value.transient is False
    _no_secret(keys["knot"], text)


@pytest.mark.parametrize(("key", "expected"), [("wrong-secret", "BADSIG"), ("unknown", "BADKEY")])
def test_wrong_key_is_one_line_without_the_secret(
    key: str,
    expected: str,
    dns_lab: DnsLab,
    keys: dict[str, Path],
    fresh_owner: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    owner = fresh_owner()
    publisher = _publisher(dns_lab, keys[key])
    with pytest.raises(PublishError) as caught:
        publisher.apply([Change.add(owner, 60, OURS[0])])
    error = caught.value
    text = error.diagnostics()
    assert expected in text and "\n" not in text, text
    assert error.transient is False
    assert error.zone == EXAMPLE and error.key_name == load_tsig_key(keys[key]).name.to_text()
    out, err = capfd.readouterr()
    _no_secret(keys[key], text, repr(error), str(error.args), out, err)
    assert publisher.read(owner).ttl is None  # nothing was added


@pytest.fixture
def silent_tcp() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        yield int(hole.getsockname()[1])


@pytest.mark.parametrize("server", ["down", "silent"])
def test_unreachable_server_is_a_transient_error(
    server: str, keys: dict[str, Path], silent_tcp: int
) -> None:
    port = free_port() if server == "down" else silent_tcp
    publisher = Rfc2136Publisher(
        "gone",
        load_tsig_key(keys["knot"]),
        server="127.0.0.1",
        port=port,
        zone=dns.name.from_text(EXAMPLE),
        timeout=0.5,
    )
    with pytest.raises(PublishError) as caught:
        publisher.apply([Change.add("_25._tcp.mail." + EXAMPLE, 60, OURS[0])])
    text = caught.value.diagnostics()
    assert caught.value.transient is True
    assert f"zone {EXAMPLE} at 127.0.0.1@{port} (key tlsa-knot.)" in text and "\n" not in text
    assert ("within 0.5 s" in text) == (server == "silent"), text


def test_key_file_others_can_read_is_refused(keys: dict[str, Path], tmp_path: Path) -> None:
    exposed = tmp_path / "exposed.key"
    exposed.write_bytes(keys["knot"].read_bytes())
    exposed.chmod(0o644)
    with pytest.raises(BadInput) as caught:
        publisher_from_table("lab", {"type": "rfc2136", "key_file": str(exposed)})
    text = caught.value.diagnostics()
    assert "permissions 0644 are too open" in text and "chmod 600" in text and "\n" not in text
    _no_secret(keys["knot"], text)


def test_relative_key_file_is_found_beside_the_config(keys: dict[str, Path]) -> None:
    config = keys["knot"].parent / "config.toml"
    publisher = publisher_from_table(
        "lab", {"type": "rfc2136", "key_file": keys["knot"].name}, config
    )
    assert isinstance(publisher, Rfc2136Publisher)
    assert publisher.key.name == dns.name.from_text("tlsa-knot.")


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"port": True}, "port"),
        ({"port": "53"}, "port"),
        ({"port": 70000}, "port"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": False}, "timeout"),
        ({"ttl": 1.5}, "ttl"),
        ({"resolver": "ns.example."}, "resolver"),
        ({"server": ""}, "server"),
        ({"sever": "127.0.0.1"}, "sever"),
        ({"key_file": None}, "key_file"),
        ({"type": "nsupdate"}, "type"),
    ],
    ids=lambda value: str(value),
)
def test_bad_settings_name_the_key(
    table: dict[str, object], key: str, keys: dict[str, Path]
) -> None:
    full: dict[str, object] = {"type": "rfc2136", "key_file": str(keys["knot"]), **table}
    full = {k: v for k, v in full.items() if v is not None}
    with pytest.raises(BadInput) as caught:
        publisher_from_table("primary", full, Path("/etc/dane-hook/config.toml"))
    assert f"config.toml: publisher.primary.{key}: " in caught.value.diagnostics()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('key "k" {\n  algorithm hmac-sha256;\n};\n', "line 1: key k: expected a secret"),
        ('key "k" { algorithm hmac-sha256; secret "@@@"; };', "the secret is not base64"),
        ('key "k" { algorithm rot13; secret "AAAA"; };', "unknown algorithm"),
        ("key:\n  - id: k\n    secret: AAAA\n", "line 2: key k: expected an algorithm"),
        ("server:\n  listen: 127.0.0.1\n", "no TSIG key found"),
    ],
)
def test_bad_key_files_say_line_and_what_is_missing(
    text: str, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(BadInput) as caught:
        load_tsig_key(path)
    assert expected in caught.value.diagnostics()
    assert "@@@" not in caught.value.diagnostics()
