"""OpenSSL's DANE verifier as an oracle: serve a chain with s_server, ask s_client for its verdict.

`openssl s_client -dane_tlsa_domain ... -dane_tlsa_rrdata ...` runs the verifier Postfix and Exim
use (SSL_dane_enable, SSL_dane_tlsa_add, X509_verify_cert's dane_verify). Like Postfix it is run
with DANE-EE name checks off (`-dane_ee_no_namechecks`, RFC 7672 §3.1.1), with no PKIX trust
store at all (so PKIX-TA(0)/PKIX-EE(1) can never succeed, as RFC 7672 §3.1.3 wants for SMTP) and
at a fixed instant (`-attime`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

START_TIMEOUT = 10.0
CLIENT_TIMEOUT = 10.0

_ACCEPT = re.compile(r"^ACCEPT .*:(\d+)\s*$", re.MULTILINE)
_VERIFIED = re.compile(r"^Verification: OK\s*$", re.MULTILINE)
_VERIFY_ERROR = re.compile(r"^Verification error: (.*)$", re.MULTILINE)
# "... matched EE certificate at depth 0", "... matched TA certificate at depth 1", and for a
# bare 2 1 0 key "... signed the certificate at depth N" (N the top certificate it signed).
_DANE_MATCH = re.compile(
    r"^DANE TLSA (\d+ \d+ \d+) (\S+) (matched|signed) (.*) at depth (\d+)\s*$", re.MULTILINE
)
_REFUSED = re.compile(r"^s_client: warning: (?:unusable TLSA rrdata|bad TLSA \w+ field in): (.*)$")
_NONE_IMPORTED = "Failed to import any TLSA records"


class OracleError(RuntimeError):
    """OpenSSL gave no verdict (the server did not start, the handshake failed, a timeout).

    Never read as "not authenticated": a broken oracle must fail the test, not agree with it.
    """


@dataclass(frozen=True)
class OpenSSLVerdict:
    authenticated: bool
    detail: str
    """s_client's own words: the matching TLSA record and depth, or the verification error."""
    depth: int | None
    """Where OpenSSL reports the match, when it authenticated: 0 the leaf, 1 its issuer...

    For a bare 2 1 0 key OpenSSL names the top certificate the key signed, so the anchor
    itself sits one above: `anchor_depth` says where the anchor is in both cases."""
    bare_key: bool = False
    """True when a 2 1 0 key signed the top certificate ("signed the certificate at depth")."""
    record: tuple[str, str] | None = None
    """The matching record as s_client shows it: ("U S M", "...last 12 bytes in hex")."""
    refused: tuple[str, ...] = ()
    """The rrdata SSL_dane_tlsa_add() refused (unusable records), in s_client's order."""
    transcript: str = ""

    @property
    def anchor_depth(self) -> int | None:
        if self.depth is None:
            return None
        return self.depth + 1 if self.bare_key else self.depth


class OpenSSLServer:
    """`openssl s_server -www` on 127.0.0.1 serving one leaf, its key and an extra chain file.

    The kernel picks the port (`-accept 127.0.0.1:0`; s_server prints it), so there is no race
    for a free port. The server is always stopped by its own PID, even when a test fails.
    """

    def __init__(self, workdir: Path, leaf: Path, key: Path, chain: Path | None = None) -> None:
        self.log = workdir / "s_server.log"
        self.argv = [OPENSSL, "s_server", "-www", "-accept", "127.0.0.1:0"]
        self.argv += ["-cert", str(leaf), "-key", str(key)]
        if chain is not None:
            # Sent after the leaf in the file's order; without -build_chain nothing is reordered.
            self.argv += ["-cert_chain", str(chain)]
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> OpenSSLServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        with self.log.open("wb") as out:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.port = self._wait_for_port()
        except BaseException:
            self.stop()
            raise

    def _wait_for_port(self) -> int:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        delay = 0.002
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            found = _ACCEPT.search(text)
            if found:
                return int(found.group(1))
            if self._process.poll() is not None:
                raise OracleError(f"s_server exited ({self._process.returncode}):\n{text}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        raise OracleError(f"s_server did not listen within {START_TIMEOUT} s")

    def stop(self) -> None:
        """SIGTERM to our PID, SIGKILL if it lingers; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def verdict(self, rrdata: Sequence[str], host: str, now: datetime) -> OpenSSLVerdict:
        """OpenSSL's verdict on the served chain for the TLSA RRset `rrdata` ("U S M HEX")."""
        if self._process is None or self._process.poll() is not None:
            raise OracleError("s_server is not running")
        return s_client_verdict(self.port, rrdata, host, now)


def s_client_verdict(port: int, rrdata: Sequence[str], host: str, now: datetime) -> OpenSSLVerdict:
    argv = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-brief"]
    argv += ["-servername", host, "-dane_tlsa_domain", host, "-dane_ee_no_namechecks"]
    for record in rrdata:
        argv += ["-dane_tlsa_rrdata", record]
    # No trust store: only DANE can authenticate. -attime pins the verifier's clock.
    argv += ["-no-CAfile", "-no-CApath", "-no-CAstore", "-attime", str(int(now.timestamp()))]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise OracleError(f"s_client gave no answer within {CLIENT_TIMEOUT} s") from exc
    transcript = (done.stdout + done.stderr).decode(errors="replace")
    refused = tuple(m.group(1).strip() for m in map(_REFUSED.match, transcript.splitlines()) if m)
    if _NONE_IMPORTED in transcript:
        # s_client does not even connect when no record is usable: no client could use the set.
        return OpenSSLVerdict(
            False, "no usable TLSA record", None, refused=refused, transcript=transcript
        )
    if _VERIFIED.search(transcript):
        match = _DANE_MATCH.search(transcript)
        if match is None:
            raise OracleError(f"verified, but not by DANE:\n{transcript}")
        return OpenSSLVerdict(
            True,
            match.group(0),
            int(match.group(5)),
            bare_key=match.group(3) == "signed",
            record=(match.group(1), match.group(2)),
            refused=refused,
            transcript=transcript,
        )
    error = _VERIFY_ERROR.search(transcript)
    if error is None:
        raise OracleError(f"s_client gave no verdict (exit {done.returncode}):\n{transcript}")
    return OpenSSLVerdict(
        False, error.group(1).strip(), None, refused=refused, transcript=transcript
    )


class ServerPool:
    """One s_server per served chain, started on first use; `stop_all()` stops every one.

    Cases that share a chain share its server, so a table of cases costs one s_server start
    per distinct chain and one s_client run per case.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._servers: dict[bytes, OpenSSLServer] = {}

    def serving(self, leaf_pem: bytes, key_pem: bytes, chain_pem: bytes) -> OpenSSLServer:
        """The server for this leaf (sent first), key and chain file (sent after, in order)."""
        identity = hashlib.sha256(leaf_pem + b"|" + chain_pem).digest()
        server = self._servers.get(identity)
        if server is None:
            folder = self.workdir / f"chain-{len(self._servers):03d}"
            folder.mkdir()
            (folder / "leaf.pem").write_bytes(leaf_pem)
            key_path = folder / "key.pem"
            key_path.touch(mode=0o600)
            key_path.write_bytes(key_pem)
            chain_path = None
            if chain_pem:
                chain_path = folder / "chain.pem"
                chain_path.write_bytes(chain_pem)
            server = OpenSSLServer(folder, folder / "leaf.pem", key_path, chain_path)
            self._servers[identity] = server
            server.start()
        return server

    def stop_all(self) -> None:
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.stop()
