"""The state store on a real file system: atomic writes, a lock that makes runs wait, corruption."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dane_hook.errors import BadInput
from dane_hook.rollover.state import STATE_FILE, State, StateStore
from dane_hook.storage import LineageNameError, StateError, check_lineage_name
from dane_hook.tlsa.record import TLSARecord

A = TLSARecord(3, 1, 1, b"\x01" * 32)
B = TLSARecord(2, 1, 1, b"\x02" * 32)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
ENDPOINT = "_25._tcp.mx.example.test."


def test_first_seen_is_kept_across_runs_and_forgotten_when_withdrawn(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with store.locked() as state:
        assert state.observe(ENDPOINT, [A], T0) == {A: T0}
    later = T0 + timedelta(hours=1)
    with store.locked() as state:
        assert state.observe(ENDPOINT, [A, B], later) == {A: T0, B: later}
    with store.locked() as state:
        state.observe(ENDPOINT, [B], later + timedelta(hours=1))
    with store.locked() as state:
        # A came back: its clock restarts (RFC 7671 §8.1 counts from when all servers serve it).
        again = later + timedelta(hours=2)
        assert state.observe(ENDPOINT, [A, B], again) == {A: again, B: later}
    document = json.loads((tmp_path / STATE_FILE).read_text())
    assert document["schema_version"] == 1
    assert set(document["first_seen"][ENDPOINT]) == {A.to_text(), B.to_text()}


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"schema_version": 99}',
        b'{"schema_version": 1, "first_seen": {"e": {"r": "x"}}}',
        b"\xff\xfe",
    ],
)
def test_corrupt_state_is_moved_aside_and_clocks_restart(tmp_path: Path, content: bytes) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    store = StateStore(tmp_path)
    with store.locked(now=T0) as state:
        assert state.first_seen == {}
        (warning,) = state.warnings
        assert "restarts" in warning
        assert state.observe(ENDPOINT, [A], T0) == {A: T0}
    aside = list(tmp_path.glob(f"{STATE_FILE}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert State.from_json(json.loads((tmp_path / STATE_FILE).read_text())).first_seen


def test_unusable_state_directory_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match="state directory"), StateStore(blocker / "state").locked():
        pass
    # A file or permission problem is bad input (exit 3), not "cannot decide" (issue 15).
    assert issubclass(StateError, BadInput)


def test_a_lock_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "state.lock").mkdir()
    with pytest.raises(StateError, match="lock"), StateStore(tmp_path).locked():
        pass


def test_a_question_without_a_state_directory_answers_and_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with StateStore(blocker / "state").for_question(T0) as state:
        assert state.observe(ENDPOINT, [A], T0) == {A: T0}
    (warning,) = state.warnings
    assert "cannot be created" in warning and "no first-seen times" in warning
    assert blocker.read_text() == "not a directory"


def test_a_question_reads_a_state_it_cannot_lock_and_saves_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with store.locked(T0) as state:
        state.observe(ENDPOINT, [A], T0)
    saved = store.path.read_bytes()
    (tmp_path / "state.lock").unlink()
    (tmp_path / "state.lock").mkdir()  # as root no mode stops a write; a directory does
    later = T0 + timedelta(hours=1)
    with store.for_question(later) as state:
        # The saved first-seen time counts: the question is answered as a writable run would.
        assert state.observe(ENDPOINT, [A, B], later) == {A: T0, B: later}
    (warning,) = state.warnings
    assert "lock" in warning and "saved first-seen times" in warning
    assert store.path.read_bytes() == saved


def test_a_question_with_a_writable_state_directory_keeps_first_seen(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with store.for_question(T0) as state:
        state.observe(ENDPOINT, [A], T0)
    assert state.warnings == []
    with store.locked(T0 + timedelta(hours=1)) as state:
        assert state.known(ENDPOINT) == {A: T0}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".probe.")] == []


@pytest.mark.parametrize(
    ("name", "good"),
    [
        ("mx.example.test", True),
        ("mx.example.test-0001", True),  # certbot's own suffix for a second lineage
        ("example_com", True),
        ("../../etc", False),
        ("a/b", False),
        ("..", False),
        (".", False),
        (".hidden", False),
        ("a..b", False),
        ("", False),
        ("a\x00b", False),
    ],
)
def test_lineage_names_are_checked_as_certbot_checks_them(name: str, good: bool) -> None:
    if good:
        assert check_lineage_name(name) == name
    else:
        with pytest.raises(LineageNameError, match="not a certificate name"):
            check_lineage_name(name)


def test_a_state_file_with_a_name_that_climbs_out_is_set_aside(tmp_path: Path) -> None:
    """A name from the state file is joined into paths too (served view, candidates/)."""
    document = State().to_json()
    document["enrolled"] = {"../../etc": {"source": "certbot", "served_dir": "/tmp"}}
    (tmp_path / STATE_FILE).write_text(json.dumps(document))
    with StateStore(tmp_path).locked(T0) as state:
        assert state.enrolled == {}
        (warning,) = state.warnings
        assert "not a certificate name" in warning and "moved to" in warning


def _hold_lock(directory: str, seconds: float, ready: multiprocessing.synchronize.Event) -> None:
    with StateStore(directory).locked() as state:
        ready.set()
        time.sleep(seconds)
        state.observe(ENDPOINT, [A], T0)


def test_a_concurrent_run_waits_for_the_lock(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path), 0.5, ready))
    holder.start()
    try:
        assert ready.wait(10)
        started = time.monotonic()
        with StateStore(tmp_path).locked() as state:
            waited = time.monotonic() - started
            # The holder's write is visible once we get the lock.
            assert state.first_seen == {ENDPOINT: {A.to_text(): T0}}
        assert waited > 0.2
    finally:
        holder.join(10)
        if holder.is_alive():
            holder.kill()
    assert holder.exitcode == 0


def test_no_partial_file_is_ever_left(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    for number in range(20):
        with store.locked() as state:
            state.observe(f"_25._tcp.mx{number}.example.test.", [A, B], T0)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert len(json.loads((tmp_path / STATE_FILE).read_text())["first_seen"]) == 20
    assert oct(os.stat(tmp_path / STATE_FILE).st_mode & 0o777) == "0o640"
