"""Real certbot against the lab's Pebble: a runner with test-safe flags, and a lineage reader.

Every run is bounded, non-interactive, never sleeps before a renewal (certbot sleeps a random
1-480 s without a TTY unless told not to) and answers HTTP-01 itself (standalone) on
127.0.0.1:<http_port>, where Pebble fetches it. certbot trusts Pebble's HTTPS only through
REQUESTS_CA_BUNDLE: `--no-verify-ssl` is not stored in the renewal configuration, so a later
`renew` would fail without it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from cryptography.x509 import Certificate

from tests.infra.pebble import pem_certificates
from tests.infra.procs import LabError

KeyType = Literal["ecdsa", "rsa"]
HookKind = Literal["pre", "deploy", "post"]

_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


class CertbotError(LabError):
    """certbot exited non-zero; the message carries its stderr and the end of its log."""


def certbot_command() -> list[str]:
    """$DANE_HOOK_TEST_CERTBOT (tests/test_debian.py: Debian's /usr/bin/certbot), else the
    certbot of the interpreter running the tests (the venv's), else the one on PATH."""
    chosen = os.environ.get("DANE_HOOK_TEST_CERTBOT")
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            raise LabError(f"DANE_HOOK_TEST_CERTBOT={chosen}: no such executable")
        return [found]
    beside = Path(sys.executable).parent / "certbot"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("certbot")
    if found is None:
        raise LabError("certbot not found: install the test extra (pip install -e '.[test]')")
    return [found]


@dataclass(frozen=True)
class Lineage:
    """One certificate lineage as certbot keeps it (certbot storage.py).

    live/NAME/{cert,chain,fullchain,privkey}.pem are relative symlinks to
    archive/NAME/<kind>N.pem; renewal/NAME.conf holds the renewal parameters.
    """

    config_dir: Path
    name: str

    @property
    def live(self) -> Path:
        return self.config_dir / "live" / self.name

    @property
    def archive(self) -> Path:
        return self.config_dir / "archive" / self.name

    @property
    def renewal_conf(self) -> Path:
        return self.config_dir / "renewal" / f"{self.name}.conf"

    def live_file(self, kind: str = "fullchain") -> Path:
        """live/NAME/<kind>.pem (a symlink)."""
        return self.live / f"{kind}.pem"

    def archive_file(self, version: int, kind: str = "fullchain") -> Path:
        return self.archive / f"{kind}{version}.pem"

    def certificates(
        self, kind: str = "fullchain", version: int | None = None
    ) -> list[Certificate]:
        """The certificates of live/NAME/<kind>.pem, or of archive version `version`."""
        path = self.live_file(kind) if version is None else self.archive_file(version, kind)
        return pem_certificates(path.read_bytes())

    def versions(self) -> list[int]:
        """The version numbers N of archive/NAME/certN.pem, ascending."""
        found = (re.fullmatch(r"cert(\d+)\.pem", path.name) for path in self.archive.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def live_version(self, kind: str = "cert") -> int:
        """The N that live/NAME/<kind>.pem points at."""
        target = os.readlink(self.live_file(kind))
        match = re.fullmatch(rf"{re.escape(kind)}(\d+)\.pem", Path(target).name)
        if match is None:
            raise LabError(f"{self.live_file(kind)} points at {target}, not at an archive version")
        return int(match.group(1))

    def renewal_config(self) -> dict[str, dict[str, str]]:
        """renewal/NAME.conf (configobj syntax) by section; "" holds the top-level keys."""
        sections: dict[str, dict[str, str]] = {"": {}}
        current = sections[""]
        for line in self.renewal_conf.read_text().splitlines():
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            header = re.fullmatch(r"\[+([^\]]+)\]+", text)
            if header:
                current = sections.setdefault(header.group(1), {})
                continue
            key, _, value = text.partition("=")
            current[key.strip()] = value.strip()
        return sections

    def renewal_params(self) -> dict[str, str]:
        """The [renewalparams] section: server, key_type, reuse_key, renew_hook, ..."""
        return self.renewal_config().get("renewalparams", {})


class Certbot:
    """certbot with one config, work and logs directory, one ACME server, one HTTP-01 port."""

    def __init__(
        self,
        config_dir: Path,
        work_dir: Path,
        logs_dir: Path,
        server: str,
        ca_bundle: Path,
        http_port: int,
        timeout: float = 60.0,
    ) -> None:
        self.config_dir = config_dir
        self.work_dir = work_dir
        self.logs_dir = logs_dir
        self.server = server
        self.ca_bundle = ca_bundle
        self.http_port = http_port
        self.timeout = timeout
        self.command = certbot_command()

    # -- running certbot --------------------------------------------------------------------

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The caller's environment with Pebble's HTTPS CA and without proxy settings.

        The machine may export REQUESTS_CA_BUNDLE for the system CAs: it must be replaced.
        Hooks inherit this environment.
        """
        env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
        env["REQUESTS_CA_BUNDLE"] = str(self.ca_bundle)
        env.update(extra or {})
        return env

    def common_args(self) -> list[str]:
        return [
            "--config-dir",
            str(self.config_dir),
            "--work-dir",
            str(self.work_dir),
            "--logs-dir",
            str(self.logs_dir),
            "--server",
            self.server,
            "--non-interactive",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--no-random-sleep-on-renew",
        ]

    def challenge_args(self) -> list[str]:
        return [
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            str(self.http_port),
        ]

    def run(
        self,
        subcommand: str,
        *args: str,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`certbot SUBCOMMAND <common args> ARGS`; raises CertbotError when check and rc != 0."""
        argv = [*self.command, subcommand, *self.common_args(), *args]
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.environment(env),
            timeout=timeout or self.timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise CertbotError(
                f"certbot {subcommand} failed ({done.returncode}):\n{done.stderr.strip()}\n"
                f"--- end of {self.logs_dir / 'letsencrypt.log'}:\n{self.log_tail()}"
            )
        return done

    def certonly(
        self,
        names: Sequence[str],
        *,
        cert_name: str | None = None,
        key_type: KeyType = "ecdsa",
        reuse_key: bool = False,
        deploy_hook: str | None = None,
        extra_args: Sequence[str] = (),
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """A new lineage for `names` (the first one names it unless `cert_name` is given)."""
        args = [*self.challenge_args(), "--key-type", key_type]
        for name in names:
            args += ["-d", name]
        if cert_name is not None:
            args += ["--cert-name", cert_name]
        if reuse_key:
            args.append("--reuse-key")
        if deploy_hook is not None:
            args += ["--deploy-hook", deploy_hook]
        return self.run("certonly", *args, *extra_args, check=check, env=env)

    def renew(
        self,
        *,
        force: bool = True,
        cert_name: str | None = None,
        reuse_key: bool | None = None,
        new_key: bool = False,
        deploy_hook: str | None = None,
        extra_args: Sequence[str] = (),
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`certbot renew`; Pebble's certificates last 5 years, so only `force` makes one due.

        reuse_key: True/False sets (and stores) --reuse-key/--no-reuse-key; None keeps what the
        renewal configuration says. new_key: one new key this time, reuse_key unchanged.
        """
        args = self.challenge_args()
        if force:
            args.append("--force-renewal")
        if cert_name is not None:
            args += ["--cert-name", cert_name]
        if reuse_key is not None:
            args.append("--reuse-key" if reuse_key else "--no-reuse-key")
        if new_key:
            args.append("--new-key")
        if deploy_hook is not None:
            args += ["--deploy-hook", deploy_hook]
        return self.run("renew", *args, *extra_args, check=check, env=env)

    def reregister(self) -> int:
        """Make certbot's stored accounts known to a restarted Pebble; returns how many.

        Pebble forgets its accounts when it stops, and certbot does not register again by
        itself ("accountDoesNotExist"). The same account key is registered anew and the new
        account URL written into certbot's regr.json, so renewal/NAME.conf stays as it was.
        """
        from acme import client, messages
        from josepy import jwa, jwk

        count = 0
        for regr in sorted(self.config_dir.glob("accounts/*/*/*/regr.json")):
            key = jwk.JWK.json_loads((regr.parent / "private_key.json").read_text())
            alg = jwa.RS256 if isinstance(key, jwk.JWKRSA) else jwa.ES256
            # acme annotates verify_ssl as a bool but hands it to requests' `verify`, which also
            # takes a CA file: Pebble's HTTPS CA, not the machine's REQUESTS_CA_BUNDLE.
            verify = cast(bool, str(self.ca_bundle))
            network = client.ClientNetwork(
                key, alg=alg, verify_ssl=verify, user_agent="dane-hook-tests"
            )
            network.session.trust_env = False  # no proxy from the environment: loopback only
            directory = client.ClientV2.get_directory(self.server, network)
            acme = client.ClientV2(directory, network)
            account = acme.new_account(
                messages.NewRegistration.from_data(terms_of_service_agreed=True)
            )
            stored = json.loads(regr.read_text())
            stored["uri"] = account.uri
            regr.write_text(json.dumps(stored))
            count += 1
        return count

    # -- reading what certbot wrote ---------------------------------------------------------

    def lineage(self, name: str) -> Lineage:
        return Lineage(self.config_dir, name)

    def hooks_dir(self, kind: HookKind = "deploy") -> Path:
        """renewal-hooks/<kind>/: every executable in it runs, in sorted order."""
        return self.config_dir / "renewal-hooks" / kind

    def install_hook(self, file_name: str, text: str, kind: HookKind = "deploy") -> Path:
        """An executable file in renewal-hooks/<kind>/ (created before certbot's first run)."""
        directory = self.hooks_dir(kind)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / file_name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.logs_dir / "letsencrypt.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class HookRecorder:
    """An executable hook that appends one JSON line per run: argv, certbot's hook variables and
    the live cert.pem symlink's target.

    `command` goes to --deploy-hook, or into a script put in renewal-hooks/deploy/ with
    `Certbot.install_hook`; `calls()` reads back what each run saw.
    """

    VARIABLES = ("RENEWED_LINEAGE", "RENEWED_DOMAINS", "FAILED_DOMAINS")

    def __init__(self, directory: Path, name: str = "hook") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.script = directory / f"{name}.py"
        self.record = directory / f"{name}.jsonl"
        self.script.write_text(
            f"#!{sys.executable}\n"
            '"""Test hook: append argv and the certbot hook variables as one JSON line."""\n'
            "import json, os, sys\n"
            f"names = {list(self.VARIABLES)!r}\n"
            "seen = {n: os.environ[n] for n in names if n in os.environ}\n"
            "cert = os.path.join(os.environ.get('RENEWED_LINEAGE', ''), 'cert.pem')\n"
            "target = os.readlink(cert) if os.path.islink(cert) else None\n"
            "call = {'argv': sys.argv, 'env': seen, 'live_cert': target}\n"
            f"with open({str(self.record)!r}, 'a') as out:\n"
            "    out.write(json.dumps(call) + '\\n')\n"
        )
        self.script.chmod(0o755)

    @property
    def command(self) -> str:
        """An absolute command line: certbot stores it verbatim and runs it through a shell."""
        return shlex.quote(str(self.script))

    def calls(self) -> list[HookCall]:
        if not self.record.exists():
            return []
        found = []
        for line in self.record.read_text().splitlines():
            data = json.loads(line)
            found.append(HookCall(list(data["argv"]), dict(data["env"]), data["live_cert"]))
        return found


@dataclass(frozen=True)
class HookCall:
    """One run of a recorded hook."""

    argv: list[str]
    env: dict[str, str]
    """The certbot hook variables it got (RENEWED_LINEAGE, RENEWED_DOMAINS, ...)."""
    live_cert: str | None
    """Where $RENEWED_LINEAGE/cert.pem pointed while the hook ran (certbot relinks first)."""
