"""publish_due and the timer against the lab's Knot, through RFC 2136 + a TLSA-only TSIG key."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import dns.rdatatype
import pytest

from dane_hook.cli import main
from dane_hook.config import Config, LineageConfig
from dane_hook.dns.lookup import Resolver
from dane_hook.dns.publish import load_tsig_key
from dane_hook.exitcodes import ExitCode
from dane_hook.rollover.ledger import load_ledger
from dane_hook.rollover.lineages import rollback
from dane_hook.rollover.observe import Settings
from dane_hook.rollover.promotion import Action, Context, consider
from dane_hook.rollover.publishing import FULL_OBSERVATION_PERIOD, publish_due, timer_run, watching
from dane_hook.rollover.publishing import quiet as quiet_run
from dane_hook.rollover.served_view import ChainFiles, ServedView
from dane_hook.rollover.state import Enrollment, StateStore
from tests import pki
from tests.infra.lab import PRIMARY_ADDRESS, DnsLab
from tests.infra.procs import free_port
from tests.infra.wire import ask
from tests.test_catalog import FakeCA
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


def _promote_and_retire(
    what: str,
    store: StateStore,
    config: Config,
    context_of: Callable[[], Context],
    dns_lab: DnsLab,
    owner: str,
    done: Callable[[], bool],
) -> None:
    def step() -> bool:
        dns_lab.secondary.refresh(dns_lab.zone_of(owner))  # the NOTIFY the lab does not send
        dns_lab.wait_secondary_synced(dns_lab.zone_of(owner))
        with store.locked() as state:
            run = timer_run(context_of(), state)
        assert not any(p.failed for p in run.publications), run.publications
        return done()

    _wait(what, step, 30)


def test_issuer_records_cover_every_active_and_backup_intermediate(
    tmp_path: Path,
    dns_lab: DnsLab,
    tlsa_key: Path,
    lab_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """2 1 1 policy: the catalog's active and backup intermediates of the leaf's key type, so a
    renewal from any of them is safe at once; never the retired ones."""
    owner = fresh_owner()
    host = owner.split(".", 2)[2].rstrip(".")
    ca = FakeCA("publish issuers")
    config = _config(
        tmp_path, dns_lab, tlsa_key, adopt=True, endpoints=(owner,), issuer_records=True
    )
    ca.add_to(capsys, config.state_dir, tmp_path)
    leaf = ca.leaf(host, ca.active[0])
    issuer = ca.active[0].pem()
    view = ServedView(tmp_path / "served")
    view.install(ChainFiles(leaf.key_pem(), leaf.pem(), issuer, leaf.pem() + issuer))
    dns_lab.add_records(owner, TTL, [pki.rdata(leaf, 3, 1, 1), FOREIGN])
    with StateStore(config.state_dir).locked() as state:
        state.enrolled["mail"] = Enrollment("certbot", str(view.root), (owner,))
        report = publish_due(
            "mail",
            context=_context(config, lab_resolver, auth_port),
            state=state,
            ledger=load_ledger(config.state_dir),
        )
    assert report is not None and not report.failed, report
    expected = {pki.rdata(i, 2, 1, 1) for i in (*ca.active, ca.backup)}
    assert {c.rdata for c in report.changes} == expected
    assert all(c.action == "add" for c in report.changes)
    retired = {pki.rdata(i, 2, 1, 1) for i in ca.retired}
    dns_lab.flush()
    published = set(_validated(dns_lab, owner))
    assert published == expected | {pki.rdata(leaf, 3, 1, 1), FOREIGN}
    assert not published & retired


def test_added_record_takes_the_ttl_of_the_existing_rrset(
    tmp_path: Path,
    dns_lab: DnsLab,
    tlsa_key: Path,
    lab_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
) -> None:
    """RFC 2181 §5.2: one TTL per RRset; the publisher's `ttl` is only for a new RRset."""
    owner = fresh_owner()
    config = _config(tmp_path, dns_lab, tlsa_key, endpoints=(owner,))
    config = replace(config, publishers={"lab": dict(config.publishers["lab"]) | {"ttl": 2}})
    old, new = files_for(owner, "ttl old", 60), files_for(owner, "ttl new", 90)
    view = ServedView(tmp_path / "served")
    view.install(old)
    dns_lab.add_records(owner, 7, [leaf_record(old)])
    with StateStore(config.state_dir).locked() as state:
        state.enrolled["mail"] = Enrollment("certbot", str(view.root), (owner,))
        context = _context(config, lab_resolver, auth_port)
        consider("mail", new, enrollment=state.enrolled["mail"], context=context, state=state)
        report = publish_due(
            "mail", context=context, state=state, ledger=load_ledger(config.state_dir)
        )
    assert report is not None and [c.ttl for c in report.changes] == [7], report
    reply = ask(PRIMARY_ADDRESS, auth_port, owner, "TLSA")
    assert reply is not None
    (rrset,) = [r for r in reply.answer if r.rdtype == dns.rdatatype.TLSA]
    assert rrset.ttl == 7 and len(rrset) == 2


def test_rollback_republishes_retired_records_and_force_serves_with_a_warning(
    tmp_path: Path,
    dns_lab: DnsLab,
    tlsa_key: Path,
    lab_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
) -> None:
    owner = fresh_owner()
    config = _config(tmp_path, dns_lab, tlsa_key, adopt=True, endpoints=(owner,), retire_after=1)
    old, new = files_for(owner, "back old", 60), files_for(owner, "back new", 90)
    view = ServedView(tmp_path / "served")
    view.install(old)
    dns_lab.add_records(owner, TTL, [leaf_record(old), FOREIGN])
    store = StateStore(config.state_dir)

    def context() -> Context:
        return _context(config, lab_resolver, auth_port)

    def only(*files: ChainFiles) -> Callable[[], bool]:
        def check() -> bool:
            dns_lab.flush()
            wanted = sorted([*(leaf_record(f) for f in files), FOREIGN])
            return view.read_current() == files[0] and _validated(dns_lab, owner) == wanted

        return check

    with store.locked() as state:
        state.enrolled["mail"] = Enrollment("certbot", str(view.root), (owner,))
        consider("mail", new, enrollment=state.enrolled["mail"], context=context(), state=state)
    _promote_and_retire("new served", store, config, context, dns_lab, owner, only(new))

    # The old chain's record is gone: rollback holds it and publishes the record again.
    with store.locked() as state:
        rolled = rollback(config, state, "mail", context=context())
    assert rolled.held and rolled.publication is not None, rolled
    assert [str(c) for c in rolled.publication.changes] == [f"+ {owner} TLSA {leaf_record(old)}"]
    assert view.read_current() == new  # not served on a guess
    _promote_and_retire("old served again", store, config, context, dns_lab, owner, only(old))

    # Now the new chain's record is retired: --force serves it at once, with a warning.
    with store.locked() as state:
        forced = rollback(config, state, "mail", context=context(), force=True)
    assert not forced.held and view.read_current() == new
    assert any("--force" in w and "may refuse" in w for w in forced.warnings), forced.warnings


def _config_file(tmp: Path, dns_lab: DnsLab, key: Path, owner: str, resolver: Resolver) -> Path:
    path = tmp / "config.toml"
    path.write_text(
        f'state_dir = "{tmp / "state"}"\n'
        f'resolver = "{resolver.address}:{resolver.port}"\n'
        f"auth_port = {dns_lab.auth_port}\n"
        f'[lineage.mail]\nendpoints = ["{owner}"]\npublish = "lab"\n'
        f'[publisher.lab]\ntype = "rfc2136"\nkey_file = "{key}"\n'
        f'server = "{PRIMARY_ADDRESS}"\nport = {dns_lab.auth_port}\ntimeout = 1\n'
    )
    return path


def test_publish_dry_run_sends_nothing_and_a_failure_exits_6(
    tmp_path: Path,
    dns_lab: DnsLab,
    tlsa_key: Path,
    lab_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner = fresh_owner()
    config_file = _config_file(tmp_path, dns_lab, tlsa_key, owner, lab_resolver)
    config = _config(tmp_path, dns_lab, tlsa_key, endpoints=(owner,))
    old, new = files_for(owner, "cli old", 60), files_for(owner, "cli new", 90)
    view = ServedView(tmp_path / "served")
    view.install(old)
    dns_lab.add_records(owner, TTL, [leaf_record(old)])
    with StateStore(config.state_dir).locked() as state:
        state.enrolled["mail"] = Enrollment("certbot", str(view.root), (owner,))
        context = _context(config, lab_resolver, auth_port)
        consider("mail", new, enrollment=state.enrolled["mail"], context=context, state=state)

    code = main(["publish", "--dry-run", "--config", str(config_file)])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, err
    assert out.splitlines() == [f"mail: would send via lab: + {owner} TLSA {leaf_record(new)}"]
    assert _validated(dns_lab, owner) == [leaf_record(old)]

    down = tmp_path / "down.toml"
    down.write_text(
        config_file.read_text().replace(f"port = {auth_port}\n", f"port = {free_port()}\n")
    )
    for command in ("publish", "release"):
        code = main([command, "--config", str(down)])
        out, err = capsys.readouterr()
        assert code == 6 and code == ExitCode.PUBLISH_FAILED, (command, out, err)
        (line,) = [x for x in err.splitlines() if "FAILED" in x]
        assert "tlsa-publishing." in line and PRIMARY_ADDRESS in line, line
        assert base64.b64encode(load_tsig_key(tlsa_key).secret).decode() not in out + err
    assert _validated(dns_lab, owner) == [leaf_record(old)] and view.read_current() == old


def test_enroll_adopt_without_a_publisher_is_a_usage_error(
    tmp_path: Path, lab_resolver: Resolver, auth_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_defects import make_site, write_lineage

    site = make_site(
        tmp_path / "site", f"{lab_resolver.address}:{lab_resolver.port}", auth_port=auth_port
    )
    name = "adopt.example.test"
    write_lineage(site.certbot_dir, name, [pki.issued_chain(pki.KeyType.ECDSA_P256, label="adopt")])
    code = main(["enroll", "--cert-name", name, "--adopt", *site.dirs()])
    _out, err = capsys.readouterr()
    assert code == ExitCode.USAGE, err
    assert err.count("\n") == 1 and "no publisher" in err and f'[lineage."{name}"]' in err
    with StateStore(site.state_dir).locked() as state:
        assert name not in state.enrolled  # nothing half-done


def test_the_timer_looks_often_while_held_and_not_at_all_when_quiet(
    tmp_path: Path,
    dns_lab: DnsLab,
    tlsa_key: Path,
    lab_resolver: Resolver,
    silent_resolver: Resolver,
    auth_port: int,
    fresh_owner: Callable[..., str],
) -> None:
    """Issue 15, item 13b: the packaged timer runs every few minutes; a run with nothing held,
    staged or being retired returns at once, asking no one, unless the last observation of
    every lineage is an hour old. A silent resolver (every query times out) shows it."""
    owner = fresh_owner()
    config = Config(state_dir=tmp_path / "state", lineages={"mail": LineageConfig()})
    old, new = files_for(owner, "quiet old", 60), files_for(owner, "quiet new", 90)
    view = ServedView(tmp_path / "served")
    view.install(old)
    dns_lab.add_records(owner, TTL, [leaf_record(old)])
    store = StateStore(config.state_dir)
    with store.locked() as state:
        state.enrolled["mail"] = Enrollment("certbot", str(view.root), (owner,))
        first = timer_run(_context(config, lab_resolver, auth_port), state)
    assert not first.quiet and load_ledger(config.state_dir).observed is not None

    silent = _context(config, silent_resolver, auth_port)
    started = time.monotonic()
    with store.locked() as state:
        quiet = timer_run(silent, state)
    assert quiet.quiet and quiet.outcomes == () and time.monotonic() - started < 0.5
    # A lineage enrolled since the last full observation is looked at by the next run.
    with store.locked() as state:
        state.enrolled["other"] = Enrollment("certbot", str(view.root), (owner,))
        assert not quiet_run(silent, state, load_ledger(config.state_dir), None)
        del state.enrolled["other"]
    # An hour later the timer observes every lineage again (here: it asks, and waits).
    later = replace(silent, now=silent.now + FULL_OBSERVATION_PERIOD)
    with store.locked() as state:
        assert not quiet_run(later, state, load_ledger(config.state_dir), None)
    # A held chain: every run looks (and promotes within one timer period of the earliest time).
    with store.locked() as state:
        context = _context(config, lab_resolver, auth_port)
        consider("mail", new, enrollment=state.enrolled["mail"], context=context, state=state)
        ledger = load_ledger(config.state_dir)
        assert watching(state, ledger) == ["mail: a chain is held"]
        assert not quiet_run(context, state, ledger, None)
        run = timer_run(context, state)
    assert not run.quiet and [o.action for o in run.outcomes] == [Action.HELD]
