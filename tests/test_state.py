"""The state store on a real file system: atomic writes, a lock that makes runs wait, corruption."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dane_hook.rollover.state import STATE_FILE, State, StateStore
from dane_hook.storage import StateError
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
