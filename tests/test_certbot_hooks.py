"""Will certbot's renewals run dane-hook? The stored hooks and the renewal-hooks drop-ins, laid
out as certbot keeps them (renewal/NAME.conf [renewalparams], renewal-hooks/{pre,deploy}/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dane_hook.sources.certbot import read_lineage
from dane_hook.sources.certbot_hooks import check_hooks

REPO = Path(__file__).resolve().parents[1]


def lineage_dir(tmp_path: Path, renewalparams: str = "") -> Path:
    (tmp_path / "renewal").mkdir()
    (tmp_path / "live" / "mx").mkdir(parents=True)  # read_lineage needs it; no files needed
    (tmp_path / "renewal" / "mx.conf").write_text(
        "version = 2.1.0\narchive_dir = /nowhere\n\n[renewalparams]\n"
        "authenticator = standalone\n" + renewalparams
    )
    return tmp_path


def install_drop_ins(config_dir: Path, mode: int = 0o755) -> None:
    for kind in ("pre", "deploy"):
        folder = config_dir / "renewal-hooks" / kind
        folder.mkdir(parents=True)
        target = folder / "00-dane-hook"
        shutil.copy(REPO / "packaging" / "certbot" / kind / "00-dane-hook", target)
        target.chmod(mode)


def test_nothing_installed_warns_in_one_line(tmp_path: Path) -> None:
    check = check_hooks(read_lineage(lineage_dir(tmp_path), "mx"))
    assert check.missing == ("pre", "deploy")
    warning = check.warning()
    assert warning is not None and "\n" not in warning
    assert "renew_hook" in warning and "renewal-hooks/deploy/" in warning


def test_the_packaged_drop_ins_are_found(tmp_path: Path) -> None:
    config_dir = lineage_dir(tmp_path)
    install_drop_ins(config_dir)
    check = check_hooks(read_lineage(config_dir, "mx"))
    assert check.missing == () and check.warning() is None


def test_stored_hooks_are_found(tmp_path: Path) -> None:
    # certbot writes the deploy hook as renew_hook (storage.update_configuration).
    stored = "pre_hook = dane-hook pre\nrenew_hook = /usr/local/bin/dane-hook deploy\n"
    check = check_hooks(read_lineage(lineage_dir(tmp_path, stored), "mx"))
    assert check.missing == ()


@pytest.mark.parametrize(
    "stored",
    [
        "renew_hook = systemctl reload postfix\n",  # a hook, not dane-hook's
        "pre_hook = dane-hook deploy\n",  # the wrong subcommand in the wrong place
    ],
)
def test_other_hooks_do_not_count(tmp_path: Path, stored: str) -> None:
    check = check_hooks(read_lineage(lineage_dir(tmp_path, stored), "mx"))
    assert "deploy" in check.missing


def test_a_drop_in_that_certbot_would_skip_does_not_count(tmp_path: Path) -> None:
    config_dir = lineage_dir(tmp_path)
    install_drop_ins(config_dir, mode=0o644)  # hooks.list_hooks: executables only
    backup = config_dir / "renewal-hooks" / "deploy" / "00-dane-hook~"
    backup.write_text("exec dane-hook deploy\n")
    backup.chmod(0o755)  # names ending in "~" are skipped
    # X_OK is false for a file without any execute bit, for root too (access(2)).
    assert check_hooks(read_lineage(config_dir, "mx")).missing == ("pre", "deploy")
