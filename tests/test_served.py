"""The served view on a real file system: versions, atomic switch, rollback, SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dane_hook.certs.chain import build_chain
from dane_hook.certs.keys import spki_der
from dane_hook.rollover.served_view import FILES, ChainFiles, ServedView
from dane_hook.sources.files import load_certificates, load_public_key
from tests import pki

ROOT = pki.root("served root")
CA = pki.intermediate("served CA", ROOT)


def version_files(label: str) -> ChainFiles:
    leaf = pki.leaf(CA, label=label)
    return ChainFiles(leaf.key_pem(), leaf.pem(), CA.pem(), leaf.pem() + CA.pem())


def key_matches_cert(root: Path) -> bool:
    key = load_public_key(root / "privkey.pem")
    chain = build_chain(load_certificates(root / "fullchain.pem"), now=pki.NOW)
    cert = load_certificates(root / "cert.pem")[0]
    combined_key = load_public_key(root / "combined.pem")
    combined = build_chain(load_certificates(root / "combined.pem"), combined_key, now=pki.NOW)
    leaf_key = spki_der(chain.leaf.public_key())  # type: ignore[arg-type]
    return (
        spki_der(key) == leaf_key == spki_der(cert.public_key())  # type: ignore[arg-type]
        and spki_der(combined_key) == spki_der(combined.leaf.public_key())  # type: ignore[arg-type]
    )


def links(view: ServedView) -> tuple[str | None, str | None]:
    return view.current, view.previous


def test_install_switch_and_rollback(tmp_path: Path) -> None:
    view = ServedView(tmp_path / "served" / "mail")
    one, two = version_files("served one"), version_files("served two")
    first = view.install(one)
    assert links(view) == (first, None)
    assert all((view.root / name).read_bytes() == one.content(name) for name in FILES)
    assert oct((view.root / "versions" / first / "privkey.pem").stat().st_mode & 0o777) == "0o600"
    assert oct((view.root / "versions" / first / "fullchain.pem").stat().st_mode & 0o777) == "0o644"
    second = view.install(two)
    assert links(view) == (second, first)
    assert (view.root / "fullchain.pem").read_bytes() == two.fullchain
    assert view.install(two) == second and links(view) == (second, first)  # idempotent
    assert view.rollback() == first
    assert (view.root / "fullchain.pem").read_bytes() == one.fullchain
    assert links(view) == (first, second)
    third = view.install(version_files("served three"))
    # Only current and previous are kept.
    assert sorted(p.name for p in view.versions_dir.iterdir()) == sorted([third, first])
    assert key_matches_cert(view.root)


def test_rollback_without_previous_is_an_error(tmp_path: Path) -> None:
    view = ServedView(tmp_path / "mail")
    view.install(version_files("served one"))
    with pytest.raises(Exception, match="no previous version"):
        view.rollback()


_SWITCHER = """
import sys
from pathlib import Path
from dane_hook.rollover.served_view import ChainFiles, ServedView
folder = Path(sys.argv[1])
KINDS = ("privkey", "cert", "chain", "fullchain")
versions = [
    ChainFiles(*(Path(folder, f"{i}-{n}.pem").read_bytes() for n in KINDS))
    for i in range(3)
]
view = ServedView(folder / "served")
print("ready", flush=True)
for n in range(100000):
    view.install(versions[n % 3])
"""


def test_sigkill_at_any_point_leaves_key_and_cert_together(tmp_path: Path) -> None:
    for number in range(3):
        files = version_files(f"served kill {number}")
        for name, data in (
            ("privkey", files.privkey),
            ("cert", files.cert),
            ("chain", files.chain),
            ("fullchain", files.fullchain),
        ):
            (tmp_path / f"{number}-{name}.pem").write_bytes(data)
    ServedView(tmp_path / "served").install(version_files("served kill 0"))
    script = tmp_path / "switcher.py"
    script.write_text(_SWITCHER)
    rng = random.Random(7)
    kills = 0
    for _ in range(100):
        child = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
            time.sleep(rng.uniform(0.0, 0.05))
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        finally:
            child.kill()
            child.wait(10)
        assert key_matches_cert(tmp_path / "served"), f"after kill {kills}"
    assert kills == 100
