"""The local overlay: CA certificates an operator added under the state directory.

One JSON file, `catalog-overlay.json`, holds each added certificate as PEM with its CA and
status; digests are computed from the PEM on every load, as for the shipped catalog. It is
replaced atomically under the state directory's lock, like the state file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dane_hook.catalog.model import CatalogEntry, Role, Status
from dane_hook.certs.chain import is_ca, is_self_signed
from dane_hook.errors import BadInput
from dane_hook.storage import LOCK_FILE, StateError, write_atomically

OVERLAY_FILE = "catalog-overlay.json"
SCHEMA_VERSION = 1


def overlay_path(state_dir: Path | str) -> Path:
    return Path(state_dir) / OVERLAY_FILE


def _entry(item: Any, origin: str) -> CatalogEntry:
    """One overlay item; ValueError/KeyError/TypeError when it is not one."""
    certificate = x509.load_pem_x509_certificate(str(item["pem"]).encode())
    return CatalogEntry(
        certificate, str(item["ca"]), Role(item["role"]), Status(item["status"]), origin
    )


def read_overlay(state_dir: Path | str) -> tuple[list[CatalogEntry], list[str]]:
    """The overlay's entries and, when it cannot be used, one warning (then no entry).

    An unreadable overlay does not stop a hook: the shipped catalog still stands, and the
    warning says which file to fix.
    """
    path = overlay_path(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no state directory there: no overlay
        return [], []
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"CA catalog overlay {path}: cannot be read ({exc}); using the shipped one"]
    try:
        return _parse(text, str(path)), []
    except (ValueError, KeyError, TypeError) as exc:
        return [], [f"CA catalog overlay {path}: not usable ({exc}); using the shipped one"]


def _parse(text: str, origin: str) -> list[CatalogEntry]:
    document = json.loads(text)
    if document.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema_version {document.get('schema_version')!r}")
    return [_entry(item, origin) for item in document["entries"]]


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    try:
        directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        lock = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o640)
    except OSError as exc:
        raise StateError(
            f"state directory {directory}: cannot be used ({exc.strerror or exc})",
            "give a writable --state-dir",
        ) from exc
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def role_of(certificate: x509.Certificate, source: str) -> Role:
    """Root when self-signed, else intermediate; a certificate that is no CA is refused."""
    if not is_ca(certificate):
        raise BadInput(
            f"{source}: {certificate.subject.rfc4514_string()} is not a CA certificate",
            "give the CA's intermediate or root certificate, not a server certificate",
        )
    return Role.ROOT if is_self_signed(certificate) else Role.INTERMEDIATE


def add_to_overlay(
    state_dir: Path | str,
    certificates: Sequence[tuple[x509.Certificate, str]],
    ca: str,
    status: Status,
    now: datetime,
) -> list[CatalogEntry]:
    """Add (or update) CA certificates, each with the file it came from; returns the new entries.

    A certificate already in the overlay is replaced, so adding it again changes its status.
    """
    if not ca.strip():
        raise BadInput("--ca is empty", "name the CA, e.g. --ca letsencrypt")
    directory = Path(state_dir)
    path = overlay_path(directory)
    added = [
        CatalogEntry(c, ca.strip(), role_of(c, source), status, str(path))
        for c, source in certificates
    ]
    with _locked(directory):
        items: list[dict[str, Any]] = []
        if path.exists():
            try:
                text = path.read_text(encoding="utf-8")
                _parse(text, str(path))
                items = list(json.loads(text)["entries"])
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                raise BadInput(
                    f"CA catalog overlay {path}: not usable ({exc})",
                    "fix or remove the file, then add again",
                ) from exc
        replaced = {e.cert_sha256 for e in added}
        kept = [i for i in items if _entry(i, str(path)).cert_sha256 not in replaced]
        new = [
            {
                "ca": e.ca,
                "status": e.status.value,
                "role": e.role.value,
                "name": e.name,
                "added": now.isoformat(),
                "pem": e.certificate.public_bytes(serialization.Encoding.PEM).decode(),
            }
            for e in added
        ]
        document = {"schema_version": SCHEMA_VERSION, "entries": [*kept, *new]}
        data = json.dumps(document, indent=2).encode() + b"\n"
        try:
            write_atomically(path, data, mode=0o644)
        except OSError as exc:
            raise StateError(
                f"CA catalog overlay {path}: cannot be written ({exc.strerror or exc})",
                "give a writable --state-dir",
            ) from exc
    return added
