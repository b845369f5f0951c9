"""Promote or hold through the library, against the real lab: the expiry guard and warn mode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dane_hook.config import Config, LineageConfig
from dane_hook.dns.lookup import Resolver
from dane_hook.rollover.observe import Settings
from dane_hook.rollover.promotion import Action, Context, consider
from dane_hook.rollover.served_view import ChainFiles, ServedView
from dane_hook.rollover.state import Enrollment, StateStore
from dane_hook.tlsa.generate import certificate_record
from tests import pki

pytestmark = pytest.mark.slow

ROOT = pki.root("serving root")
CA = pki.intermediate("serving CA", ROOT)
NOW = datetime.now(timezone.utc)


def files_for(owner: str, label: str, days_left: float) -> ChainFiles:
    host = owner.split(".", 2)[2].rstrip(".")
    validity = pki.Validity(NOW - timedelta(days=80), NOW + timedelta(days=days_left))
    leaf = pki.leaf(CA, [host], label=label, validity=validity)
    return ChainFiles(leaf.key_pem(), leaf.pem(), CA.pem(), leaf.pem() + CA.pem())


def leaf_record(files: ChainFiles) -> str:
    from cryptography import x509

    return certificate_record(x509.load_pem_x509_certificate(files.cert), 3, 1, 1).to_text()


@pytest.fixture
def world(
    tmp_path: Path, lab_resolver: Resolver, auth_port: int
) -> Callable[..., tuple[Context, StateStore, Enrollment]]:
    def make(**changes: object) -> tuple[Context, StateStore, Enrollment]:
        config = replace(Config(state_dir=tmp_path / "state"), **changes)  # type: ignore[arg-type]
        settings = Settings(lab_resolver, 1.0, 2, auth_port)
        enrollment = Enrollment("certbot", str(tmp_path / "served"))
        return Context(config, settings, NOW), StateStore(config.state_dir), enrollment

    return make


@pytest.mark.parametrize(
    ("days_left", "action", "expected", "warned"),
    [
        (60, "hold", Action.HELD, False),
        (5, "hold", Action.HELD, True),
        (0.5, "hold", Action.HELD, True),
        (5, "serve", Action.HELD, True),
        (0.5, "serve", Action.PROMOTED, True),
    ],
)
def test_expiry_guard(
    world: Callable[..., tuple[Context, StateStore, Enrollment]],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
    days_left: float,
    action: str,
    expected: str,
    warned: bool,
) -> None:
    owner = fresh_owner()
    context, store, enrollment = world(expiry_action=action, expiry_warn_days=14)
    served = files_for(owner, "serving old", days_left)
    ServedView(Path(enrollment.served_dir)).install(served)
    add_records(owner, 300, [leaf_record(served)])
    candidate = files_for(owner, "serving new", 90)
    with store.locked(NOW) as state:
        outcome = consider(
            "mail",
            candidate,
            enrollment=replace(enrollment, endpoints=(owner,)),
            context=context,
            state=state,
        )
    assert outcome.decision.verdict.value == "unsafe"
    assert outcome.action == expected
    assert bool(outcome.warnings) is warned
    if warned:
        assert "expires" in outcome.warnings[0]
    view = ServedView(Path(enrollment.served_dir))
    served_now = view.read_current()
    assert served_now == (candidate if expected == Action.PROMOTED else served)


def test_warn_policy_never_changes_the_served_view(
    world: Callable[..., tuple[Context, StateStore, Enrollment]],
    fresh_owner: Callable[..., str],
    add_records: Callable[[str, int, list[str]], int],
) -> None:
    owner = fresh_owner()
    context, store, enrollment = world(lineages={"mail": LineageConfig(policy="warn")})
    served = files_for(owner, "serving old", 60)
    ServedView(Path(enrollment.served_dir)).install(served)
    add_records(owner, 300, [leaf_record(served)])
    candidate = files_for(owner, "serving new", 90)
    with store.locked(NOW) as state:
        outcome = consider(
            "mail",
            candidate,
            enrollment=replace(enrollment, endpoints=(owner,)),
            context=context,
            state=state,
        )
        assert "mail" not in state.held
    assert outcome.action == Action.CHECKED
    assert ServedView(Path(enrollment.served_dir)).read_current() == served
