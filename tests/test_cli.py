"""The `dane-hook` command in process (`main([...])`) and once as the installed console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from dane_hook.cli import COMMANDS, main
from dane_hook.exitcodes import ExitCode
from dane_hook.render.records import MATCH_RENDERERS, RECORDS_RENDERERS, MatchFormat, RecordsFormat
from tests.pki import ChainPaths, KeyType, issued_chain
from tests.schemas import validated


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> ChainPaths:
    return issued_chain(KeyType.ECDSA_P256).write(tmp_path_factory.mktemp("chain"))


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> ChainPaths:
    return issued_chain(KeyType.ECDSA_P256, label="other").write(tmp_path_factory.mktemp("other"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rdata_lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    code, out, err = run(capsys, "records", *argv, "--format", "rdata")
    assert code == ExitCode.OK, err
    return out.splitlines()


def test_every_format_has_a_renderer() -> None:
    assert set(RECORDS_RENDERERS) == set(RecordsFormat)
    assert set(MATCH_RENDERERS) == set(MatchFormat)


def test_records_default_is_311_leaf_and_211_issuer(
    capsys: pytest.CaptureFixture[str], files: ChainPaths
) -> None:
    code, out, _ = run(
        capsys, "records", "--chain", str(files.fullchain), "--host", "mx.example.net"
    )
    assert code == ExitCode.OK
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("_25._tcp.mx.example.net. 3600 IN TLSA 3 1 1 ")
    assert lines[1].startswith("_25._tcp.mx.example.net. 3600 IN TLSA 2 1 1 ")
    assert all(len(line.split()[-1]) == 64 for line in lines)


def test_rdata_format_is_bare_lowercase_hex(
    capsys: pytest.CaptureFixture[str], files: ChainPaths
) -> None:
    lines = rdata_lines(capsys, "--chain", str(files.fullchain), "--params", "300,312,201")
    assert [line.split()[:3] for line in lines] == [
        ["3", "0", "0"],
        ["3", "1", "2"],
        ["2", "0", "1"],
    ]
    for line in lines:
        hexdata = line.split()[3]
        assert hexdata == hexdata.lower() and len(line.split()) == 4
        int(hexdata, 16)


def test_key_records_equal_certificate_records(
    capsys: pytest.CaptureFixture[str], files: ChainPaths
) -> None:
    from_key = rdata_lines(capsys, "--key", str(files.key_pkcs8))
    from_cert = rdata_lines(capsys, "--cert", str(files.cert))
    assert from_key == from_cert and len(from_key) == 1


def test_key_picks_the_leaf_in_any_order(
    capsys: pytest.CaptureFixture[str], files: ChainPaths, tmp_path: Path
) -> None:
    shuffled = tmp_path / "shuffled.pem"
    shuffled.write_bytes(
        b"text before\n"
        + files.root.read_bytes()
        + b"between\n"
        + files.intermediate.read_bytes()
        + files.cert.read_bytes()
        + b"after\n"
    )
    lines = rdata_lines(capsys, "--chain", str(shuffled), "--key", str(files.key_pkcs8))
    assert lines == rdata_lines(capsys, "--chain", str(files.fullchain_with_root))
    assert len(lines) == 3  # 3 1 1 leaf, 2 1 1 intermediate, 2 1 1 root


def test_owner_from_name_and_from_leaf(
    capsys: pytest.CaptureFixture[str], files: ChainPaths
) -> None:
    code, out, _ = run(
        capsys, "records", "--cert", str(files.cert), "--name", "_465._TCP.Mail.Example.NET"
    )
    assert code == 0 and out.startswith("_465._tcp.mail.example.net. 3600 IN TLSA 3 1 1 ")
    code, out, _ = run(
        capsys, "records", "--cert", str(files.cert), "--port", "587", "--ttl", "300"
    )
    assert code == 0 and out.startswith("_587._tcp.mx.example.test. 300 IN TLSA 3 1 1 ")


def test_records_json(capsys: pytest.CaptureFixture[str], files: ChainPaths) -> None:
    code, out, _ = run(capsys, "records", "--chain", str(files.fullchain), "--format", "json")
    document = validated(out)
    assert code == 0 and document["schema_version"] == 1
    assert [(r["role"], r["depth"]) for r in document["records"]] == [("leaf", 0), ("issuer", 1)]
    assert document["owners"] == ["_25._tcp.mx.example.test."]


def test_stray_certificate_is_reported(
    capsys: pytest.CaptureFixture[str], files: ChainPaths, other: ChainPaths, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(files.fullchain.read_bytes() + other.intermediate.read_bytes())
    code, out, err = run(capsys, "records", "--chain", str(bundle), "--format", "rdata")
    assert code == 0 and len(out.splitlines()) == 2
    assert "not on the leaf's issuer path" in err
    assert "CN=dane-hook test intermediate of other ECDSA-P256" in err


def test_match_exit_codes(
    capsys: pytest.CaptureFixture[str], files: ChainPaths, other: ChainPaths
) -> None:
    good = rdata_lines(capsys, "--chain", str(files.fullchain))
    wrong = rdata_lines(capsys, "--chain", str(other.fullchain))
    code, out, _ = run(capsys, "match", "--chain", str(files.fullchain), "--record", good[0])
    assert code == ExitCode.OK and out.startswith("authenticated: DANE-EE")
    code, out, _ = run(
        capsys, "match", "--chain", str(files.fullchain), "--record", wrong[0], "--record", wrong[1]
    )
    assert code == ExitCode.UNSAFE and out.startswith("NOT authenticated")


def test_match_reads_zone_and_bare_lines(
    capsys: pytest.CaptureFixture[str], files: ChainPaths, tmp_path: Path
) -> None:
    code, zone, _ = run(capsys, "records", "--chain", str(files.fullchain))
    tlsa = tmp_path / "records.txt"
    tlsa.write_text("; published\n$TTL 300\n" + zone + "# a bare one\n3 1 2 " + "00" * 64 + "\n")
    code, out, _ = run(
        capsys, "match", "--chain", str(files.fullchain), "--tlsa", str(tlsa), "--format", "json"
    )
    document = validated(out)
    # The stale 3 1 2 outranks the correct 3 1 1 (RFC 7671 §9); the 2 1 1 still authenticates.
    assert code == ExitCode.OK and document["depth"] == 1
    assert [r["status"] for r in document["records"]] == ["superseded", "matched", "not-matched"]
    assert document["incomplete"] == ["3 1 2"]


def test_match_host_check_for_dane_ta(
    capsys: pytest.CaptureFixture[str], files: ChainPaths
) -> None:
    ta = rdata_lines(capsys, "--chain", str(files.fullchain))[1]
    ee = rdata_lines(capsys, "--chain", str(files.fullchain))[0]
    chain = str(files.fullchain)
    assert (
        run(capsys, "match", "--chain", chain, "--record", ta, "--host", "mx.example.test")[0] == 0
    )
    assert (
        run(capsys, "match", "--chain", chain, "--record", ta, "--host", "other.example.test")[0]
        == 1
    )
    # DANE-EE ignores names (RFC 7672 §3.1.1).
    assert (
        run(capsys, "match", "--chain", chain, "--record", ee, "--host", "other.example.test")[0]
        == 0
    )


def _encrypted_key(files: ChainPaths, path: Path) -> None:
    key = serialization.load_pem_private_key(files.key_pkcs8.read_bytes(), password=None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )


BadCase = Callable[[ChainPaths, ChainPaths, Path], list[str]]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_INPUT: dict[str, BadCase] = {
    "empty file": lambda f, o, t: ["records", "--cert", str(_write(t / "e.pem", b""))],
    "not PEM": lambda f, o, t: ["records", "--cert", str(_write(t / "n.pem", b"hello world\n"))],
    "truncated PEM": lambda f, o, t: [
        "records",
        "--cert",
        str(_write(t / "t.pem", f.cert.read_bytes()[:200])),
    ],
    "key where a certificate is expected": lambda f, o, t: ["records", "--cert", str(f.key_pkcs8)],
    "mismatched key": lambda f, o, t: [
        "records",
        "--chain",
        str(f.fullchain),
        "--key",
        str(o.key_pkcs8),
    ],
    "encrypted key": lambda f, o, t: ["records", "--key", str(t / "enc.pem")],
    "10 MB file": lambda f, o, t: [
        "records",
        "--cert",
        str(_write(t / "big.pem", f.cert.read_bytes() * (10 * 1024 * 1024 // 700))),
    ],
    "binary garbage": lambda f, o, t: [
        "records",
        "--cert",
        str(_write(t / "g.der", bytes(range(256)) * 40)),
    ],
    "unreadable file (a directory)": lambda f, o, t: ["records", "--cert", str(t)],
    "missing path": lambda f, o, t: ["records", "--cert", str(t / "missing.pem")],
    "odd hex in a record": lambda f, o, t: [
        "match",
        "--chain",
        str(f.fullchain),
        "--record",
        "3 1 1 abc",
    ],
    "non-hex record": lambda f, o, t: [
        "match",
        "--chain",
        str(f.fullchain),
        "--record",
        "3 1 1 zz",
    ],
    "missing fields": lambda f, o, t: ["match", "--chain", str(f.fullchain), "--record", "3 1"],
    "value over 255": lambda f, o, t: [
        "match",
        "--chain",
        str(f.fullchain),
        "--record",
        "256 1 1 00",
    ],
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_exit_3_and_one_line(
    case: str,
    capsys: pytest.CaptureFixture[str],
    files: ChainPaths,
    other: ChainPaths,
    tmp_path: Path,
) -> None:
    _encrypted_key(files, tmp_path / "enc.pem")
    code, out, err = run(capsys, *BAD_INPUT[case](files, other, tmp_path))
    assert code == ExitCode.BAD_INPUT, err
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("dane-hook: ")
    assert "Traceback" not in err
    # Never key material: no line of a key file's base64 body appears.
    for key_file in (files.key_pkcs8, other.key_pkcs8, tmp_path / "enc.pem"):
        body = [line for line in key_file.read_text().splitlines() if "-----" not in line]
        assert not any(line[:20] in err for line in body)


def test_usage_errors_are_exit_2(capsys: pytest.CaptureFixture[str], files: ChainPaths) -> None:
    assert run(capsys, "records")[0] == ExitCode.USAGE
    assert run(capsys, "records", "--cert", str(files.cert), "--port", "0", "--host", "a.b")[0] == 2
    assert run(capsys, "match", "--chain", str(files.fullchain))[0] == ExitCode.USAGE
    assert run(capsys, "no-such-command")[0] == ExitCode.USAGE
    code, _, err = run(capsys, "records", "--key", str(files.key_pkcs8), "--format", "zone")
    assert code == ExitCode.USAGE and "--host" in err


def test_verbose_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "-v", "records", "--cert", str(tmp_path / "missing.pem"))
    assert code == ExitCode.BAD_INPUT and "Traceback" in err


def test_the_command_list_is_complete() -> None:
    assert set(COMMANDS) >= {"records", "match"}


def test_installed_console_script(files: ChainPaths) -> None:
    script = shutil.which(
        "dane-hook", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
    assert script is not None, "the dane-hook console script is not installed (pip install -e .)"
    done = subprocess.run(
        [script, "records", "--cert", str(files.cert), "--format", "rdata"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    module = subprocess.run(
        [
            sys.executable,
            "-m",
            "dane_hook",
            "records",
            "--cert",
            str(files.cert),
            "--format",
            "rdata",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert module.stdout == done.stdout and done.stdout.startswith("3 1 1 ")


def test_every_verdict_has_an_exit_status() -> None:
    from dane_hook.cli.inputs import EXIT_FOR_VERDICT
    from dane_hook.rollover.decision import Verdict

    assert {EXIT_FOR_VERDICT[v] for v in Verdict} <= set(ExitCode)
    assert set(EXIT_FOR_VERDICT) == {v.value for v in Verdict}


def test_a_closed_stdout_keeps_the_work_s_exit_status(files: ChainPaths) -> None:
    """`dane-hook records ... | head -0` in process: the reader has gone before the first line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    saved = sys.stdout
    sys.stdout = os.fdopen(write_end, "w", buffering=1)  # line-buffered: the first line fails
    try:
        ok = main(["records", "--cert", str(files.cert), "--format", "rdata"])
        refused = main(["match", "--chain", str(files.fullchain), "--record", "3 1 1 " + "00" * 32])
    finally:
        sys.stdout.close()
        sys.stdout = saved
    assert (ok, refused) == (ExitCode.OK, ExitCode.UNSAFE)


@pytest.mark.parametrize("command", ["enroll", "status", "release", "rollback", "publish"])
@pytest.mark.parametrize("name", ["../../etc", "a/b", ".hidden", ".."])
def test_every_cert_name_is_checked_before_it_becomes_a_path(
    command: str, name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """certbot refuses a --cert-name with a path separator (certbot/_internal/client.py
    `_is_valid_lineagename`); dane-hook also refuses '..' and a leading '.'."""
    dirs = ["--state-dir", str(tmp_path / "state"), "--served-dir", str(tmp_path / "served")]
    dirs += ["--certbot-dir", str(tmp_path / "letsencrypt"), "--config", str(tmp_path / "none")]
    code, out, err = run(capsys, command, "--cert-name", name, *dirs)
    assert code == ExitCode.USAGE, (code, out, err)
    assert "lineage name" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "state").exists()


def test_the_readme_exit_table_is_generated_from_the_enum() -> None:
    """Regenerate with: python -c 'from dane_hook.exitcodes import readme_table as t; print(t())'"""
    from dane_hook.exitcodes import readme_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    assert readme_table() in section, readme_table()


def test_a_stdout_closed_at_start_is_quiet_too(files: ChainPaths) -> None:
    """`dane-hook records ... >&-`: Python starts with sys.stdout None."""
    script = Path(sys.executable).parent / "dane-hook"
    done = subprocess.run(
        ["bash", "-c", f'"{script}" records --cert "{files.cert}" --format rdata >&-'],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (ExitCode.OK, "")
