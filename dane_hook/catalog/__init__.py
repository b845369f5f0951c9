"""The CA issuer catalog shipped with dane-hook.

Which intermediates a CA may issue the next certificate from, per key type, so that the 2 1 1
records cover all of them before the CA switches (Let's Encrypt picks among its active
intermediates at random and may move to a backup one without warning). The shipped catalog is
`data/MANIFEST.tsv` and its PEM files; a local overlay under the state directory is merged over
it. Loading reads 80-odd certificates, so only the commands that need it import this package.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from dane_hook.catalog.model import (
    MAY_ISSUE,
    CAKey,
    Catalog,
    CatalogEntry,
    KeyFamily,
    Role,
    Status,
    merge,
)
from dane_hook.catalog.overlay import read_overlay
from dane_hook.catalog.shipped import SHIPPED_DATE, age_warning, shipped_entries

__all__ = [
    "MAY_ISSUE",
    "SHIPPED_DATE",
    "CAKey",
    "Catalog",
    "CatalogEntry",
    "KeyFamily",
    "Role",
    "Status",
    "load_catalog",
]


def load_catalog(state_dir: Path | str | None, now: datetime) -> Catalog:
    """The shipped catalog with the overlay of `state_dir` (None: none) merged over it.

    `warnings` says when the overlay cannot be read and when the shipped catalog is older
    than 12 months at `now`.
    """
    overlay, warnings = read_overlay(state_dir) if state_dir is not None else ([], [])
    stale = age_warning(now)
    if stale is not None:
        warnings.append(stale)
    path = None
    if overlay:
        path = overlay[0].origin
    return Catalog(tuple(merge(shipped_entries(), overlay)), SHIPPED_DATE, path, tuple(warnings))
