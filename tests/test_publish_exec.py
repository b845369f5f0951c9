"""The exec publisher: a shell script that calls knsupdate against the lab's Knot primary."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import dns.name
import pytest

from dane_hook.dns.publish import (
    Change,
    CommandPublisher,
    PublishError,
    load_tsig_key,
    publisher_from_table,
)
from dane_hook.errors import BadInput
from tests.infra.lab import EXAMPLE, PRIMARY_ADDRESS, DnsLab
from tests.infra.wire import ask

FOREIGN = "3 1 1 " + "f1" * 32
OURS = "3 1 1 " + "c3" * 32

# What an administrator would write: one knsupdate run per change, exit status = knsupdate's.
SCRIPT = """#!/bin/sh
set -eu
server=$1 port=$2 key=$3
case "$DANE_HOOK_ACTION" in
  add)    change="update add $DANE_HOOK_OWNER $DANE_HOOK_TTL TLSA $DANE_HOOK_RDATA" ;;
  remove) change="update delete $DANE_HOOK_OWNER TLSA $DANE_HOOK_RDATA" ;;
  *)      echo "unknown action" >&2; exit 64 ;;
esac
knsupdate -t 3 -r 0 -k "$key" <<EOF
server $server $port
zone $DANE_HOOK_ZONE
$change
send
EOF
"""


@pytest.fixture(scope="module")
def knsupdate_key(dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keymgr key, TLSA-only in Knot, in the `alg:name:secret` form knsupdate -k reads."""
    tmp = tmp_path_factory.mktemp("exec")
    done = subprocess.run(
        ["keymgr", "-t", "tlsa-exec.", "hmac-sha256"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    yaml = tmp / "knot.key"
    yaml.write_text(done.stdout)
    yaml.chmod(0o600)
    key = load_tsig_key(yaml)
    secret = base64.b64encode(key.secret).decode()
    dns_lab.primary.allow_tlsa_updates("tlsa-exec.", "hmac-sha256", secret)
    line = tmp / "knsupdate.key"
    line.touch(0o600)
    line.write_text(f"hmac-sha256:tlsa-exec.:{secret}\n")
    return line


def _script(tmp_path: Path, text: str = SCRIPT) -> Path:
    path = tmp_path / "publish-tlsa"
    path.write_text(text)
    path.chmod(0o700)
    return path


def _records(dns_lab: DnsLab, owner: str) -> list[str]:
    reply = ask(PRIMARY_ADDRESS, dns_lab.auth_port, owner, "TLSA", dnssec=False)
    assert reply is not None
    return sorted(rdata.to_text() for rrset in reply.answer for rdata in rrset)


def test_knsupdate_script_adds_and_removes_one_record(
    dns_lab: DnsLab, knsupdate_key: Path, tmp_path: Path, fresh_owner: Callable[..., str]
) -> None:
    owner = fresh_owner()
    dns_lab.add_records(owner, 300, [FOREIGN])
    script = _script(tmp_path)
    publisher = publisher_from_table(
        "script",
        {
            "type": "exec",
            "command": [str(script), PRIMARY_ADDRESS, str(dns_lab.auth_port), str(knsupdate_key)],
            "zone": EXAMPLE,
            "timeout": 20,
        },
    )
    assert isinstance(publisher, CommandPublisher)
    assert publisher.read(owner) is None  # it cannot read: ask the authoritative servers

    publisher.apply([Change.add(owner, 300, OURS)])
    assert _records(dns_lab, owner) == sorted([FOREIGN, OURS])
    publisher.apply([Change.remove(owner, OURS)])
    assert _records(dns_lab, owner) == [FOREIGN]


def test_knsupdate_failure_is_reported_with_its_status(
    dns_lab: DnsLab, knsupdate_key: Path, tmp_path: Path, fresh_owner: Callable[..., str]
) -> None:
    """knsupdate with a key Knot does not know fails; its status and last words are reported."""
    owner = fresh_owner()
    wrong = tmp_path / "wrong.key"
    wrong.write_text("hmac-sha256:nobody.:" + base64.b64encode(os.urandom(32)).decode() + "\n")
    script = _script(tmp_path)
    command = [str(script), PRIMARY_ADDRESS, str(dns_lab.auth_port), str(wrong)]
    publisher = CommandPublisher("script", command, zone=dns.name.from_text(EXAMPLE), timeout=20)
    with pytest.raises(PublishError) as caught:
        publisher.apply([Change.add(owner, 60, OURS)])
    text = caught.value.diagnostics()
    assert "exited with status 1" in text and "\n" not in text, text
    assert f"publisher script (exec) in zone {EXAMPLE}: add {owner} TLSA {OURS}" in text
    assert caught.value.transient is False
    assert _records(dns_lab, owner) == []


def test_environment_and_stderr_summary(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    script = _script(
        tmp_path,
        f"""#!/bin/sh
env | grep ^DANE_HOOK_ | sort > {seen}
echo "first line" >&2
echo "token c2VjcmV0U2VjcmV0U2VjcmV0MTIzNDU2Nzg5 refused by provider" >&2
exit 7
""",
    )
    publisher = CommandPublisher("script", [str(script)], environment={"PATH": "/usr/bin:/bin"})
    owner = "_25._tcp.mx.example.net."
    with pytest.raises(PublishError) as caught:
        publisher.apply([Change.add(owner, 120, OURS)])
    assert seen.read_text().splitlines() == [
        "DANE_HOOK_ACTION=add",
        f"DANE_HOOK_OWNER={owner}",
        f"DANE_HOOK_RDATA={OURS}",
        "DANE_HOOK_TTL=120",
    ]
    text = caught.value.diagnostics()
    assert text.endswith("exited with status 7: token […] refused by provider"), text


def test_timeout_kills_the_whole_command(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = _script(tmp_path, f"#!/bin/sh\nsleep 30 &\necho $$ $! > {pids}\nwait\n")
    publisher = CommandPublisher("slow", [str(script)], timeout=0.5)
    began = time.monotonic()
    with pytest.raises(PublishError) as caught:
        publisher.apply([Change.remove("_25._tcp.mx.example.net.", OURS)])
    assert time.monotonic() - began < 5
    assert caught.value.transient is True
    assert "did not finish within 0.5 s (killed)" in caught.value.diagnostics()
    for pid in pids.read_text().split():
        # SIGKILL is delivered at once but a process takes a moment to exit: bounded wait.
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
            assert time.monotonic() < deadline, f"process {pid} still runs after the kill"
            time.sleep(0.05)


def _state(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "Z"


@pytest.mark.parametrize(
    "table",
    [{}, {"command": ""}, {"command": [1]}, {"command": []}, {"command": ["x"], "timeout": True}],
    ids=str,
)
def test_bad_exec_settings_name_the_key(table: dict[str, object]) -> None:
    with pytest.raises(BadInput) as caught:
        publisher_from_table("script", {"type": "exec", **table})
    assert "publisher.script." in caught.value.diagnostics()


def test_the_readme_recipe_is_the_tested_script() -> None:
    """README, Publishing: the exec recipe it calls tested is SCRIPT, word for word; the
    provider recipe is marked untested."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Publishing") : readme.index("## Exit status")]
    assert f"```sh\n{SCRIPT}```" in section
    assert "UNTESTED" in section
