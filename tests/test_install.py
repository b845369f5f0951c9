"""The README's install command: ./install.sh makes a working dane-hook (here into a temp dir)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests import pki

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_install_script_makes_a_working_command(tmp_path: Path) -> None:
    prefix, bindir = tmp_path / "opt", tmp_path / "bin"
    done = subprocess.run(
        [str(REPO / "install.sh"), str(prefix), str(bindir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().startswith("dane-hook ")
    # Built from the system's interpreter even when another python3 comes first on PATH (issue
    # 15 item 9: a pyenv python3 under a 0700 home), and it says which.
    system = Path("/usr/bin/python3")
    if system.exists():
        assert f"with {system} (Python " in done.stderr, done.stderr
        config = (prefix / "pyvenv.cfg").read_text()
        assert re.search(r"^home = /usr/bin$", config, re.MULTILINE), config
    command = bindir / "dane-hook"
    assert command.is_symlink() and command.resolve() == (prefix / "bin" / "dane-hook").resolve()
    cert = tmp_path / "cert.pem"
    cert.write_bytes(pki.leaf(pki.intermediate("install CA", pki.root("install root"))).pem())
    records = subprocess.run(
        [str(command), "records", "--cert", str(cert), "--format", "rdata"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert records.returncode == 0 and records.stdout.startswith("3 1 1 "), records.stderr
    # The installed package carries the CA catalog data.
    catalog = subprocess.run(
        [str(command), "catalog", "show", "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert catalog.returncode == 0 and "YE3" in catalog.stdout, catalog.stderr
