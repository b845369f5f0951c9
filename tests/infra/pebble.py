"""Pebble, the ACME test CA, as a managed process on loopback: start, restart, CA certificates.

Pebble keeps everything in memory and makes a new root and intermediate at every start, so
`restart()` is how a test gets "the CA now issues from a new intermediate". It resolves the names
it validates through `-dnsserver`, the lab's Knot primary: every name a certificate is asked for
needs an A record 127.0.0.1 in a lab zone, where Pebble then fetches the HTTP-01 answer on
`http_port`. Nothing here leaves 127.0.0.0/8.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import shutil
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.infra.procs import Daemon, LabError, free_port, wait_until

ADDRESS = "127.0.0.1"

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)

# Pebble's switches for tests (pebble README): no random 0-15 s sleep before each validation,
# no rejected nonces, and no reuse of valid authorizations: by default Pebble reuses one 50 % of
# the time, and then a renewal would pass without any HTTP-01 request being made.
_ENVIRONMENT = {
    "PEBBLE_VA_NOSLEEP": "1",
    "PEBBLE_WFE_NONCEREJECT": "0",
    "PEBBLE_AUTHZREUSE": "0",
}


class Pebble:
    """One pebble process: ACME directory and management API over HTTPS on 127.0.0.1.

    The ports are picked once, so the ACME directory URL that certbot stores in its renewal
    configuration stays valid across `restart()`.
    """

    def __init__(
        self, home: Path, dns_server: tuple[str, int], *, validity: int | None = None
    ) -> None:
        self.home = home
        self.dns_server = dns_server
        self.validity = validity
        """Seconds the certificates it issues are valid (certificateValidityPeriod); None:
        Pebble's default (5 years)."""
        binary = shutil.which("pebble")
        if binary is None:
            raise LabError("pebble not found: install Debian's pebble (tests/run.sh does)")
        home.mkdir(parents=True, exist_ok=True)
        self.acme_port = free_port()
        self.management_port = free_port()
        self.http_port = free_port()
        self.tls_port = free_port()
        self.ca_bundle = home / "https-ca.pem"
        """The CA of Pebble's own HTTPS certificate: what REQUESTS_CA_BUNDLE must name."""
        self._write_https_certificate()
        self.config = home / "pebble-config.json"
        self.config.write_text(json.dumps(self._config(), indent=2))
        # `env -i` execs pebble (same PID) with only these variables: no proxy setting from the
        # machine can send a validation request anywhere but to the lab's address.
        environment = [f"{name}={value}" for name, value in _ENVIRONMENT.items()]
        self.daemon = Daemon(
            "pebble",
            [
                "env",
                "-i",
                "PATH=/usr/bin:/bin",
                *environment,
                binary,
                "-config",
                str(self.config),
                "-dnsserver",
                f"{dns_server[0]}:{dns_server[1]}",
                "-strict=false",
            ],
            home / "pebble.log",
        )
        self._running = False
        self.starts = 0
        """How many times this instance was started: each start is a new root and intermediate."""
        self.last_start_seconds = 0.0

    @property
    def directory(self) -> str:
        """The ACME directory URL (certbot's `--server`)."""
        return f"https://{ADDRESS}:{self.acme_port}/dir"

    @property
    def management(self) -> str:
        return f"https://{ADDRESS}:{self.management_port}"

    def _config(self) -> dict[str, object]:
        return {
            "pebble": {
                "listenAddress": f"{ADDRESS}:{self.acme_port}",
                "managementListenAddress": f"{ADDRESS}:{self.management_port}",
                "certificate": str(self.home / "https-cert.pem"),
                "privateKey": str(self.home / "https-key.pem"),
                "httpPort": self.http_port,
                "tlsPort": self.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
                **(
                    {"certificateValidityPeriod": self.validity}
                    if self.validity is not None
                    else {}
                ),
            }
        }

    def _write_https_certificate(self) -> None:
        """A throwaway CA and a server certificate for 127.0.0.1 (the Debian package has none)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble https test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address(ADDRESS)),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (self.home / "https-cert.pem").write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
        )
        (self.home / "https-key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    # -- life cycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def start(self, timeout: float = 10.0) -> None:
        """Start pebble and wait until its ACME directory and management API both answer."""
        self.daemon.start()
        self._running = True
        self.starts += 1
        try:
            self.last_start_seconds = wait_until(
                self._ready, "pebble to serve its directory", timeout, self.daemon.check_alive
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop our pebble by its PID; idempotent."""
        self.daemon.stop()
        self._running = False

    def restart(self) -> None:
        """A new pebble on the same ports: new root and intermediate, no accounts, no orders.

        certbot's stored account is unknown to the new process; `Certbot.reregister()` makes it
        known again.
        """
        self.stop()
        self.start()

    def _ready(self) -> bool:
        try:
            self.get("/roots/0", base=self.management)
            self.get("/dir")
        except (OSError, urllib.error.URLError, LabError):
            return False
        return True

    def http_validations(self, name: str) -> int:
        """How many HTTP-01 requests Pebble's VA made for `name` (its log, every start)."""
        marker = f"Attempting to validate w/ HTTP: http://{name}:{self.http_port}/"
        return self.daemon.log.read_text(errors="replace").count(marker)

    # -- HTTPS to pebble ----------------------------------------------------------------------

    def get(self, path: str, base: str | None = None, timeout: float = 2.0) -> bytes:
        """GET `base + path` over HTTPS, trusting only Pebble's own HTTPS CA."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        # No ProxyHandler from the environment: a proxy setting must not take this off loopback.
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        url = (base or f"https://{ADDRESS}:{self.acme_port}") + path
        with opener.open(url, timeout=timeout) as reply:
            if reply.status != 200:
                raise LabError(f"GET {url}: HTTP {reply.status}")
            body: bytes = reply.read()
        return body

    def _certificates(self, path: str) -> list[x509.Certificate]:
        return pem_certificates(self.get(path, base=self.management))

    def roots(self) -> list[x509.Certificate]:
        """The root of this run (management API `/roots/0`; new at every start)."""
        return self._certificates("/roots/0")

    def intermediates(self) -> list[x509.Certificate]:
        """The intermediate that issues in this run (`/intermediates/0`; new at every start)."""
        return self._certificates("/intermediates/0")


def pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order (x509.load_pem_x509_certificates needs
    cryptography 39; Debian 12 has 38)."""
    return [x509.load_pem_x509_certificate(block) for block in _PEM_CERTIFICATE.findall(data)]
