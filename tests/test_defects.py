"""Issue 15: the defects found in real use, each on the real input the issue names.

Only stable entry points are used: `dane_hook.cli.main` in process, and the installed console
script. Certificates come from tests/pki.py; certbot lineages are laid out as certbot lays them
(live/NAME symlinks into archive/NAME, renewal/NAME.conf). The acme.sh items (8, 10) with the
real script are in tests/test_issue15_acmesh.py.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from dane_hook.cli import main
from tests import pki
from tests.infra.lab import DnsLab
from tests.infra.procs import free_port

REPO = Path(__file__).resolve().parents[1]
HOST = pki.HOST
SCRIPT_DIR = Path(sys.executable).parent
CONSOLE = SCRIPT_DIR / "dane-hook"


def catalog_certificates() -> list[Path]:
    """The CA certificates of the shipped catalog (the real ones of shared/data/ca)."""
    shipped = REPO / "dane_hook" / "catalog" / "data"
    found = sorted(shipped.glob("*.pem"))
    if not found:
        found = sorted((REPO.parent / "shared" / "data" / "ca").glob("*.pem"))
    return found


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def console(
    *argv: str | bytes, env: Mapping[str, str | bytes] | None = None, stdout: int | None = None
) -> Done:
    """The installed console script, with bytes arguments where a test needs non-UTF-8."""
    environment: dict[bytes, bytes] = {
        os.fsencode(k): os.fsencode(v) for k, v in (env or os.environ).items()
    }
    done = subprocess.run(
        [str(CONSOLE), *argv],
        env=environment,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )
    return Done(done.returncode, done.stdout or b"", done.stderr or b"")


def options_of(*command: str) -> set[str]:
    """The long options a (sub)command's parser has, read from its --help."""
    found = subprocess.run(
        [str(CONSOLE), *command, "--help"], capture_output=True, text=True, check=False
    )
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", found.stdout))


# -- shared inputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lineage:
    """A certbot lineage as certbot lays it out."""

    config_dir: Path
    name: str

    @property
    def live(self) -> Path:
        return self.config_dir / "live" / self.name

    @property
    def archive(self) -> Path:
        return self.config_dir / "archive" / self.name


def write_lineage(
    config_dir: Path,
    name: str,
    chains: Sequence[pki.IssuedChain],
    *,
    live: Path | None = None,
    archive: Path | None = None,
    conf: Path | None = None,
    reuse_key: bool = False,
) -> Lineage:
    """archive/NAME/{cert,chain,fullchain,privkey}N.pem for each chain, live/NAME/* linking the
    last version, renewal/NAME.conf; `live`, `archive`, `conf` put them elsewhere."""
    live = live or config_dir / "live" / name
    archive = archive or config_dir / "archive" / name
    conf = conf or config_dir / "renewal" / f"{name}.conf"
    for folder in (live, archive, conf.parent):
        folder.mkdir(parents=True, exist_ok=True)
    for version, chain in enumerate(chains, start=1):
        leaf, issuer = chain.leaf.pem(), chain.intermediate.pem()
        for kind, data in (
            ("cert", leaf),
            ("chain", issuer),
            ("fullchain", leaf + issuer),
            ("privkey", chain.leaf.key_pem()),
        ):
            (archive / f"{kind}{version}.pem").write_bytes(data)
    last = len(chains)
    for kind in ("cert", "chain", "fullchain", "privkey"):
        link = live / f"{kind}.pem"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(archive / f"{kind}{last}.pem", live))
    conf.write_text(
        f"archive_dir = {archive}\n"
        + "".join(f"{kind} = {live / (kind + '.pem')}\n" for kind in ("cert", "privkey", "chain"))
        + f"fullchain = {live / 'fullchain.pem'}\n"
        + "\n[renewalparams]\nauthenticator = standalone\nkey_type = ecdsa\n"
        + "server = https://127.0.0.1:1/dir\n"
        + ("reuse_key = True\n" if reuse_key else "")
    )
    return Lineage(config_dir, name)


@dataclass(frozen=True)
class Site:
    """One test's dane-hook installation: configuration, directories, a certbot tree."""

    root: Path
    config: Path
    state_dir: Path
    served_dir: Path
    certbot_dir: Path

    def dirs(self) -> list[str]:
        return [
            "--config",
            str(self.config),
            "--state-dir",
            str(self.state_dir),
            "--served-dir",
            str(self.served_dir),
            "--certbot-dir",
            str(self.certbot_dir),
        ]


def make_site(root: Path, resolver: str, extra: str = "", auth_port: int | None = None) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    site = Site(root, root / "config.toml", root / "state", root / "served", root / "letsencrypt")
    site.certbot_dir.mkdir(exist_ok=True)
    site.config.write_text(
        f'resolver = "{resolver}"\n'
        f'state_dir = "{site.state_dir}"\n'
        f'served_dir = "{site.served_dir}"\n'
        f'certbot_dir = "{site.certbot_dir}"\n'
        + (f"auth_port = {auth_port}\n" if auth_port else "")
        + extra
    )
    return site


DEAD = f"127.0.0.1:{free_port()}"
"""A resolver nobody answers on (loopback: refused at once)."""
FAST = ["--timeout", "0.3", "--tries", "1"]


@pytest.fixture(scope="module")
def chain_files(tmp_path_factory: pytest.TempPathFactory) -> pki.ChainPaths:
    return pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15").write(
        tmp_path_factory.mktemp("issue15-chain")
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    made = make_site(tmp_path / "site", DEAD)
    monkeypatch.setenv("DANE_HOOK_CONFIG", str(made.config))
    return made


# -- item 1: no key bytes in any output ------------------------------------------------------


@dataclass(frozen=True)
class KeyForm:
    """One private key in one encoding, and the bytes that must never be shown."""

    label: str
    data: bytes
    """The file's content."""
    der: bytes
    """The key's DER in this format (PKCS#8 or traditional)."""

    @property
    def base64_text(self) -> str:
        return base64.b64encode(self.der).decode()


def key_forms() -> list[KeyForm]:
    kinds = {
        "EC P-256": pki.private_key("issue 15 leak P-256", pki.KeyType.ECDSA_P256),
        "EC P-384": pki.private_key("issue 15 leak P-384", pki.KeyType.ECDSA_P384),
        "RSA-2048": pki.private_key("issue 15 leak RSA", pki.KeyType.RSA_2048),
        "Ed25519": pki.private_key("issue 15 leak Ed25519", pki.KeyType.ED25519),
    }
    formats = {
        "PKCS#8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    forms = []
    for kind, key in kinds.items():
        for fmt_name, fmt in formats.items():
            if kind == "Ed25519" and fmt_name == "traditional":
                continue  # RFC 8410 §7: PKCS#8 only
            der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
            pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
            body = b"".join(line + b"\n" for line in pem.splitlines() if b"-----" not in line)
            forms += [
                KeyForm(f"{kind} {fmt_name} PEM", pem, der),
                KeyForm(f"{kind} {fmt_name} PEM body without armour", body, der),
                KeyForm(f"{kind} {fmt_name} DER", der, der),
            ]
    return forms


KEY_FORMS = key_forms()


def leaked(output: str, form: KeyForm) -> str | None:
    """The first 8-byte run of the key's DER, or 8-character run of its base64 text, that the
    output shows (raw, or escaped as Python shows bytes and strings), else None."""
    raw = output.encode("utf-8", "surrogateescape")
    seen_text = {output[i : i + 8] for i in range(len(output) - 7)}
    b64 = form.base64_text
    for i in range(len(b64) - 7):
        if b64[i : i + 8] in seen_text:
            return f"base64 run {b64[i : i + 8]!r}"
    for i in range(len(form.der) - 7):
        run_ = form.der[i : i + 8]
        renderings = (
            run_,
            repr(run_)[2:-1].encode(),
            repr(run_.decode("latin-1"))[1:-1].encode(),
        )
        if any(r in raw for r in renderings):
            return f"DER run {run_.hex()}"
    return None


Builder = Callable[[Path, Path, pki.ChainPaths, Site], tuple[list[str], dict[str, str]]]
"""(key file, a scratch folder, the chain files, the site) -> (argv, environment to set)."""


def _lookup(site: Site) -> list[str]:
    return ["--config", str(site.config), "--state-dir", str(site.state_dir), *FAST]


def _lineage_dir(scratch: Path, files: pki.ChainPaths, **replace: Path) -> Path:
    """A directory with fullchain.pem and privkey.pem (check --lineage), one replaced."""
    folder = scratch / "lineage"
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (("fullchain.pem", files.fullchain), ("privkey.pem", files.key_pkcs8)):
        chosen = replace.get(name.split(".")[0], source)
        (folder / name).write_bytes(chosen.read_bytes())
    return folder


def _certbot_with(scratch: Path, site: Site, files: pki.ChainPaths, kind: str, key: Path) -> str:
    """A certbot lineage in the site's tree whose archive `kind`1.pem is the key file."""
    name = f"leak-{kind}"
    chain = pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15")
    lineage = write_lineage(site.certbot_dir, name, [chain])
    (lineage.archive / f"{kind}1.pem").write_bytes(key.read_bytes())
    return name


def _acme_folder(scratch: Path, files: pki.ChainPaths, **replace: Path) -> dict[str, str]:
    """acme.sh's exports to the reload command, one file replaced by the key."""
    folder = scratch / f"{HOST}_ecc"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "CERT_PATH": (folder / f"{HOST}.cer", files.cert),
        "CERT_KEY_PATH": (folder / f"{HOST}.key", files.key_pkcs8),
        "CA_CERT_PATH": (folder / "ca.cer", files.intermediate),
        "CERT_FULLCHAIN_PATH": (folder / "fullchain.cer", files.fullchain),
    }
    environment = {"Le_Domain": HOST, "DOMAIN_PATH": str(folder)}
    for variable, (path, source) in paths.items():
        path.write_bytes(replace.get(variable, source).read_bytes())
        environment[variable] = str(path)
    (folder / f"{HOST}.conf").write_text(f"Le_Domain='{HOST}'\nLe_Keylength='ec-256'\n")
    return environment


def _first_line(key: Path) -> str:
    """The first base64 line of the key (of its DER, for a DER file): a value a user may
    paste by mistake."""
    data = key.read_bytes()
    if not data.isascii():
        return base64.b64encode(data[:48]).decode()
    lines = [x for x in data.splitlines() if x and b"-----" not in x]
    return lines[0].decode()


LEAK_CASES: dict[str, Builder] = {
    "records --cert": lambda k, s, f, site: (["records", "--cert", str(k)], {}),
    "records --chain": lambda k, s, f, site: (["records", "--chain", str(k)], {}),
    "records --key": lambda k, s, f, site: (["records", "--key", str(k), "--format", "rdata"], {}),
    "records --cert --key (mismatch)": lambda k, s, f, site: (
        ["records", "--cert", str(f.cert), "--key", str(k)],
        {},
    ),
    "match --tlsa": lambda k, s, f, site: (
        ["match", "--chain", str(f.fullchain), "--tlsa", str(k)],
        {},
    ),
    "match --chain": lambda k, s, f, site: (
        ["match", "--chain", str(k), "--record", "3 1 1 " + "00" * 32],
        {},
    ),
    "match --key": lambda k, s, f, site: (
        ["match", "--chain", str(f.fullchain), "--key", str(k), "--record", "3 1 1 " + "00" * 32],
        {},
    ),
    "match --cert": lambda k, s, f, site: (
        ["match", "--chain", str(f.fullchain), "--cert", str(k), "--record", "3 1 1 " + "0" * 64],
        {},
    ),
    "match --record (a key line as the value)": lambda k, s, f, site: (
        ["match", "--chain", str(f.fullchain), "--record", _first_line(k)],
        {},
    ),
    "records --host (a key line as the value)": lambda k, s, f, site: (
        ["records", "--cert", str(f.cert), "--host", _first_line(k)],
        {},
    ),
    "records --params (a key line as the value)": lambda k, s, f, site: (
        ["records", "--cert", str(f.cert), "--params", _first_line(k)],
        {},
    ),
    "catalog add PEM": lambda k, s, f, site: (
        ["catalog", "add", str(k), "--ca", "test", "--status", "active", "--state-dir", str(s)],
        {},
    ),
    "enroll (privkey of the lineage)": lambda k, s, f, site: (
        ["enroll", "--cert-name", _certbot_with(s, site, f, "privkey", k), *site.dirs()],
        {},
    ),
    "enroll (fullchain of the lineage)": lambda k, s, f, site: (
        ["enroll", "--cert-name", _certbot_with(s, site, f, "fullchain", k), *site.dirs()],
        {},
    ),
    "deploy --lineage (privkey)": lambda k, s, f, site: (
        [
            "deploy",
            "--lineage",
            str(site.certbot_dir / "live" / _certbot_with(s, site, f, "privkey", k)),
            *site.dirs(),
            *FAST,
        ],
        {},
    ),
    "deploy --lineage (cert)": lambda k, s, f, site: (
        [
            "deploy",
            "--lineage",
            str(site.certbot_dir / "live" / _certbot_with(s, site, f, "cert", k)),
            *site.dirs(),
            *FAST,
        ],
        {},
    ),
    "pre (a lineage's fullchain)": lambda k, s, f, site: (
        ["pre", *site.dirs(), *FAST] if _certbot_with(s, site, f, "fullchain", k) else [],
        {},
    ),
    "acme-sh pre --key": lambda k, s, f, site: (
        [
            "acme-sh",
            "pre",
            "--key",
            _acme_folder(s, f, CERT_KEY_PATH=k)["CERT_KEY_PATH"],
            *site.dirs(),
            *FAST,
        ],
        {"Le_Domain": HOST},
    ),
}

for _variable in ("CERT_PATH", "CERT_KEY_PATH", "CA_CERT_PATH", "CERT_FULLCHAIN_PATH"):

    def _reload_case(variable: str) -> Builder:
        def build(
            k: Path, s: Path, f: pki.ChainPaths, site: Site
        ) -> tuple[list[str], dict[str, str]]:
            environment = _acme_folder(s, f, **{variable: k})
            return ["acme-sh", "reload", *site.dirs(), *FAST, "--", "true"], environment

        return build

    LEAK_CASES[f"acme-sh reload ${_variable}"] = _reload_case(_variable)

for _command in ("check", "plan"):

    def _check_cases(command: str) -> dict[str, Builder]:
        return {
            f"{command} --chain": lambda k, s, f, site: (
                [command, "--chain", str(k), "--endpoint", HOST, *_lookup(site)],
                {},
            ),
            f"{command} --cert": lambda k, s, f, site: (
                [command, "--cert", str(k), "--key", str(f.key_pkcs8), *_lookup(site)],
                {},
            ),
            f"{command} --key": lambda k, s, f, site: (
                [
                    command,
                    "--cert",
                    str(f.cert),
                    "--key",
                    str(k),
                    "--endpoint",
                    HOST,
                    *_lookup(site),
                ],
                {},
            ),
            f"{command} --lineage (privkey.pem)": lambda k, s, f, site: (
                [command, "--lineage", str(_lineage_dir(s, f, privkey=k)), *_lookup(site)],
                {},
            ),
            f"{command} --lineage (fullchain.pem)": lambda k, s, f, site: (
                [command, "--lineage", str(_lineage_dir(s, f, fullchain=k)), *_lookup(site)],
                {},
            ),
            f"{command} --current": lambda k, s, f, site: (
                [command, "--chain", str(f.fullchain), "--current", str(k), *_lookup(site)],
                {},
            ),
            f"{command} --config": lambda k, s, f, site: (
                [command, "--chain", str(f.fullchain), "--config", str(k), *FAST],
                {},
            ),
            f"{command} --endpoint (a key line as the value)": lambda k, s, f, site: (
                [
                    command,
                    "--chain",
                    str(f.fullchain),
                    "--endpoint",
                    _first_line(k),
                    *_lookup(site),
                ],
                {},
            ),
        }

    LEAK_CASES.update(_check_cases(_command))

for _argv in (
    ["enroll", "--cert-name", "x"],
    ["deploy", "--lineage", "/nonexistent/live/x"],
    ["pre"],
    ["release"],
    ["status"],
    ["rollback", "--cert-name", "x"],
    ["acme-sh", "pre", "--domain", HOST],
    ["acme-sh", "reload"],
    ["records", "--cert", "/nonexistent", "--issuers", "catalog"],
):

    def _config_case(argv: list[str]) -> Builder:
        return lambda k, s, f, site: ([*argv, "--config", str(k), *FAST], {})

    LEAK_CASES[f"{' '.join(_argv[:2])} --config"] = _config_case(_argv)


def _config_value_case(template: str) -> Builder:
    def build(k: Path, s: Path, f: pki.ChainPaths, site: Site) -> tuple[list[str], dict[str, str]]:
        config = s / "config.toml"
        value = _first_line(k).replace("\\", "\\\\").replace('"', '\\"')
        config.write_text(template.format(value=value, state=site.state_dir))
        return ["check", "--chain", str(f.fullchain), "--config", str(config), *FAST], {}

    return build


LEAK_CASES["configuration value resolver"] = _config_value_case(
    'resolver = "{value}"\nstate_dir = "{state}"\n'
)
LEAK_CASES["configuration value lineage endpoints"] = _config_value_case(
    f'resolver = "{DEAD}"\nstate_dir = "{{state}}"\n[lineage.x]\nendpoints = ["{{value}}"]\n'
)
LEAK_CASES["environment Le_Domain (acme-sh pre)"] = lambda k, s, f, site: (
    ["acme-sh", "pre", *site.dirs(), *FAST],
    {"Le_Domain": _first_line(k), "DOMAIN_PATH": str(s)},
)
LEAK_CASES["environment RENEWED_LINEAGE (deploy)"] = lambda k, s, f, site: (
    ["deploy", *site.dirs(), *FAST],
    {"RENEWED_LINEAGE": _first_line(k)},
)


@pytest.mark.parametrize("case", list(LEAK_CASES))
def test_item1_no_private_key_bytes_in_any_output(
    case: str,
    tmp_path: Path,
    chain_files: pki.ChainPaths,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every kind of private key given to the option: no 8-byte run of its DER nor of its
    base64 text in stdout or stderr (issue 15 item 1)."""
    leaks = []
    for index, form in enumerate(KEY_FORMS):
        scratch = tmp_path / f"k{index}"
        scratch.mkdir()
        key = scratch / ("key.der" if form.label.endswith("DER") else "key.pem")
        key.write_bytes(form.data)
        site = make_site(scratch / "site", DEAD)
        argv, environment = LEAK_CASES[case](key, scratch, chain_files, site)
        with monkeypatch.context() as patch:
            for variable in ("CERT_PATH", "CERT_KEY_PATH", "CA_CERT_PATH", "CERT_FULLCHAIN_PATH"):
                patch.delenv(variable, raising=False)
            patch.setenv("DANE_HOOK_CONFIG", str(site.config))
            for name, value in environment.items():
                patch.setenv(name, value)
            code, out, err = run(capsys, *argv)
        found = leaked(out + err, form)
        if found:
            leaks.append(f"{form.label} (exit {code}): {found}: {(out + err)[:300]!r}")
    assert not leaks, "\n".join(leaks)


# -- item 2: records of a CA certificate -----------------------------------------------------


@pytest.mark.parametrize("fmt", ["rdata", "json"])
def test_item2_records_of_every_catalog_ca_certificate_in_formats_without_owner(
    fmt: str, capsys: pytest.CaptureFixture[str], site: Site
) -> None:
    failed = []
    for pem in catalog_certificates():
        code, _out, err = run(capsys, "records", "--cert", str(pem), "--format", fmt)
        if code != 0:
            failed.append(f"{pem.name}: exit {code}: {err.strip()}")
    assert not failed, f"{len(failed)} of {len(catalog_certificates())}:\n" + "\n".join(failed)


@pytest.mark.parametrize("fmt", ["zone", "nsupdate"])
def test_item2_zone_lines_of_a_ca_certificate_ask_for_a_host(
    fmt: str, capsys: pytest.CaptureFixture[str], site: Site
) -> None:
    wrong = []
    for pem in catalog_certificates():
        code, out, err = run(capsys, "records", "--cert", str(pem), "--format", fmt)
        expected = "no DNS name in this certificate: give --host or --name"
        if code != 2 or expected not in err or "_25._tcp." in out:
            wrong.append(f"{pem.name}: exit {code}: {err.strip()} {out[:80]!r}")
    assert not wrong, "\n".join(wrong)


def test_item2_a_wildcard_only_leaf_says_its_names_are_wildcards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], site: Site
) -> None:
    cast = pki.Cast()
    cert = tmp_path / "wildcard.pem"
    cert.write_bytes(cast.wildcard_leaf.pem())
    code, out, err = run(capsys, "records", "--cert", str(cert))
    assert code == 2, (code, out, err)
    assert "wildcard" in err and "host name" in err, err


# -- item 3: names ---------------------------------------------------------------------------

NOT_UTF8 = b"m\xffail.example.test"


def test_item3_non_utf8_names_are_not_a_dns_name(chain_files: pki.ChainPaths, site: Site) -> None:
    env = {**os.environ, "DANE_HOOK_CONFIG": str(site.config)}
    cases: dict[str, list[str | bytes]] = {
        "records --host": ["records", "--cert", str(chain_files.cert), "--host", NOT_UTF8],
        "records --name": [
            "records",
            "--cert",
            str(chain_files.cert),
            "--name",
            b"_25._tcp." + NOT_UTF8,
        ],
        "check --endpoint": [
            "check",
            "--chain",
            str(chain_files.fullchain),
            "--endpoint",
            NOT_UTF8,
            *FAST,
        ],
        "plan --endpoint": [
            "plan",
            "--chain",
            str(chain_files.fullchain),
            "--endpoint",
            NOT_UTF8,
            *FAST,
        ],
    }
    wrong = []
    for label, argv in cases.items():
        done = console(*argv, env=env)
        if done.returncode not in (2, 3) or "not a DNS name" not in done.err:
            wrong.append(f"{label}: exit {done.returncode}: {done.err.strip()}")
    assert not wrong, "\n".join(wrong)


def test_item3_non_utf8_le_domain_in_acme_sh_pre(tmp_path: Path, site: Site) -> None:
    folder = tmp_path / "acme"
    folder.mkdir()
    key = folder / "m.key"
    key.write_bytes(
        pki.private_key("issue 15").private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    env: dict[str, str | bytes] = {
        **os.environ,
        "DANE_HOOK_CONFIG": str(site.config),
        "DOMAIN_PATH": str(folder),
        "Le_Domain": NOT_UTF8,
    }
    done = console("acme-sh", "pre", "--key", str(key), *FAST, env=env)
    assert done.returncode in (2, 3), done
    assert "not a DNS name" in done.err and "internal error" not in done.err, done.err


@pytest.mark.parametrize("fmt", ["zone", "nsupdate"])
def test_item3_an_idn_host_is_published_as_its_a_labels(
    fmt: str, chain_files: pki.ChainPaths, capsys: pytest.CaptureFixture[str], site: Site
) -> None:
    host = "mäil.example.test"
    a_label = "xn--mil-qla.example.test"  # IDNA 2008 and 2003 agree on this label
    code, out, err = run(
        capsys, "records", "--cert", str(chain_files.cert), "--host", host, "--format", fmt
    )
    assert code == 0, err
    data = [line for line in out.splitlines() if line.strip() and not line.startswith((";", "#"))]
    assert data and all("mäil" not in line for line in data), out
    assert any(f"_25._tcp.{a_label}" in line for line in data), out


def test_item3_a_non_utf8_file_name_is_shown_one_way(tmp_path: Path, site: Site) -> None:
    missing = os.fsencode(tmp_path) + b"/m\xffissing.pem"
    env = {**os.environ, "DANE_HOOK_CONFIG": str(site.config)}
    runs = [
        console("records", "--cert", missing, env=env),
        console("match", "--chain", missing, "--record", "3 1 1 " + "00" * 32, env=env),
        console("check", "--chain", missing, *FAST, env=env),
    ]
    for done in runs:
        assert done.returncode == 3, done
        assert "internal error" not in done.err, done.err
    renderings = ["m\\xffissing", "m\\udcffissing", "m\ufffdissing", "m%FFissing"]
    shown = [{r for r in renderings if r in done.err} for done in runs]
    assert shown[0] and all(s == shown[0] for s in shown), [d.err for d in runs]


# -- item 4: exit codes ----------------------------------------------------------------------


def readme_exit_table() -> dict[int, str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    return {
        int(m.group(1)): m.group(2).strip()
        for m in re.finditer(r"^\|\s*(\d+)\s*\|\s*([^|]+)\|", section, re.MULTILINE)
    }


def test_item4_readme_exit_table_is_the_enum() -> None:
    exit_codes = importlib.import_module("dane_hook.exitcodes")
    enum = {int(member): member.name for member in exit_codes.ExitCode}
    table = readme_exit_table()
    assert set(table) == set(enum), (table, enum)
    for code, name in enum.items():
        label = table[code].split(":", 1)[0].lower()
        assert label.startswith(name.lower().replace("_", " ")), (code, name, table[code])
    # 4 is "cannot decide (lookup failed)": the file problems below are not that.
    assert "lookup" in table[4]


def test_item4_every_documented_code_has_a_real_cause(
    chain_files: pki.ChainPaths,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    site: Site,
    dns_lab: DnsLab,
    lab_resolver: object,
    auth_port: int,
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    lab = make_site(tmp_path / "lab", str(lab_resolver), auth_port=auth_port)
    fresh = f"issue15-wait-{os.getpid()}.example.test"
    leaf_record = pki.rdata(
        pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15").leaf, 3, 1, 1
    )
    dns_lab.add_records(f"_25._tcp.{fresh}.", 300, [leaf_record])
    # 6: an enrolled lineage whose publisher's primary does not answer (a loopback port
    # nobody listens on): the update cannot be sent.
    tsig = tmp_path / "tsig.key"
    secret = base64.b64encode(b"issue 15 walk of the exit codes!").decode()
    tsig.write_text(f'key "walk." {{\n\talgorithm hmac-sha256;\n\tsecret "{secret}";\n}};\n')
    tsig.chmod(0o600)
    down = make_site(
        tmp_path / "down",
        str(lab_resolver),
        auth_port=auth_port,
        extra=f'[lineage."{HOST}"]\npublish = "down"\nendpoints = ["{fresh}"]\n'
        f'[publisher.down]\ntype = "rfc2136"\nkey_file = "{tsig}"\nserver = "127.0.0.1"\n'
        f"port = {free_port()}\ntimeout = 1\n",
    )
    write_lineage(down.certbot_dir, HOST, [pki.issued_chain(pki.KeyType.ECDSA_P256, label="6")])
    code, _out, err = run(capsys, "enroll", "--cert-name", HOST, *down.dirs())
    assert code == 0, err
    causes: dict[int, list[str]] = {
        0: ["records", "--cert", str(chain_files.cert), "--format", "rdata"],
        1: ["match", "--chain", str(chain_files.fullchain), "--record", "3 1 1 " + "00" * 32],
        2: ["records"],
        3: ["records", "--cert", str(bad)],
        4: ["check", "--chain", str(chain_files.fullchain), "--endpoint", HOST, *FAST],
        5: [
            "check",
            "--chain",
            str(chain_files.fullchain),
            "--endpoint",
            fresh,
            "--config",
            str(lab.config),
        ],
        6: ["publish", "--cert-name", HOST, *down.dirs()],
    }
    assert set(causes) == set(readme_exit_table())
    wrong = []
    for expected, argv in causes.items():
        code, _out, err = run(capsys, *argv)
        if code != expected:
            wrong.append(f"{expected}: got {code}: {' '.join(argv)}: {err.strip()}")
    assert not wrong, "\n".join(wrong)


@pytest.fixture
def enrolled(site: Site, capsys: pytest.CaptureFixture[str]) -> Lineage:
    chain = pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15")
    lineage = write_lineage(site.certbot_dir, HOST, [chain])
    code, _out, err = run(capsys, "enroll", "--cert-name", HOST, *site.dirs())
    assert code == 0, err
    return lineage


def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("")
    return path


FILE_PROBLEMS: dict[str, Callable[[Path, Site, pki.ChainPaths], list[str]]] = {
    "state directory below a file (cannot be created)": lambda t, site, f: [
        "release",
        *site.dirs(),
        "--state-dir",
        str(_a_file(t) / "state"),
    ],
    "state directory's lock is a directory (cannot be locked)": lambda t, site, f: [
        "release",
        *site.dirs(),
        "--state-dir",
        str(_locked_out(t)),
    ],
    "catalog add without a writable overlay": lambda t, site, f: [
        "catalog",
        "add",
        str(f.intermediate),
        "--ca",
        "test",
        "--status",
        "active",
        "--state-dir",
        str(_a_file(t) / "state"),
    ],
    "enroll: the private key cannot be read": lambda t, site, f: [
        "enroll",
        "--cert-name",
        _unreadable_key_lineage(site),
        *site.dirs(),
    ],
    "deploy: the private key cannot be read": lambda t, site, f: [
        "deploy",
        "--lineage",
        str(site.certbot_dir / "live" / _unreadable_key_lineage(site)),
        *site.dirs(),
        *FAST,
    ],
}


def _locked_out(tmp_path: Path) -> Path:
    state = tmp_path / "locked-state"
    (state / "state.lock").mkdir(parents=True)
    return state


def _unreadable_key_lineage(site: Site) -> str:
    name = "unreadable.example.test"
    lineage = write_lineage(
        site.certbot_dir, name, [pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15")]
    )
    key = lineage.archive / "privkey1.pem"
    key.unlink()
    key.mkdir()  # as root, a mode cannot make a file unreadable; a directory is
    return name


@pytest.mark.parametrize("case", list(FILE_PROBLEMS))
def test_item4_file_permission_and_lock_problems_are_exit_3(
    case: str,
    tmp_path: Path,
    site: Site,
    chain_files: pki.ChainPaths,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _out, err = run(capsys, *FILE_PROBLEMS[case](tmp_path, site, chain_files))
    assert code == 3, (code, err)
    assert len(err.strip().splitlines()) == 1, err


def test_item4_rollback_without_a_previous_version_is_a_documented_refusal(
    enrolled: Lineage, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(capsys, "rollback", "--cert-name", HOST, *site.dirs())
    assert code != 0 and code != 4, (code, err)
    assert code in readme_exit_table(), code
    assert len(err.strip().splitlines()) == 1 and "previous" in err, err
    assert "internal error" not in err


def test_item4_status_of_an_unknown_lineage_fails_like_rollback(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    rollback, _, rollback_err = run(capsys, "rollback", "--cert-name", "unknown.test", *site.dirs())
    status, out, err = run(capsys, "status", "--cert-name", "unknown.test", *site.dirs(), *FAST)
    assert rollback != 0, rollback_err
    assert status == rollback, (status, out, err)


# -- item 5: configuration values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("auth_port = true\n", "auth_port"),
        ('resolver = "not an address"\n', "resolver"),
        ('resolver = "127.0.0.1:99999"\n', "resolver"),
        ('[lineage.x]\nendpoints = ["not a name!!"]\n', "endpoints"),
    ],
)
def test_item5_configuration_values_are_checked_when_read(
    text: str,
    key: str,
    tmp_path: Path,
    chain_files: pki.ChainPaths,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.toml"
    resolver = "" if key == "resolver" else f'resolver = "{DEAD}"\n'
    config.write_text(resolver + f'state_dir = "{tmp_path / "state"}"\n' + text)
    code, _out, err = run(
        capsys, "check", "--chain", str(chain_files.fullchain), "--config", str(config), *FAST
    )
    assert code == 3, (code, err)
    assert str(config) in err and key in err, err


# -- item 6: lineage names become paths ------------------------------------------------------


def _outside_lineage(site: Site) -> str:
    """A complete lineage reachable from the certbot tree only through '../..'."""
    outside = site.certbot_dir.parent
    for part in ("live", "archive", "renewal"):  # certbot's own folders, which '..' climbs
        (site.certbot_dir / part).mkdir(exist_ok=True)
    chain = pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15")
    write_lineage(
        site.certbot_dir,
        "evil",
        [chain],
        live=outside / "evil",
        archive=outside / "evil-archive",
        conf=outside / "evil.conf",
    )
    return "../../evil"


@pytest.mark.parametrize(
    "argv",
    [
        ["enroll", "--cert-name", "NAME"],
        ["rollback", "--cert-name", "NAME"],
        ["status", "--cert-name", "NAME", *FAST],
        ["release", "--cert-name", "NAME", *FAST],
    ],
    ids=lambda a: a[0],
)
def test_item6_lineage_names_are_checked_as_certbot_checks_them(
    argv: list[str], site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _outside_lineage(site)
    code, out, err = run(capsys, *[name if a == "NAME" else a for a in argv], *site.dirs())
    assert code in (2, 3), (code, out, err)
    assert "lineage name" in err or "not a certificate name" in err, err
    # served_dir / "../../evil" would be outside the served views
    assert not (site.root.parent / "evil").exists()


# -- item 7: hints name only options the command has -----------------------------------------


def test_item7_acme_sh_reload_hint_names_only_its_own_options(
    tmp_path: Path,
    chain_files: pki.ChainPaths,
    site: Site,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = _acme_folder(tmp_path, chain_files, CERT_PATH=chain_files.key_pkcs8)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code, _out, err = run(capsys, "acme-sh", "reload", *site.dirs(), *FAST, "--", "true")
    assert code == 3, err
    named = set(re.findall(r"(--[a-z][a-z0-9-]*)", err))
    assert named <= options_of("acme-sh", "reload"), (named, err)


HINT_CASES: dict[str, Callable[[Path, pki.ChainPaths], list[str]]] = {
    "records --cert KEY": lambda t, f: ["records", "--cert", str(f.key_pkcs8)],
    "records --key CERT": lambda t, f: ["records", "--key", str(f.cert)],
    "match --chain KEY": lambda t, f: [
        "match",
        "--chain",
        str(f.key_pkcs8),
        "--record",
        "3 1 1 00",
    ],
    "check --chain KEY": lambda t, f: ["check", "--chain", str(f.key_pkcs8), *FAST],
    "acme-sh pre --key CERT": lambda t, f: ["acme-sh", "pre", "--key", str(f.cert), *FAST],
    "records zone without names": lambda t, f: ["records", "--key", str(f.key_pkcs8)],
}


@pytest.mark.parametrize("case", list(HINT_CASES))
def test_item7_every_hint_names_options_of_its_command(
    case: str,
    tmp_path: Path,
    chain_files: pki.ChainPaths,
    site: Site,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = HINT_CASES[case](tmp_path, chain_files)
    _code, _out, err = run(capsys, *argv)
    command = argv[:2] if argv[0] == "acme-sh" else argv[:1]
    named = set(re.findall(r"(--[a-z][a-z0-9-]*)", err))
    assert named <= options_of(*command), (named - options_of(*command), err)


# -- item 8c: what the README says about acme.sh ---------------------------------------------


def test_item8c_readme_claims_no_rerun_of_a_failed_reload_command() -> None:
    """acme.sh 3.1.4 `_installcert`: a failed reload command is logged ("Reload error for:")
    and nothing runs it again; only `dane-hook release` does."""
    text = " ".join((REPO / "README.md").read_text().split())
    assert "runs the reload command again" not in text
    assert "acme.sh runs the reload command again after a failed one" not in text


# -- item 9: friction ------------------------------------------------------------------------


def test_item9_install_sh_prefers_the_systems_python_and_says_which() -> None:
    text = (REPO / "install.sh").read_text()
    assert "/usr/bin/python3" in text
    venv = re.search(r"^\s*(\S+) -m venv", text, re.MULTILINE)
    assert venv and venv.group(1) != "python3", venv
    assert re.search(r"echo .*(python|\$PYTHON)", text, re.IGNORECASE), "does not say which"


@pytest.mark.parametrize("command", ["check", "plan"])
def test_item9_questions_answer_without_a_writable_state_directory(
    command: str,
    tmp_path: Path,
    chain_files: pki.ChainPaths,
    capsys: pytest.CaptureFixture[str],
    lab_resolver: object,
    auth_port: int,
) -> None:
    lab = make_site(tmp_path / "lab", str(lab_resolver), auth_port=auth_port)
    base = [command, "--chain", str(chain_files.fullchain), "--endpoint", "mail.example.test"]
    base += ["--config", str(lab.config)]
    writable, _, _ = run(capsys, *base, "--state-dir", str(tmp_path / "state"))
    code, _out, err = run(capsys, *base, "--state-dir", str(_a_file(tmp_path) / "state"))
    assert code == writable, (code, err)
    assert len([line for line in err.splitlines() if "first-seen" in line or "state" in line]) == 1


def test_item9_status_does_not_call_the_served_chain_new(
    enrolled: Lineage,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lab_resolver: object,
    auth_port: int,
) -> None:
    extra = f'[lineage."{HOST}"]\nendpoints = ["mail.example.test"]\n'
    lab = make_site(tmp_path / "lab", str(lab_resolver), extra=extra, auth_port=auth_port)
    dirs = [
        "--config",
        str(lab.config),
        "--state-dir",
        str(tmp_path / "site" / "state"),
        "--served-dir",
        str(tmp_path / "site" / "served"),
        "--certbot-dir",
        str(enrolled.config_dir),
    ]
    for argv in (["status", *dirs], ["pre", *dirs]):
        _code, out, err = run(capsys, *argv)
        assert "the new chain would fail" not in out + err, (argv[0], out)


@pytest.mark.parametrize(
    ("command", "option"), [(["rollback"], "--cert-name"), (["records"], "--config")]
)
def test_item9_help_texts(command: list[str], option: str) -> None:
    text = subprocess.run(
        [str(CONSOLE), *command, "--help"], capture_output=True, text=True, check=False
    ).stdout
    assert option in text, text
    found = re.search(rf"^\s+{option}(?: [A-Z_]+)?(.*)\n(\s*)(\S?.*)$", text, re.MULTILINE)
    assert found, text
    same_line, next_line = found.group(1).strip(), found.group(3).strip()
    assert same_line or (next_line and not next_line.startswith("-")), text


# -- item 11: a closed stdout ----------------------------------------------------------------


CLOSED_PIPE_CASES: dict[str, Callable[[Site, pki.ChainPaths], list[str]]] = {
    "pre": lambda site, f: ["pre", *site.dirs(), *FAST],
    "records": lambda site, f: ["records", "--chain", str(f.fullchain), "--host", HOST],
    "match": lambda site, f: [
        "match",
        "--chain",
        str(f.fullchain),
        "--record",
        "3 1 1 " + "0" * 64,
    ],
    "check": lambda site, f: [
        "check",
        "--chain",
        str(f.fullchain),
        "--config",
        str(site.config),
        *FAST,
    ],
    "plan": lambda site, f: [
        "plan",
        "--chain",
        str(f.fullchain),
        "--config",
        str(site.config),
        *FAST,
    ],
    "status": lambda site, f: ["status", *site.dirs(), *FAST],
    "catalog show": lambda site, f: ["catalog", "show", "--state-dir", str(site.state_dir)],
    "--help": lambda site, f: ["--help"],
}


@pytest.mark.parametrize("case", list(CLOSED_PIPE_CASES))
def test_item11_a_closed_stdout_is_handled_quietly(
    case: str, site: Site, chain_files: pki.ChainPaths
) -> None:
    write_lineage(
        site.certbot_dir, HOST, [pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15")]
    )
    argv = CLOSED_PIPE_CASES[case](site, chain_files)
    env = {**os.environ, "DANE_HOOK_CONFIG": str(site.config)}
    with open(os.devnull, "wb") as null:
        expected = console(*argv, env=env, stdout=null.fileno()).returncode
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -1` that has already gone
    try:
        done = console(*argv, env=env, stdout=write_end)
    finally:
        os.close(write_end)
    assert "internal error" not in done.err and "BrokenPipe" not in done.err, done.err
    assert "Exception ignored" not in done.err, done.err
    assert done.returncode == expected, (done.returncode, expected, done.err)


def test_item11_dane_hook_pre_into_head(site: Site) -> None:
    """The shell pipeline of the report, literally."""
    write_lineage(
        site.certbot_dir, HOST, [pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15")]
    )
    command = f"{CONSOLE} pre {' '.join(site.dirs())} {' '.join(FAST)} | head -c 0; "
    command += 'echo "status ${PIPESTATUS[0]}" >&2'
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False
    )
    assert "internal error" not in done.stderr, done.stderr
    assert "status 4" in done.stderr  # the lookup failed (dead resolver): that is the work's


# -- item 12: a pin of a retired intermediate ------------------------------------------------


def test_item12_a_retired_intermediates_pin_moves_to_remove_later_while_served(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dns_lab: DnsLab,
    lab_resolver: object,
    auth_port: int,
) -> None:
    chain = pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15 retired")
    files = chain.write(tmp_path / "chain")
    state = tmp_path / "state"
    code, out, err = run(
        capsys,
        "catalog",
        "add",
        str(files.intermediate),
        str(files.root),
        "--ca",
        "letsencrypt",
        "--status",
        "retired",
        "--state-dir",
        str(state),
    )
    assert code == 0, err
    name = f"issue15-retired-{os.getpid()}.example.test"
    leaf_311 = pki.rdata(chain.leaf, 3, 1, 1)
    issuer_211 = pki.rdata(chain.intermediate, 2, 1, 1)
    dns_lab.add_records(f"_25._tcp.{name}.", 300, [leaf_311, issuer_211])
    lab = make_site(tmp_path / "lab", str(lab_resolver), auth_port=auth_port)
    code, out, err = run(
        capsys,
        "plan",
        "--chain",
        str(files.fullchain),
        "--endpoint",
        name,
        "--config",
        str(lab.config),
        "--state-dir",
        str(state),
        "--format",
        "json",
    )
    document = json.loads(out)
    endpoint = document["plans"][0]["endpoints"][0]
    assert any("retired" in note for note in endpoint["catalog"]), endpoint
    assert issuer_211 not in endpoint["remove"], endpoint
    assert issuer_211 in endpoint["remove_later"], endpoint


def test_item12_readme_plan_json_lists_every_field(
    chain_files: pki.ChainPaths,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    lab_resolver: object,
    auth_port: int,
) -> None:
    lab = make_site(tmp_path / "lab", str(lab_resolver), auth_port=auth_port)
    _code, out, _err = run(
        capsys,
        "plan",
        "--chain",
        str(chain_files.fullchain),
        "--endpoint",
        "mail.example.test",
        "--config",
        str(lab.config),
        "--format",
        "json",
    )
    document = json.loads(out)
    text = (REPO / "README.md").read_text()
    section = text.split("- `plan`:", 1)[1].split("\n- `", 1)[0]
    fields = set(document) | set(document["plans"][0]) | set(document["plans"][0]["endpoints"][0])
    # A list field is written `plans[]`, as in every section of the README.
    missing = {f for f in fields if f"`{f}`" not in section and f"`{f}[]`" not in section}
    missing -= {"schema_version"}
    assert not missing, missing


# -- item 13: what an administrator trips on -------------------------------------------------


def test_item13a_enroll_gives_only_advice_that_works_and_warns_without_hooks(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    write_lineage(
        site.certbot_dir, HOST, [pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15")]
    )
    code, out, err = run(capsys, "enroll", "--cert-name", HOST, *site.dirs())
    assert code == 0, err
    assert "certbot renew --pre-hook" not in out + err, out
    assert "renewal-hooks" in out + err, out
    assert "warning" in (out + err).lower(), out  # no drop-in, no renew_hook: not run


def test_item13a_readme_does_not_say_renew_stores_the_hooks() -> None:
    text = " ".join((REPO / "README.md").read_text().split())
    assert "certbot renew --pre-hook 'dane-hook pre' --deploy-hook 'dane-hook deploy'" not in text


def test_item13b_while_held_release_runs_within_minutes_of_the_earliest_time() -> None:
    """Either the timer runs often while something is held, or release schedules its own next
    run at the earliest safe time; the packaged hourly timer alone does neither."""
    units = REPO / "packaging" / "systemd"
    timer = (units / "dane-hook-release.timer").read_text()
    service = (units / "dane-hook-release.service").read_text()
    hourly = "OnCalendar=hourly" in timer
    schedules = "systemd-run" in service or "--schedule" in service or "OnUnitActiveSec" in timer
    assert not hourly or schedules, timer


def test_item13c_plan_step_2_names_release_not_check(
    chain_files: pki.ChainPaths,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    lab_resolver: object,
    auth_port: int,
) -> None:
    lab = make_site(tmp_path / "lab", str(lab_resolver), auth_port=auth_port)
    _code, out, _err = run(
        capsys,
        "plan",
        "--chain",
        str(chain_files.fullchain),
        "--endpoint",
        "mail.example.test",
        "--config",
        str(lab.config),
    )
    assert "dane-hook check again" not in out, out
    assert "dane-hook release" in out, out


def test_item13d_the_pre_hook_does_not_say_wait_before_renewing_in_a_run_that_renews(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lab_resolver: object, auth_port: int
) -> None:
    """certbot runs the pre-hook only in a run that renews at once: "wait before renewing" in
    it is advice nobody can follow."""
    extra = f'[lineage."{HOST}"]\nendpoints = ["mail.example.test"]\n'
    lab = make_site(tmp_path / "lab", str(lab_resolver), extra=extra, auth_port=auth_port)
    write_lineage(
        lab.certbot_dir, HOST, [pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15")]
    )
    _code, out, _err = run(capsys, "pre", *lab.dirs())
    assert "NOT covered" in out, out  # the situation of the report: a new key is coming
    assert "before renewing" not in out, out


@pytest.fixture
def held(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lab_resolver: object,
    auth_port: int,
    dns_lab: DnsLab,
) -> Iterator[tuple[Site, str]]:
    """An enrolled lineage whose renewal (a new key) is held: its 3 1 1 is not published."""
    name = f"issue15-held-{os.getpid()}.example.test"
    extra = f'[lineage."{name}"]\nendpoints = ["{name}"]\n'
    lab = make_site(tmp_path / "lab", str(lab_resolver), extra=extra, auth_port=auth_port)
    first = pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15 held v1")
    second = pki.issued_chain(pki.KeyType.ECDSA_P256, label="issue 15 held v2")
    dns_lab.add_records(f"_25._tcp.{name}.", 300, [pki.rdata(first.leaf, 3, 1, 1)])
    write_lineage(lab.certbot_dir, name, [first])
    code, out, err = run(capsys, "enroll", "--cert-name", name, *lab.dirs())
    assert code == 0, err
    lineage = write_lineage(lab.certbot_dir, name, [first, second])
    code, out, err = run(capsys, "deploy", "--lineage", str(lineage.live), *lab.dirs())
    assert code == 1 and "HELD" in out, (code, out, err)
    yield lab, name


def test_item13e_status_exits_with_the_worst_state_it_shows(
    held: tuple[Site, str], capsys: pytest.CaptureFixture[str]
) -> None:
    lab, _name = held
    code, out, _err = run(capsys, "status", *lab.dirs())
    assert "HELD" in out, out
    assert code == 1, (code, out)
