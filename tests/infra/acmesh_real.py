"""The real acme.sh 3.1.4 script, run against the test Pebble with its home in a temporary dir.

The script is the unmodified upstream acme.sh (shared/tools/acme.sh, see its SOURCE.txt). It is
found through $DANE_HOOK_ACMESH or the `shared` directory beside the repository; `find_acme_sh()`
says why when neither is there, so that a test can skip with that reason.

What acme.sh 3.1.4 does that the harness relies on (file acme.sh of 3.1.4):
- `--home DIR` is LE_WORKING_DIR; with `--config-home DIR` too, nothing is written to $HOME.
- `--server URL --ca-bundle FILE`: the ACME directory, and the CA that curl trusts for it
  (`_ACME_CURL --cacert $CA_BUNDLE`); the bundle is saved in the account conf.
- `--standalone --httpport PORT --local-address 127.0.0.1`: _startserver() answers HTTP-01 with
  socat (`TCP-LISTEN:PORT,...,bind=ADDR`), or with a python one-liner when socat is missing.
- issue(): _on_before_issue() runs the pre-hook first, `( export Le_Domain; export Le_Alt;
  cd "$DOMAIN_PATH" && eval "$_chk_pre_hook" )`, and a non-zero status aborts ("Error occurred
  when running pre hook.") before the key is touched. Then `export Le_Next_Domain_Key=
  "$CERT_KEY_PATH.next"`; with Le_ForceNewDomainKey=1 and that file present it becomes the key
  (`cat .next >key; echo "" >.next`), and with Le_ForceNewDomainKey set a new .next is staged.
- installcert() / _installcert(): copies the files to the --*-file paths, then runs the reload
  command in `( export CERT_PATH ...; export Le_Next_Domain_Key; cd "$DOMAIN_PATH" && eval )`;
  a failure is only logged ("Reload error for: DOMAIN"), nothing reruns it.
- An ECC key (the default, ec-256) lives in "$CERT_HOME/${domain}_ecc".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENT_VARIABLE = "DANE_HOOK_ACMESH"
"""Names the acme.sh script to run; else ../shared/tools/acme.sh/acme.sh beside the repo."""

RUN_TIMEOUT = 180.0
"""Longest one acme.sh run may take (an issuance against Pebble takes a few seconds)."""

# Variables of the calling shell that must not reach acme.sh or its hooks: acme.sh's and
# dane-hook's own (a hook must see only what acme.sh exports), and proxies (loopback only).
_DROPPED_PREFIXES = ("CERT_", "CA_CERT_", "Le_", "LE_", "ACME_", "DANE_HOOK_", "DOMAIN_PATH")
_PROXIES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def find_acme_sh() -> tuple[Path | None, str]:
    """(the script, "") or (None, why it is not there): a reason fit for pytest.skip."""
    named = os.environ.get(ENVIRONMENT_VARIABLE)
    if named:
        path = Path(named)
        if path.is_file():
            return path, ""
        return None, f"${ENVIRONMENT_VARIABLE} names {named}, which is not a file"
    beside = repo_root().parent / "shared" / "tools" / "acme.sh" / "acme.sh"
    if beside.is_file():
        return beside, ""
    return None, (
        f"the real acme.sh is not here: set ${ENVIRONMENT_VARIABLE} to acme.sh 3.1.x, or put it "
        "in shared/tools/acme.sh/ beside the repository"
    )


def standalone_server() -> str:
    """What acme.sh's --standalone will listen with; socat is what it prefers."""
    if shutil.which("socat"):
        return "socat"
    if shutil.which("python3"):
        return "python3"
    return ""


@dataclass(frozen=True, repr=False)
class Run:
    """One acme.sh run: its exit status and its log on stdout/stderr."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __repr__(self) -> str:  # shown whole by a failing assert
        return f"acme.sh {' '.join(self.args)} -> {self.returncode}\n{self.output}"


@dataclass(frozen=True)
class DomainFiles:
    """acme.sh's own files of one ECC domain, in "$CERT_HOME/${domain}_ecc"."""

    folder: Path
    name: str

    @property
    def key(self) -> Path:
        return self.folder / f"{self.name}.key"

    @property
    def next_key(self) -> Path:
        """Le_Next_Domain_Key: the key staged for the next issuance."""
        return self.folder / f"{self.name}.key.next"

    @property
    def cert(self) -> Path:
        return self.folder / f"{self.name}.cer"

    @property
    def ca(self) -> Path:
        return self.folder / "ca.cer"

    @property
    def fullchain(self) -> Path:
        return self.folder / "fullchain.cer"

    @property
    def conf(self) -> Path:
        return self.folder / f"{self.name}.conf"

    def conf_value(self, key: str) -> str:
        """A KEY='value' line of the domain conf, as _save_conf writes it ("" when absent)."""
        if not self.conf.is_file():
            return ""
        for line in self.conf.read_text().splitlines():
            if line.startswith(f"{key}="):
                return line.split("=", 1)[1].strip("'\"")
        return ""

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the folder (not the backups): to show what a run changed."""
        return {p.name: p.read_bytes() for p in sorted(self.folder.iterdir()) if p.is_file()}


@dataclass(frozen=True)
class AcmeSh:
    """The real acme.sh with `--home home`, talking to `server` (Pebble) over HTTPS."""

    script: Path
    home: Path
    server: str
    ca_bundle: Path
    http_port: int
    environment: Mapping[str, str]
    """What the cron job would hand down (dane-hook's DANE_HOOK_CONFIG, PATH with dane-hook)."""

    def run(self, *args: str, timeout: float = RUN_TIMEOUT) -> Run:
        argv = (
            "--home",
            str(self.home),
            "--config-home",
            str(self.home),
            "--server",
            self.server,
            "--ca-bundle",
            str(self.ca_bundle),
            *args,
        )
        done = subprocess.run(
            ["sh", str(self.script), *argv],
            env=dict(self.environment),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(tuple(args), done.returncode, done.stdout, done.stderr)

    def files(self, domain: str) -> DomainFiles:
        return DomainFiles(self.home / f"{domain}_ecc", domain)

    def _standalone(self) -> tuple[str, ...]:
        return ("--standalone", "--httpport", str(self.http_port), "--local-address", "127.0.0.1")

    def issue(
        self, domain: str, *, pre_hook: str = "", force_new_key: bool = False, force: bool = False
    ) -> Run:
        """`--issue -d DOMAIN --standalone [--pre-hook H] [--always-force-new-domain-key]`."""
        args = ["--issue", "-d", domain, *self._standalone(), "--keylength", "ec-256"]
        if pre_hook:
            args += ["--pre-hook", pre_hook]
        if force_new_key:
            args.append("--always-force-new-domain-key")
        if force:
            args.append("--force")
        return self.run(*args)

    def install_cert(
        self, domain: str, *, reloadcmd: str, target: Path, extra: Sequence[str] = ()
    ) -> Run:
        """`--install-cert -d DOMAIN --ecc` with the files copied to target/ and `reloadcmd`."""
        target.mkdir(parents=True, exist_ok=True)
        return self.run(
            "--install-cert",
            "-d",
            domain,
            "--ecc",
            "--cert-file",
            str(target / "cert.pem"),
            "--key-file",
            str(target / "key.pem"),
            "--ca-file",
            str(target / "ca.pem"),
            "--fullchain-file",
            str(target / "fullchain.pem"),
            "--reloadcmd",
            reloadcmd,
            *extra,
        )

    def renew(self, domain: str, *, force: bool = True, extra: Sequence[str] = ()) -> Run:
        """`--renew -d DOMAIN --ecc [--force]`: the stored pre-hook, key policy and reload."""
        args = ["--renew", "-d", domain, "--ecc", *extra]
        if force:
            args.append("--force")
        return self.run(*args)


def hook_environment(
    dane_hook_config: Path, extra_path: Sequence[Path] = (), base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of acme.sh's cron job: ours cleaned of acme.sh, dane-hook and proxy
    variables, the console script's directory first on PATH, DANE_HOOK_CONFIG set."""
    source = os.environ if base is None else base
    environment = {
        k: v
        for k, v in source.items()
        if not k.startswith(_DROPPED_PREFIXES) and k.lower() not in _PROXIES
    }
    scripts = Path(sys.executable).parent
    path = [str(p) for p in (*extra_path, scripts)]
    environment["PATH"] = os.pathsep.join([*path, environment.get("PATH", "/usr/bin:/bin")])
    environment["DANE_HOOK_CONFIG"] = str(dane_hook_config)
    return environment
