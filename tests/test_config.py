"""The configuration file: defaults, every key, and one clear line for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from dane_hook.cli import main
from dane_hook.config import DEFAULT_CONFIG, ConfigError, load_config
from dane_hook.exitcodes import ExitCode

GOOD = """
resolver = "127.0.0.1:5301"
state_dir = "/srv/state"
ports = [25, 465]
strict = true
expiry_warn_days = 10
expiry_action = "serve"

[lineage."mail.example.com"]
endpoints = ["_25._tcp.mail.example.com"]
policy = "warn"
reload = ["systemctl reload postfix", "doveadm reload"]
served_dir = "/srv/served/mail"
"""


def test_every_key_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.resolver == "127.0.0.1:5301"
    assert config.state_dir == Path("/srv/state") and config.ports == (25, 465)
    assert config.strict and config.expiry_warn_days == 10 and config.expiry_action == "serve"
    lineage = config.lineage("mail.example.com")
    assert lineage.policy == "warn" and lineage.served_dir == Path("/srv/served/mail")
    assert lineage.reload == ("systemctl reload postfix", "doveadm reload")
    assert config.lineage("other").policy == "hold"


def test_environment_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.toml"
    path.write_text("ports = [587]\n")
    monkeypatch.setenv("DANE_HOOK_CONFIG", str(path))
    assert load_config().ports == (587,)


def test_missing_default_file_means_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DANE_HOOK_CONFIG", raising=False)
    if DEFAULT_CONFIG.exists():
        pytest.skip(f"{DEFAULT_CONFIG} exists on this machine")
    assert load_config().ports == (25,)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("ports = 25\n", "ports"),
        ("ports = [70000]\n", "ports"),
        ('strict = "yes"\n', "strict"),
        ('expiry_action = "later"\n', "expiry_action"),
        ('resolvr = "127.0.0.1"\n', "resolvr: unknown key"),
        ('[lineage."m"]\npolicy = "block"\n', 'lineage."m".policy'),
        ('[lineage."m"]\nreload = "systemctl reload postfix"\n', 'lineage."m".reload'),
        ('[lineage."m"]\nendpoint = []\n', 'lineage."m".endpoint: unknown key'),
        ("this is = not toml [\n", "not valid TOML"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, names: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_config(path)
    code = main(["status", "--config", str(path), "--state-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT
    assert len(err.splitlines()) == 1 and str(path) in err and names in err


def test_named_file_that_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # bool is an int in Python: each of these once passed as port 1 or 1 day.
        ("auth_port = true\n", "auth_port"),
        ("auth_port = 0\n", "auth_port"),
        ("ports = [true]\n", "ports"),
        ("expiry_warn_days = false\n", "expiry_warn_days"),
        ('resolver = "not an address"\n', "resolver"),
        ('resolver = "127.0.0.1:99999"\n', "resolver"),
        ('resolver = "[::1"\n', "resolver"),
        ('resolver = "localhost:53"\n', "resolver"),
        ('[lineage."m"]\nendpoints = ["not a name!!"]\n', 'lineage."m".endpoints'),
        ('[lineage."m"]\nendpoints = ["mx.example.com:smtp"]\n', 'lineage."m".endpoints'),
        ('[lineage."m"]\nendpoints = ["a..b"]\n', 'lineage."m".endpoints'),
        ('[lineage."../../etc"]\npolicy = "warn"\n', "lineage name"),
        ('[lineage."a/b"]\npolicy = "warn"\n', "lineage name"),
        ('[lineage.".hidden"]\npolicy = "warn"\n', "lineage name"),
        ('[lineage.".."]\npolicy = "warn"\n', "lineage name"),
        # Adopted records are retired only through a publisher (issue 12).
        ('[lineage."m"]\nadopt = true\n', 'lineage."m".adopt'),
    ],
)
def test_values_are_checked_when_the_file_is_read(
    tmp_path: Path, text: str, names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15 items 5 and 6: a wrong value fails at read time, naming the file and key."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = raised.value.diagnostics()
    assert str(path) in message and names in message, message
    code = main(["status", "--config", str(path), "--state-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "text",
    [
        'resolver = "127.0.0.1"\n',
        'resolver = "127.0.0.1:5301"\n',
        'resolver = "::1"\n',
        'resolver = "[::1]:5301"\n',
        "auth_port = 5300\n",
        '[lineage."mail.example.com"]\nendpoints = ["mail.example.com:465", "_25._tcp.mx.test"]\n',
        '[lineage."mail.example.com-0001"]\nendpoints = ["mäil.example.test"]\n',
    ],
)
def test_good_values_are_read(tmp_path: Path, text: str) -> None:
    path = tmp_path / "good.toml"
    path.write_text(text)
    load_config(path)


def test_a_pasted_key_as_a_value_is_not_quoted(tmp_path: Path) -> None:
    """Issue 15 item 1: the value is named, not shown, when it looks like base64."""
    line = "MHcCAQEEIBHgAa0GhV6JOiFlLLyfI6ntEmWRiTvE+VyR+kJL22q4oAoGCCqGSM49"
    for text in (f'resolver = "{line}"\n', f'[lineage.x]\nendpoints = ["{line}"]\n'):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as raised:
            load_config(path)
        message = raised.value.diagnostics()
        assert line[:8] not in message and "not shown" in message, message
