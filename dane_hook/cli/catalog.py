"""`dane-hook catalog`: show the CA catalog, or add CA certificates to the local overlay."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from enum import Enum

from dane_hook.catalog import Catalog, Role, Status, load_catalog
from dane_hook.catalog.model import CAKey
from dane_hook.catalog.overlay import add_to_overlay, overlay_path
from dane_hook.config import load_config
from dane_hook.exitcodes import ExitCode
from dane_hook.render.records import SCHEMA_VERSION
from dane_hook.sources.files import load_certificates
from dane_hook.storage import DEFAULT_STATE_DIR


class CatalogFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(
        dest="catalog_command", metavar="ACTION", parser_class=type(parser)
    )
    actions.required = True
    show = actions.add_parser(
        "show", help="what the catalog holds and its date", description="what the catalog holds"
    )
    show.add_argument(
        "--format", choices=[f.value for f in CatalogFormat], default=CatalogFormat.TEXT.value
    )
    add = actions.add_parser(
        "add",
        help="add CA certificates to the local overlay (merged over the shipped catalog)",
        description="add CA certificates (intermediates or roots) to the local overlay, or "
        "change the status of one already there; a key the overlay names takes its CA and "
        "status for every certificate of it",
    )
    add.add_argument("pem", nargs="+", metavar="PEM", help="PEM files of CA certificates")
    add.add_argument("--ca", required=True, help="the CA operator, e.g. letsencrypt")
    add.add_argument(
        "--status",
        required=True,
        choices=[Status.ACTIVE.value, Status.BACKUP.value, Status.RETIRED.value],
        help="active: issues now; backup: may issue without warning; retired: issues no more",
    )
    for sub in (show, add):
        sub.add_argument(
            "--state-dir",
            metavar="DIR",
            help="where the overlay is kept (default: the configuration's state_dir, "
            f"{DEFAULT_STATE_DIR})",
        )


def execute(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc)
    args.state_dir = args.state_dir or str(load_config(None).state_dir)
    if args.catalog_command == "add":
        certificates = [(c, path) for path in args.pem for c in load_certificates(path)]
        added = add_to_overlay(args.state_dir, certificates, args.ca, Status(args.status), now)
        for entry in added:
            print(
                f"added {entry.name} ({entry.ca}, {entry.role.value}, {entry.status.value}, "
                f"{entry.key}, 2 1 1 {entry.spki_sha256.hex()}) to {overlay_path(args.state_dir)}"
            )
        return ExitCode.OK
    catalog = load_catalog(args.state_dir, now)
    for warning in catalog.warnings:
        print(f"dane-hook: warning: {warning}", file=sys.stderr)
    sys.stdout.write(CATALOG_RENDERERS[CatalogFormat(args.format)](catalog, now))
    return ExitCode.OK


# Order of the statuses in `show`: what may issue first.
_ORDER = {Status.ACTIVE: 0, Status.BACKUP: 1, Status.UNKNOWN: 2, Status.RETIRED: 3}


def _sorted_keys(catalog: Catalog) -> list[CAKey]:
    return sorted(
        catalog.keys,
        key=lambda k: (k.ca, k.role is Role.ROOT, k.family or "", _ORDER[k.status], k.name),
    )


def _text(catalog: Catalog, now: datetime) -> str:
    shipped = sum(1 for e in catalog.entries if e.origin == "shipped")
    local = len(catalog.entries) - shipped
    lines = [
        f"CA catalog of {catalog.as_of:%Y-%m-%d} ({(now.date() - catalog.as_of).days} days old): "
        f"{shipped} shipped certificates"
        + (f", {local} from the overlay {catalog.overlay}" if catalog.overlay else ", no overlay"),
    ]
    ca = None
    for key in _sorted_keys(catalog):
        if key.ca != ca:
            ca = key.ca
            lines.append(ca)
        expired = " expired" if key.not_after <= now else "        "
        local_mark = " (overlay)" if any(o != "shipped" for o in key.origins) else ""
        lines.append(
            f"  {key.name:<34} {key.role.value:<12} {key.status.value:<8} {key.key:<10} "
            f"until {key.not_after:%Y-%m-%d}{expired}  2 1 1 {key.spki_sha256.hex()[:16]}..."
            f"{local_mark}"
        )
    return "\n".join(lines) + "\n"


def _json(catalog: Catalog, now: datetime) -> str:
    document = {
        "schema_version": SCHEMA_VERSION,
        "date": catalog.as_of.isoformat(),
        "overlay": catalog.overlay,
        "warnings": list(catalog.warnings),
        "keys": [
            {
                "ca": k.ca,
                "name": k.name,
                "role": k.role.value,
                "status": k.status.value,
                "key": k.key,
                "key_family": k.family.value if k.family else None,
                "not_after": k.not_after.isoformat(),
                "expired": k.not_after <= now,
                "spki_sha256": k.spki_sha256.hex(),
                "record_211": k.records(2, 1, 1)[0].to_text(),
                "certificates": [
                    {
                        "file": e.file,
                        "origin": e.origin,
                        "subject": e.certificate.subject.rfc4514_string(),
                        "issuer": e.certificate.issuer.rfc4514_string(),
                        "status": e.status.value,
                        "not_before": e.not_before.isoformat(),
                        "not_after": e.not_after.isoformat(),
                        "cert_sha256": e.cert_sha256.hex(),
                    }
                    for e in k.certificates
                ],
            }
            for k in _sorted_keys(catalog)
        ],
    }
    return json.dumps(document, indent=2) + "\n"


CATALOG_RENDERERS: dict[CatalogFormat, Callable[[Catalog, datetime], str]] = {
    CatalogFormat.TEXT: _text,
    CatalogFormat.JSON: _json,
}
