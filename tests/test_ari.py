"""ARI (RFC 9773) through the real acme client code against a small HTTPS server on loopback.

The server has its own CA and certificate (made here with cryptography) and serves an ACME
directory, with or without renewalInfo, and the renewalInfo resource; every request it gets is
recorded, so the tests see the exact URL the acme library asked for.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from dane_hook.rollover import ari
from dane_hook.rollover.ari import Window, certificate_id, renewal_window
from tests import pki

NOW = datetime.now(timezone.utc).replace(microsecond=0)
VALID = pki.Validity(NOW - timedelta(days=10), NOW + timedelta(days=80))

ACME_ROOT = pki.root("ari test CA", validity=VALID)
ACME_INTERMEDIATE = pki.intermediate("ari test intermediate", ACME_ROOT, validity=VALID)
LEAF = pki.leaf(ACME_INTERMEDIATE, ["mx.example.test"], label="ari leaf", validity=VALID)


def https_certificate(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 (an IP address SAN), written as PEM files:
    (CA bundle, server certificate, server key)."""
    ca = pki.root("ari https CA", validity=VALID)
    key = pki.private_key("ari https server")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(VALID.not_before)
        .not_valid_after(VALID.not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    server = pki.Issued(certificate, key)
    bundle = tmp / "ca.pem"
    bundle.write_bytes(ca.pem())
    (tmp / "server.pem").write_bytes(server.pem())
    (tmp / "server.key").write_bytes(server.key_pem())
    return bundle, tmp / "server.pem", tmp / "server.key"


@dataclass
class AcmeServer:
    """What the server answers, and what it was asked."""

    url: str
    ca_bundle: str
    routes: dict[str, tuple[int, dict[str, str], Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def directory(self, *, renewal_info: bool = True) -> str:
        document = {
            "newNonce": f"{self.url}/acme/new-nonce",
            "newAccount": f"{self.url}/acme/new-acct",
            "newOrder": f"{self.url}/acme/new-order",
            "revokeCert": f"{self.url}/acme/revoke-cert",
            "keyChange": f"{self.url}/acme/key-change",
            "meta": {"termsOfService": f"{self.url}/terms"},
        }
        if renewal_info:
            document["renewalInfo"] = f"{self.url}/acme/renewal-info"
        self.routes["/directory"] = (200, {}, document)
        return f"{self.url}/directory"


@pytest.fixture(scope="module")
def acme_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeServer]:
    bundle, cert, key = https_certificate(tmp_path_factory.mktemp("ari"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    state = AcmeServer("", str(bundle))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            status, headers, body = state.routes.get(self.path, (404, {}, _problem()))
            data = json.dumps(body).encode()
            self.send_response(status)
            kind = "application/problem+json" if status >= 400 else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server(acme_server: AcmeServer) -> AcmeServer:
    acme_server.routes.clear()
    acme_server.requests.clear()
    return acme_server


def _problem() -> dict[str, Any]:
    return {"type": "urn:ietf:params:acme:error:malformed", "detail": "no such resource"}


def expected_id(certificate: x509.Certificate) -> str:
    """RFC 9773 §4.1 computed here, independently of dane_hook.ari."""
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert aki.value.key_identifier is not None
    serial = certificate.serial_number
    der = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return f"{b64(aki.value.key_identifier)}.{b64(der)}"


def serve_window(
    server: AcmeServer, certificate: x509.Certificate, start: datetime, end: datetime
) -> str:
    path = f"/acme/renewal-info/{expected_id(certificate)}"
    body = {
        "suggestedWindow": {
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "explanationURL": f"{server.url}/why",
    }
    server.routes[path] = (200, {"Retry-After": "21600"}, body)
    return path


START = NOW + timedelta(days=50)
END = NOW + timedelta(days=52)


@pytest.mark.parametrize("through_renewal_time", [True, False], ids=["renewal_time", "acme-2.1"])
def test_window_from_renewal_info(server: AcmeServer, through_renewal_time: bool) -> None:
    """Both request paths: acme >= 4.1's renewal_time, and 2.1's primitives."""
    from acme import client as acme_client

    if through_renewal_time and not hasattr(acme_client.ClientV2, "renewal_time"):
        pytest.skip("this acme has no ClientV2.renewal_time (acme < 4.1)")
    directory = server.directory()
    path = serve_window(server, LEAF.certificate, START, END)
    window, reason = ari._ask(
        acme_client,
        directory,
        LEAF.certificate,
        certificate_id(LEAF.certificate),
        5,
        server.ca_bundle,
        NOW,
        through_renewal_time=through_renewal_time,
    )
    assert window == Window(START, END, NOW + timedelta(hours=6), f"{server.url}/why"), reason
    assert server.requests == ["/directory", path]
    assert reason.startswith("the CA suggests renewing between")


def test_renewal_window_uses_the_installed_acme(server: AcmeServer) -> None:
    directory = server.directory()
    path = serve_window(server, LEAF.certificate, START, END)
    window, _ = renewal_window(
        directory,
        LEAF.certificate,
        ACME_INTERMEDIATE.certificate,
        timeout=5,
        ca_bundle=server.ca_bundle,
        now=NOW,
    )
    assert window is not None and window.start == START and window.end == END
    assert window.opens_by(START) and not window.opens_by(START - timedelta(seconds=1))
    assert server.requests[-1] == path


def test_the_identifier_is_the_one_acme_builds() -> None:
    acme_client = pytest.importorskip("acme.client")
    if not hasattr(acme_client, "_renewal_info_path_component"):
        pytest.skip("this acme has no ARI (acme < 4.1)")
    for issued in (LEAF, ACME_INTERMEDIATE):
        expected = acme_client._renewal_info_path_component(issued.certificate)
        assert certificate_id(issued.certificate) == expected == expected_id(issued.certificate)


# RFC 9773 appendix A: keyIdentifier 69:88:5B:6B:..., serial 00:87:65:43:21.
RFC_9773_EXAMPLE = b"""-----BEGIN CERTIFICATE-----
MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt
cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS
BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu
7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf
qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B
yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb
+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK
-----END CERTIFICATE-----
"""


def test_certificate_id_of_the_rfc_example() -> None:
    certificate = x509.load_pem_x509_certificate(RFC_9773_EXAMPLE)
    assert certificate_id(certificate) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_without_aki_the_issuer_key_identifier_stands_in() -> None:
    leaf = pki.leaf(ACME_INTERMEDIATE, label="ari leaf without AKI", key_ids=False)
    with_aki = pki.leaf(ACME_INTERMEDIATE, label="ari leaf without AKI")
    own = certificate_id(leaf.certificate, ACME_INTERMEDIATE.certificate).split(".")[0]
    assert own == certificate_id(with_aki.certificate).split(".")[0]
    with pytest.raises(ValueError):
        certificate_id(leaf.certificate)


def test_directory_without_renewal_info_is_no_window(server: AcmeServer) -> None:
    directory = server.directory(renewal_info=False)
    window, reason = renewal_window(
        directory, LEAF.certificate, None, timeout=5, ca_bundle=server.ca_bundle, now=NOW
    )
    assert window is None
    assert "has no renewalInfo" in reason and "\n" not in reason
    assert server.requests == ["/directory"]


def test_renewal_info_error_is_no_window(server: AcmeServer) -> None:
    directory = server.directory()  # the renewalInfo resource answers 404 with a problem
    window, reason = renewal_window(
        directory, LEAF.certificate, None, timeout=5, ca_bundle=server.ca_bundle, now=NOW
    )
    assert window is None and "\n" not in reason
    assert "the CA answered urn:ietf:params:acme:error:malformed" in reason


def test_window_ending_before_it_starts_is_refused(server: AcmeServer) -> None:
    directory = server.directory()
    serve_window(server, LEAF.certificate, END, START)
    window, reason = renewal_window(
        directory, LEAF.certificate, None, timeout=5, ca_bundle=server.ca_bundle, now=NOW
    )
    assert window is None and "ends before it starts" in reason


def test_malformed_window_is_no_window(server: AcmeServer) -> None:
    directory = server.directory()
    path = f"/acme/renewal-info/{expected_id(LEAF.certificate)}"
    server.routes[path] = (200, {}, {"suggestedWindow": {"start": "soon"}})
    window, reason = renewal_window(
        directory, LEAF.certificate, None, timeout=5, ca_bundle=server.ca_bundle, now=NOW
    )
    assert window is None and "no renewal window" in reason


def test_untrusted_tls_certificate_is_no_window(server: AcmeServer) -> None:
    directory = server.directory()
    serve_window(server, LEAF.certificate, START, END)
    window, reason = renewal_window(directory, LEAF.certificate, None, timeout=5, now=NOW)
    assert window is None and "not trusted" in reason


def test_unreachable_ca_is_no_window() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    window, reason = renewal_window(
        f"https://127.0.0.1:{port}/directory", LEAF.certificate, None, timeout=2, now=NOW
    )
    assert window is None and "cannot connect" in reason


def test_silent_ca_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # accepts the connection, never says a word
        port = silent.getsockname()[1]
        began = time.monotonic()
        window, reason = renewal_window(
            f"https://127.0.0.1:{port}/directory", LEAF.certificate, None, timeout=0.5, now=NOW
        )
        elapsed = time.monotonic() - began
    assert window is None and "no answer within 0.5 s" in reason
    assert elapsed < 5


def test_expired_certificate_asks_nothing(server: AcmeServer) -> None:
    directory = server.directory()
    window, reason = renewal_window(
        directory,
        LEAF.certificate,
        None,
        timeout=5,
        ca_bundle=server.ca_bundle,
        now=VALID.not_after + timedelta(seconds=1),
    )
    assert window is None and "expired" in reason
    assert server.requests == []


def test_retry_after_as_http_date() -> None:
    moment = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)
    assert ari._retry_after("Wed, 01 Jul 2026 18:00:00 GMT", moment) == moment + timedelta(hours=6)
    assert ari._retry_after("60", moment) == moment + timedelta(minutes=1)
    assert ari._retry_after("soon", moment) is None


def test_importing_ari_does_not_import_acme() -> None:
    code = (
        "import sys, dane_hook.rollover.ari; "
        "print('acme' in sys.modules, 'requests' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"]
