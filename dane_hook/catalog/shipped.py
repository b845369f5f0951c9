"""The catalog shipped in the package: data/MANIFEST.tsv and the PEM files it lists."""

from __future__ import annotations

import csv
import functools
import io
from datetime import date, datetime, timedelta
from importlib.resources import files

from cryptography import x509

from dane_hook.catalog.model import CatalogEntry, Role, Status
from dane_hook.errors import BadInput

SHIPPED_DATE = date(2026, 7, 1)
"""The day the manifest's statuses were taken from the CAs' own pages (Let's Encrypt's, 2026-07).

It is data, not derived: no certificate carries it. The newest not_before in the manifest
(2026-05-13) only bounds it from below, and a CA moving an intermediate from backup to active
issues no new certificate. It is kept here rather than in a file beside MANIFEST.tsv so that
every install ships it with the code that reads it; refreshing the catalog updates both
(README, "CA catalog"), and a test keeps it no older than the newest certificate.
"""

MAX_AGE = timedelta(days=365)
"""Past this the shipped catalog may miss intermediates a CA started to use: warn."""

# Columns read from MANIFEST.tsv. Its digest and key columns are for people and for the test
# that proves them equal to what dane-hook computes; dane-hook itself never reads them.
_COLUMNS = ("file", "ca", "role", "status")


@functools.cache
def shipped_entries() -> tuple[CatalogEntry, ...]:
    """Every certificate of the shipped catalog (read once per process)."""
    folder = files("dane_hook.catalog") / "data"
    text = (folder / "MANIFEST.tsv").read_text(encoding="utf-8")
    entries = []
    for row in csv.DictReader(io.StringIO(text), delimiter="\t"):
        missing = [c for c in _COLUMNS if not row.get(c)]
        if missing:
            raise BadInput(f"shipped CA catalog: a row lacks {', '.join(missing)}: {row}")
        data = (folder / row["file"]).read_bytes()
        try:
            certificate = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise BadInput(f"shipped CA catalog: {row['file']} is not a PEM certificate") from exc
        entries.append(
            CatalogEntry(
                certificate,
                row["ca"],
                Role(row["role"]),
                Status(row["status"]),
                "shipped",
                row["file"],
            )
        )
    return tuple(entries)


def age_warning(now: datetime, as_of: date = SHIPPED_DATE) -> str | None:
    """A warning when the shipped catalog is older than 12 months at `now`, else None."""
    if now.date() - as_of <= MAX_AGE:
        return None
    months = (now.year - as_of.year) * 12 + now.month - as_of.month
    return (
        f"the shipped CA catalog is from {as_of:%Y-%m-%d}, {months} months old: CAs may have "
        "changed intermediates since; update dane-hook, or add new intermediates with "
        "'dane-hook catalog add' (README, CA catalog)"
    )
