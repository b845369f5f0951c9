"""certbot lineages as certbot keeps them: renewal/NAME.conf, live/NAME -> archive/NAME.

certbot (certbot/_internal/storage.py): live/NAME/{cert,chain,fullchain,privkey}.pem are
relative symlinks to archive/NAME/{cert,chain,fullchain,privkey}N.pem, N growing by one per
issuance; renewal/NAME.conf is a configobj file whose [renewalparams] section keeps the options
of the last issuance (reuse_key, key_type, server, renew_before_expiry, hooks).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dane_hook.errors import BadInput, shown_path

ALL_FOUR = ("cert", "chain", "fullchain", "privkey")
_VERSION = re.compile(r"^(cert|chain|fullchain|privkey)(\d+)\.pem$")


def parse_configobj(text: str) -> dict[str, dict[str, str]]:
    """The flat key = value pairs of a renewal conf, by section ("" for the top)."""
    sections: dict[str, dict[str, str]] = {"": {}}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            sections.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        sections[section][key.strip()] = value
    return sections


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "1", "on")


@dataclass(frozen=True)
class Lineage:
    """One certbot certificate lineage."""

    name: str
    config_dir: Path
    renewal: dict[str, str] = field(default_factory=dict)
    """The [renewalparams] of renewal/NAME.conf (empty when the file is missing)."""
    top: dict[str, str] = field(default_factory=dict)
    """The top-level keys of renewal/NAME.conf (archive_dir, cert, privkey, ...)."""

    @property
    def live_dir(self) -> Path:
        return self.config_dir / "live" / self.name

    @property
    def archive_dir(self) -> Path:
        archive = self.top.get("archive_dir")
        return Path(archive) if archive else self.config_dir / "archive" / self.name

    @property
    def reuse_key(self) -> bool:
        # certbot >= 2.0 makes a new key at every renewal unless reuse_key is set.
        return _truthy(self.renewal.get("reuse_key"))

    @property
    def key_type(self) -> str:
        return self.renewal.get(
            "key_type", "ecdsa" if not self.renewal.get("rsa_key_size") else "rsa"
        )

    @property
    def server(self) -> str | None:
        return self.renewal.get("server")

    @property
    def renew_before_expiry(self) -> str | None:
        return self.top.get("renew_before_expiry") or self.renewal.get("renew_before_expiry")

    def live(self, kind: str) -> Path:
        return self.live_dir / f"{kind}.pem"

    def live_version(self) -> int:
        """The archive version live/ points at (certbot's current_version)."""
        target = os.readlink(self.live("cert")) if self.live("cert").is_symlink() else ""
        found = _VERSION.match(Path(target).name)
        if not found:
            raise BadInput(
                f"{self.live('cert')}: not a symlink into archive/ as certbot makes it",
                "is this a certbot lineage?",
            )
        return int(found.group(2))

    def versions(self) -> list[int]:
        """Archive versions that have all four files."""
        if not self.archive_dir.is_dir():
            return []
        seen: dict[int, set[str]] = {}
        for entry in self.archive_dir.iterdir():
            found = _VERSION.match(entry.name)
            if found:
                seen.setdefault(int(found.group(2)), set()).add(found.group(1))
        return sorted(v for v, kinds in seen.items() if kinds >= set(ALL_FOUR))

    def archive(self, kind: str, version: int) -> Path:
        return self.archive_dir / f"{kind}{version}.pem"


def read_lineage(config_dir: Path, name: str) -> Lineage:
    conf = config_dir / "renewal" / f"{name}.conf"
    sections: dict[str, dict[str, str]] = {"": {}}
    if conf.is_file():
        try:
            sections = parse_configobj(conf.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise BadInput(f"{conf}: cannot be read ({exc.strerror})") from exc
    lineage = Lineage(name, config_dir, sections.get("renewalparams", {}), sections[""])
    if not lineage.live_dir.is_dir():
        raise BadInput(
            f"{lineage.live_dir}: no such certbot lineage",
            "see 'certbot certificates' for the names, or give --certbot-dir",
        )
    return lineage


def lineage_of_live_dir(live_dir: Path) -> Lineage:
    """The lineage of RENEWED_LINEAGE (certbot's deploy hook: the live/NAME directory)."""
    live = Path(live_dir)
    if live.parent.name != "live":
        raise BadInput(f"{shown_path(live)}: not a certbot live/NAME directory")
    return read_lineage(live.parent.parent, live.name)


def all_lineages(config_dir: Path) -> list[Lineage]:
    """Every lineage with a renewal conf, as `certbot renew` walks them."""
    renewal = config_dir / "renewal"
    if not renewal.is_dir():
        return []
    names = sorted(p.name[: -len(".conf")] for p in renewal.glob("*.conf"))
    return [read_lineage(config_dir, n) for n in names if (config_dir / "live" / n).is_dir()]
