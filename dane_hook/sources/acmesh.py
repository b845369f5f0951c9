"""acme.sh domain folders as acme.sh 3.1.x lays them out, and what its hooks are given.

Everything here is read from acme.sh's own source (acmesh-official/acme.sh, acme.sh, VER=3.1.5):

- _initpath(): the domain folder is "$CERT_HOME/$domain", or "$CERT_HOME/${domain}_ecc" for an
  ECC key (ECC_SUFFIX="_ecc"); in it DOMAIN_CONF="$DOMAIN_PATH/$domain.conf",
  CERT_KEY_PATH="$DOMAIN_PATH/$domain.key", CERT_PATH="$DOMAIN_PATH/$domain.cer",
  CA_CERT_PATH="$DOMAIN_PATH/ca.cer", CERT_FULLCHAIN_PATH="$DOMAIN_PATH/fullchain.cer".
  Only DOMAIN_PATH is exported there; the *_PATH variables are plain shell variables.
- issue(): the downloaded chain goes to CERT_PATH, then _split_cert_chain() copies the whole
  chain to fullchain.cer and keeps the first certificate in DOMAIN.cer, the rest in ca.cer.
- issue(): `export Le_Next_Domain_Key="$CERT_KEY_PATH.next"`, always, after the pre-hook ran.
  When Le_ForceNewDomainKey = "1" and that file exists it becomes the key ("Using pre-generated
  key": `cat "$Le_Next_Domain_Key" >"$CERT_KEY_PATH"`), and a fresh one is staged with
  _createkey; with Le_ForceNewDomainKey = "1" and no staged file, createDomainKey() makes a new
  key no one has seen. Otherwise the key is reused (createDomainKey() only replaces a missing or
  empty key, or when the key length changes).
- issue() saves Le_ForceNewDomainKey='1' into DOMAIN.conf after a successful issuance (and
  clears it otherwise); renew() sources the conf (`. "$DOMAIN_CONF"`), so it is a shell variable
  there, not an exported one. --always-force-new-domain-key sets it on the command line.
- _save_conf(): values are written as KEY='value'; with "base64" (Le_PreHook, Le_PostHook,
  Le_RenewHook, Le_Preferred_Chain, Le_ReloadCmd) the value is wrapped as
  '__ACME_BASE64__START_<base64>__ACME_BASE64__END_', which _read_conf() unwraps; a plain value
  is read as it is.
- _on_before_issue(): the pre-hook runs as
  `( export Le_Domain=...; export Le_Alt=...; cd "$DOMAIN_PATH" && eval "$_chk_pre_hook" )`:
  the hook string is eval'd, so "$CERT_KEY_PATH" in it expands, but the process it starts sees
  only Le_Domain, Le_Alt and DOMAIN_PATH (and its working directory is the domain folder).
- _installcert(): the reload command runs as `( export CERT_PATH; export CERT_KEY_PATH;
  export CA_CERT_PATH; export CERT_FULLCHAIN_PATH; export Le_Domain=...;
  export Le_ForceNewDomainKey; export Le_Next_Domain_Key; cd "$DOMAIN_PATH" &&
  eval "$_reload_cmd" )`, after the files were copied to the install paths; the CERT_* paths
  are acme.sh's own copies in the domain folder.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dane_hook.certs.chain import ServedChain, not_after, not_before
from dane_hook.certs.keys import PublicKey
from dane_hook.dnsname import absolute_name
from dane_hook.errors import BadInput, UsageError, shown_path
from dane_hook.sources.files import load_public_key, parse_certificates, read_input

B64_START = "__ACME_BASE64__START_"
B64_END = "__ACME_BASE64__END_"
NO_VALUE = "no"
"""acme.sh's NO_VALUE: Le_Alt='no' in the conf means "no other names"."""

_CONF_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


def decode_value(value: str) -> str:
    """A conf value as _read_conf() returns it: base64-wrapped values unwrapped."""
    if (
        value.startswith(B64_START)
        and value.endswith(B64_END)
        and len(value) >= len(B64_START + B64_END)
    ):
        encoded = value[len(B64_START) : len(value) - len(B64_END)]
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BadInput(f"a base64-wrapped value cannot be decoded ({exc})") from exc
    return value


def parse_conf(text: str, source: str = "DOMAIN.conf") -> dict[str, str]:
    """The KEY='value' lines of an acme.sh conf; a later line for a key wins, as when the
    shell sources the file. Double quotes (acme.sh 2.x) and bare values are read too."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = _CONF_LINE.match(line)
        if not found:
            continue
        key, value = found.group(1), found.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        try:
            values[key] = decode_value(value)
        except BadInput as exc:
            raise BadInput(f"{source}: {key}: {exc}") from exc
    return values


def is_set(value: str | None) -> bool:
    """acme.sh tests Le_ForceNewDomainKey with `[ "$Le_ForceNewDomainKey" = "1" ]`."""
    return (value or "").strip() == "1"


def names_of(domain: str, alt: str | None) -> list[str]:
    """The names of an order: Le_Domain, then Le_Alt (comma-separated; "no" or empty: none)."""
    names = [domain]
    if alt and alt != NO_VALUE:
        names += [n.strip() for n in alt.split(",") if n.strip() and n.strip() != NO_VALUE]
    return list(dict.fromkeys(_a_labels(n) for n in names if n))


def _a_labels(name: str) -> str:
    """An order's name as certificates and DNS hold it: lowercase A-labels (RFC 5891 §4),
    a leading "*." kept (acme.sh orders wildcards)."""
    wildcard = name.startswith("*.")
    try:
        host = absolute_name(name[2:] if wildcard else name, "domain").rstrip(".")
    except UsageError as exc:
        raise BadInput(f"Le_Domain/Le_Alt: {exc}") from exc
    return f"*.{host}" if wildcard else host


@dataclass(frozen=True)
class DomainFolder:
    """One acme.sh domain folder (DOMAIN/ or DOMAIN_ecc/ under acme.sh's cert home)."""

    name: str
    """The main domain (Le_Domain): the file names in the folder start with it."""
    key: Path
    """DOMAIN.key, the key in use (CERT_KEY_PATH)."""

    @property
    def folder(self) -> Path:
        return self.key.parent

    @property
    def next_key(self) -> Path:
        """DOMAIN.key.next, the key staged for the next issuance (Le_Next_Domain_Key)."""
        return self.key.with_name(self.key.name + ".next")

    @property
    def conf(self) -> Path:
        return self.folder / f"{self.name}.conf"

    @property
    def cert(self) -> Path:
        return self.folder / f"{self.name}.cer"

    @property
    def fullchain(self) -> Path:
        return self.folder / "fullchain.cer"

    def first_issuance(self, conf: Mapping[str, str]) -> bool:
        """A first --issue: issue() has saved DOMAIN.conf (Le_Domain, Le_PreHook, ...) before
        the pre-hook runs, but createDomainKey() makes the key only after it, and no
        certificate was ever issued (Le_CertCreateTime is saved after a successful one)."""
        return (
            self.conf.is_file()
            and not conf.get("Le_CertCreateTime")
            and not self.key.exists()
            and not self.cert.exists()
        )

    def read_conf(self) -> dict[str, str]:
        """DOMAIN.conf's values (empty when there is none yet: a first issuance)."""
        if not self.conf.is_file():
            return {}
        return parse_conf(read_input(self.conf).decode("utf-8", "replace"), str(self.conf))


def locate(
    *,
    key: str | None,
    domain: str | None,
    environment: Mapping[str, str],
    cwd: Path,
) -> DomainFolder:
    """The domain folder of a pre-hook run: from --key, else DOMAIN_PATH (or the working
    directory, where acme.sh runs its hooks) and the domain name (--domain, else Le_Domain)."""
    given = key or environment.get("CERT_KEY_PATH")
    name = _checked_domain(domain, "--domain") or _checked_domain(
        environment.get("Le_Domain"), "Le_Domain"
    )
    if given:
        path = Path(given)
        path = path if path.is_absolute() else cwd / path
        return DomainFolder(name or _name_of_key(path), path)
    if not name:
        raise BadInput(
            "no key: neither --key nor Le_Domain is given",
            "run it as acme.sh's pre-hook: 'dane-hook acme-sh pre --key \"$CERT_KEY_PATH\"'",
        )
    folder = Path(environment.get("DOMAIN_PATH") or cwd)
    return DomainFolder(name, folder / f"{name}.key")


def _checked_domain(name: str | None, source: str) -> str | None:
    """An acme.sh main domain, once it is known to be a DNS name: it becomes a file name
    and TLSA owners. acme.sh allows a wildcard main domain ("*.example.com", its folder is
    named so too), so a leading "*." is accepted."""
    if not name:
        return None
    try:
        absolute_name(name[2:] if name.startswith("*.") else name, "domain")
    except UsageError as exc:
        raise BadInput(f"{source}: {exc}") from exc
    return name


def _name_of_key(path: Path) -> str:
    return path.name[: -len(".key")] if path.name.endswith(".key") else path.stem


@dataclass(frozen=True)
class ComingKey:
    """The key the coming issuance will use, as far as it is known before it runs."""

    key: PublicKey | None
    """None: acme.sh makes a new key at issuance that nobody can know (force-new-key, no
    staged DOMAIN.key.next)."""
    path: Path
    source: str
    """"current key", "staged next key" or "new key made at issuance"."""


def coming_key(folder: DomainFolder, force_new_key: bool) -> ComingKey:
    """DOMAIN.key.next when acme.sh is set to force a new key and one is staged, the key in
    use otherwise (acme.sh reuses it); BadInput when the file needed is missing or unreadable."""
    if force_new_key:
        staged = folder.next_key
        if not staged.exists() or not _has_content(staged):
            return ComingKey(None, staged, "new key made at issuance")
        return ComingKey(load_public_key(staged), staged, "staged next key")
    return ComingKey(load_public_key(folder.key), folder.key, "current key")


def _has_content(path: Path) -> bool:
    # acme.sh empties the staged file (`echo "" >"$Le_Next_Domain_Key"`) before it makes the
    # next one; an empty file stands for no staged key.
    try:
        return bool(path.read_bytes().strip())
    except OSError as exc:
        raise BadInput(f"{path}: cannot be read ({exc.strerror or exc})") from exc


@dataclass(frozen=True)
class Installed:
    """What acme.sh's --reloadcmd is given: its own copies of the new files, in the domain
    folder, and the key staged for the next issuance."""

    domain: str
    key: Path
    cert: Path
    ca: Path
    fullchain: Path
    next_key: Path
    """Le_Next_Domain_Key. acme.sh exports it during --issue/--renew only, not for
    --install-cert; it is always "$CERT_KEY_PATH.next" (issue()), so that is the default."""
    force_new_key: bool

    def read(self) -> tuple[bytes, bytes, bytes, bytes]:
        """(key, cert, chain, fullchain) bytes; BadInput when one cannot be read, or when
        the certificate and CA files hold no certificate (the key and the full chain are
        checked against each other by the caller)."""
        cert, ca = read_input(self.cert), read_input(self.ca)
        parse_certificates(cert, f"CERT_PATH={self.cert}")
        parse_certificates(ca, f"CA_CERT_PATH={self.ca}")
        return read_input(self.key), cert, ca, read_input(self.fullchain)


def installed_from_environment(
    environment: Mapping[str, str], domain: str | None = None
) -> Installed:
    """The reloadcmd's variables; BadInput when one is missing or names no file."""
    paths: dict[str, Path] = {}
    for variable in ("CERT_PATH", "CERT_KEY_PATH", "CA_CERT_PATH", "CERT_FULLCHAIN_PATH"):
        value = environment.get(variable, "")
        if not value:
            raise BadInput(
                f"{variable} is not set",
                "run it as acme.sh's reload command: 'dane-hook acme-sh reload -- COMMAND'",
            )
        path = Path(value)
        if not path.is_file():
            raise BadInput(
                f"{variable}={shown_path(value)}: no such file", "check acme.sh's domain folder"
            )
        paths[variable] = path
    name = domain or _checked_domain(environment.get("Le_Domain"), "Le_Domain")
    if not name:
        raise BadInput(
            "Le_Domain is not set",
            "run it as acme.sh's reload command, or give --name",
        )
    key = paths["CERT_KEY_PATH"]
    staged = environment.get("Le_Next_Domain_Key", "")
    return Installed(
        name,
        key,
        paths["CERT_PATH"],
        paths["CA_CERT_PATH"],
        paths["CERT_FULLCHAIN_PATH"],
        Path(staged) if staged else key.with_name(key.name + ".next"),
        is_set(environment.get("Le_ForceNewDomainKey")),
    )


def staged_key(path: Path) -> PublicKey | None:
    """The public key staged in Le_Next_Domain_Key, or None when nothing is staged there."""
    if not path.exists() or not _has_content(path):
        return None
    return load_public_key(path)


def prospective_chain(
    current: ServedChain | None,
    key: PublicKey,
    names: Sequence[str],
    now: datetime,
) -> ServedChain:
    """The chain the coming issuance is expected to bring: a leaf with the coming key and the
    order's names, under the issuers of the chain in use (the CA may also issue from another
    intermediate; until the CA catalog says which, the current one is what is checked).

    Only its key, names, extensions and issuer path mean anything: it is matched against the
    published records and never served, so it is signed with a throwaway key.
    """
    if not names and current is None:
        raise BadInput("the coming certificate has no name: give --domain")
    subject = (
        current.leaf.subject
        if current is not None
        else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    )
    lifetime = (
        not_after(current.leaf) - not_before(current.leaf)
        if current is not None
        else timedelta(days=90)
    )
    san = x509.SubjectAlternativeName([x509.DNSName(n) for n in names]) if names else None
    usages = None
    authority = None
    if current is not None:
        san = san or _extension(current.leaf, x509.SubjectAlternativeName)
        usages = _extension(current.leaf, x509.ExtendedKeyUsage)
        authority = _extension(current.leaf, x509.AuthorityKeyIdentifier)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(current.leaf.issuer if current is not None else subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key), critical=True)
        .add_extension(
            usages or x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    if authority is not None:
        builder = builder.add_extension(authority, critical=False)
    leaf = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    issuers = current.issuers if current is not None else ()
    return ServedChain(leaf=leaf, issuers=issuers, key_checked=True)


_Extension = TypeVar("_Extension", bound=x509.ExtensionType)


def _extension(certificate: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _key_usage(key: PublicKey) -> x509.KeyUsage:
    # What CAs put in a TLS server certificate: RSA keys may also encipher (RSA key exchange).
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
