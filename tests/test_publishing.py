"""publish_due and the timer against the lab's Knot, through RFC 2136 + a TLSA-only TSIG key."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dane_hook.config import Config, LineageConfig
from dane_hook.dns.lookup import Resolver
from dane_hook.dns.publish import load_tsig_key
from dane_hook.rollover.ledger import load_ledger
from dane_hook.rollover.observe import Settings
from dane_hook.rollover.promotion import Action, Context, consider
from dane_hook.rollover.publishing import publish_due, timer_run
from dane_hook.rollover.served_view import ServedView
from dane_hook.rollover.state import Enrollment, StateStore
from tests.infra.lab import PRIMARY_ADDRESS, DnsLab
from tests.infra.procs import free_port
from tests.test_publish_rfc2136 import _validated
from tests.test_serving import files_for, leaf_record

pytestmark = pytest.mark.slow

FOREIGN = "3 1 1 " + "fe" * 32
TTL = 2


@pytest.fixture(scope="module")
def tlsa_key(dns_lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tsig-publishing")
    done = subprocess.run(
        ["keymgr", "-t", "tlsa-publishing.", "hmac-sha256"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    path = tmp / "tlsa.key"
    path.write_text(done.stdout)
    path.chmod(0o600)
    key = load_tsig_key(path)
    secret = base64.b64encode(key.secret).decode()
    dns_lab.primary.allow_tlsa_updates(key.name.to_text(), "hmac-sha256", secret)
    return path


def _config(tmp: Path, dns_lab: DnsLab, key: Path, **lineage: object) -> Config:
    publisher = {
        "type": "rfc2136",
        "key_file": str(key),
        "server": PRIMARY_ADDRESS,
        "port": dns_lab.auth_port,
        "timeout": 2,
    }
    return Config(
        state_dir=tmp / "state",
        lineages={"mail": LineageConfig(publish="lab", **lineage)},  # type: ignore[arg-type]
        publishers={"lab": publisher},
    )


def _context(config: Config, resolver: Resolver, auth_port: int) -> Context:
    return Context(config, Settings(resolver, 1.0, 2, auth_port), datetime.now(timezone.utc))


def _wait(what: str, test: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not test():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_held_chain_is_published_promoted_and_the_old_record_retired(
    tmp_path: Path,
    dns_lab: DnsLab,
    tlsa_key: Path,
    lab_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
) -> None:
    owner = fresh_owner()
    config = _config(tmp_path, dns_lab, tlsa_key, adopt=True, endpoints=(owner,))
    old, new = files_for(owner, "pub old", 60), files_for(owner, "pub new", 90)
    view = ServedView(tmp_path / "served")
    view.install(old)
    dns_lab.add_records(owner, TTL, [leaf_record(old), FOREIGN])
    store = StateStore(config.state_dir)
    with store.locked() as state:
        state.enrolled["mail"] = Enrollment("certbot", str(view.root), (owner,))
        context = _context(config, lab_resolver, auth_port)
        held = consider(
            "mail", new, enrollment=state.enrolled["mail"], context=context, state=state
        )
        assert held.action == Action.HELD
        ledger = load_ledger(config.state_dir)
        dry = publish_due("mail", context=context, state=state, ledger=ledger, dry_run=True)
        assert dry is not None and [str(c) for c in dry.changes] == [
            f"+ {owner} TLSA {leaf_record(new)}"
        ]
        assert _validated(dns_lab, owner) == sorted([leaf_record(old), FOREIGN])  # sent nothing
        report = publish_due("mail", context=context, state=state, ledger=ledger)
        assert report is not None and not report.failed and len(report.changes) == 1
    dns_lab.flush()
    assert _validated(dns_lab, owner) == sorted([leaf_record(old), leaf_record(new), FOREIGN])
    ledger = load_ledger(config.state_dir)
    entries = {e.record: e for e in ledger.of("mail")}
    assert entries[leaf_record(old)].adopted and entries[leaf_record(new)].owned
    assert all(e.pending is None for e in entries.values())

    def timer() -> bool:
        # Knot NOTIFYs its secondary about a second after an update: pull at once instead.
        dns_lab.secondary.refresh(dns_lab.zone_of(owner))
        dns_lab.wait_secondary_synced(dns_lab.zone_of(owner))
        with store.locked() as state:
            run = timer_run(_context(config, lab_resolver, auth_port), state)
        assert not any(p.failed for p in run.publications), run.publications
        dns_lab.flush()
        return view.read_current() == new and _validated(dns_lab, owner) == sorted(
            [leaf_record(new), FOREIGN]
        )

    # 2 x TTL to promote, 2 x TTL more to retire; a few timer periods of slack.
    _wait("promotion and retirement", timer, 30)
    assert view.read_current() == new
    # The foreign record is reported, never removed; our old one is history.
    entries = {e.record: e for e in load_ledger(config.state_dir).of("mail")}
    assert entries[leaf_record(old)].removed is not None


def test_wrong_key_fails_in_one_line_and_removes_nothing(
    tmp_path: Path,
    dns_lab: DnsLab,
    tlsa_key: Path,
    lab_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
) -> None:
    owner = fresh_owner()
    wrong = tmp_path / "wrong.key"
    done = subprocess.run(
        ["keymgr", "-t", "tlsa-publishing.", "hmac-sha256"],
        capture_output=True,
        text=True,
        check=True,
    )
    wrong.write_text(done.stdout)
    wrong.chmod(0o600)
    config = _config(tmp_path, dns_lab, wrong, adopt=True, endpoints=(owner,))
    old, new = files_for(owner, "wrong old", 60), files_for(owner, "wrong new", 90)
    view = ServedView(tmp_path / "served")
    view.install(old)
    dns_lab.add_records(owner, TTL, [leaf_record(old)])
    with StateStore(config.state_dir).locked() as state:
        state.enrolled["mail"] = Enrollment("certbot", str(view.root), (owner,))
        context = _context(config, lab_resolver, auth_port)
        consider("mail", new, enrollment=state.enrolled["mail"], context=context, state=state)
        report = publish_due(
            "mail", context=context, state=state, ledger=load_ledger(config.state_dir)
        )
    assert report is not None and report.error is not None
    assert "\n" not in report.error and "tlsa-publishing." in report.error
    assert PRIMARY_ADDRESS in report.error and "BADSIG" in report.error
    key = load_tsig_key(wrong)
    assert base64.b64encode(key.secret).decode() not in report.error
    assert _validated(dns_lab, owner) == [leaf_record(old)]
    assert view.read_current() == old


KILLING_SCRIPT = """#!/bin/sh
set -eu
knsupdate -t 3 -r 0 -k "$3" <<END
server $1 $2
zone $DANE_HOOK_ZONE
update add $DANE_HOOK_OWNER $DANE_HOOK_TTL TLSA $DANE_HOOK_RDATA
send
END
# The update went out; dane-hook dies before it can write that down (kill -9, no cleanup).
# Only ever the dane-hook process that ran this script.
if tr '\\0' ' ' < /proc/$PPID/cmdline | grep -q 'dane-hook publish'; then kill -9 $PPID; fi
"""


def test_kill_9_between_update_and_ledger_write_adds_nothing_twice(
    tmp_path: Path,
    dns_lab: DnsLab,
    tlsa_key: Path,
    lab_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
) -> None:
    owner = fresh_owner()
    key = load_tsig_key(tlsa_key)
    secret = base64.b64encode(key.secret).decode()
    line = tmp_path / "knsupdate.key"
    line.touch(0o600)
    line.write_text(f"hmac-sha256:{key.name.to_text()}:{secret}\n")
    script = tmp_path / "publish-and-die"
    script.write_text(KILLING_SCRIPT)
    script.chmod(0o700)
    state_dir = tmp_path / "state"
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'state_dir = "{state_dir}"\n'
        f'resolver = "{lab_resolver.address}:{lab_resolver.port}"\n'
        f"auth_port = {auth_port}\n"
        f'[lineage.mail]\nendpoints = ["{owner}"]\npublish = "dying"\n'
        f'[publisher.dying]\ntype = "exec"\nzone = "{dns_lab.zone_of(owner)}"\n'
        f'command = ["{script}", "{PRIMARY_ADDRESS}", "{auth_port}", "{line}"]\n'
    )
    old, new = files_for(owner, "kill old", 60), files_for(owner, "kill new", 90)
    view = ServedView(tmp_path / "served")
    view.install(old)
    dns_lab.add_records(owner, TTL, [leaf_record(old)])
    config = _config(tmp_path, dns_lab, tlsa_key, endpoints=(owner,))
    with StateStore(state_dir).locked() as state:
        state.enrolled["mail"] = Enrollment("certbot", str(view.root), (owner,))
        context = _context(config, lab_resolver, auth_port)
        consider("mail", new, enrollment=state.enrolled["mail"], context=context, state=state)
    dane_hook = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "dane-hook"
    done = subprocess.run(
        [str(dane_hook), "publish", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    pending = [e for e in load_ledger(state_dir).of("mail") if e.pending == "add"]
    assert [e.record for e in pending] == [leaf_record(new)]
    dns_lab.flush()
    assert _validated(dns_lab, owner) == sorted([leaf_record(old), leaf_record(new)])
    # The next run (through the primary this time) finds the record and owns it: no new add.
    with StateStore(state_dir).locked() as state:
        report = publish_due(
            "mail",
            context=_context(config, lab_resolver, auth_port),
            state=state,
            ledger=load_ledger(state_dir),
        )
    assert report is not None and report.changes == () and not report.failed
    entry = load_ledger(state_dir).get("mail", owner, leaf_record(new))
    assert entry is not None and entry.owned and entry.pending is None
    assert _validated(dns_lab, owner) == sorted([leaf_record(old), leaf_record(new)])


def test_server_down_during_add_and_removal_holds_retries_and_removes_nothing_else(
    tmp_path: Path,
    dns_lab: DnsLab,
    tlsa_key: Path,
    lab_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
) -> None:
    """The primary "down": the publisher sends to a loopback port nobody answers on."""
    owner = fresh_owner()
    up = _config(tmp_path, dns_lab, tlsa_key, adopt=True, endpoints=(owner,), retire_after=1)
    down_table = dict(up.publishers["lab"]) | {"port": free_port(), "timeout": 1}
    down = replace(up, publishers={"lab": down_table})
    old, new = files_for(owner, "down old", 60), files_for(owner, "down new", 90)
    view = ServedView(tmp_path / "served")
    view.install(old)
    dns_lab.add_records(owner, TTL, [leaf_record(old), FOREIGN])
    store = StateStore(up.state_dir)
    with store.locked() as state:
        state.enrolled["mail"] = Enrollment("certbot", str(view.root), (owner,))
        context = _context(down, lab_resolver, auth_port)
        consider("mail", new, enrollment=state.enrolled["mail"], context=context, state=state)
        run = timer_run(context, state)
    (report,) = run.publications
    assert report.failed and report.transient and "\n" not in (report.error or "")
    assert [o.action for o in run.outcomes] == [Action.HELD]
    assert _validated(dns_lab, owner) == sorted([leaf_record(old), FOREIGN])

    # The server is back: the next timer run publishes, and in time promotes.
    def promoted() -> bool:
        dns_lab.secondary.refresh(dns_lab.zone_of(owner))
        dns_lab.wait_secondary_synced(dns_lab.zone_of(owner))
        with store.locked() as state:
            timer_run(_context(up, lab_resolver, auth_port), state)
        return view.read_current() == new

    _wait("promotion", promoted, 30)
    time.sleep(2 * TTL)
    # Down again when the old record is due for removal: nothing is removed, retried later.
    with store.locked() as state:
        (report,) = timer_run(_context(down, lab_resolver, auth_port), state).publications
    assert report.failed
    dns_lab.flush()
    assert _validated(dns_lab, owner) == sorted([leaf_record(old), leaf_record(new), FOREIGN])
    with store.locked() as state:
        (report,) = timer_run(_context(up, lab_resolver, auth_port), state).publications
    assert not report.failed and [str(c) for c in report.changes] == [
        f"- {owner} TLSA {leaf_record(old)}"
    ]
    dns_lab.flush()
    assert _validated(dns_lab, owner) == sorted([leaf_record(new), FOREIGN])
