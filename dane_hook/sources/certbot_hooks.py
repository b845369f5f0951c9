"""Will certbot's renewals of a lineage run dane-hook? Its stored hooks and the drop-in hooks.

What certbot runs at a renewal (certbot/_internal/hooks.py and renewal.py, the same in 2.1 and
5.x):
- the hooks stored in renewal/NAME.conf's [renewalparams]: `pre_hook`, and the deploy hook,
  written as `renew_hook` (storage.update_configuration keeps the old name for downgrades;
  older files may say `deploy_hook`);
- every executable file of renewal-hooks/pre/ and renewal-hooks/deploy/ under certbot's config
  dir, in sorted order, skipping names ending in "~" (hooks.list_hooks), unless certbot runs
  with --no-directory-hooks (a command-line option, never stored in renewal/NAME.conf).
A hook is stored only by an issuance that succeeds or by `certbot reconfigure` (certbot 2.3+,
main.reconfigure -> save_new_config_values): `certbot renew --pre-hook X --deploy-hook Y` on a
certificate that is not due answers "No hooks were run" and writes nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dane_hook.sources.certbot import Lineage

HOOKS_DIR = "renewal-hooks"
READ_LIMIT = 65536
"""Bytes of a drop-in read to see whether it runs dane-hook (a hook script is small)."""

# `dane-hook pre`, `/usr/bin/dane-hook deploy --config F`, or the packaged drop-ins' `exec
# "$dane_hook" deploy`: the program's name, then the subcommand as a word.
_RUNS = {kind: re.compile(rf"dane[-_]hook\b[^\n]*?\b{kind}\b") for kind in ("pre", "deploy")}


@dataclass(frozen=True)
class HookFinding:
    """Where certbot's renewals of the lineage get one dane-hook hook, if anywhere."""

    kind: str
    """"pre" or "deploy"."""
    source: str | None
    """The stored key (`renew_hook in renewal/NAME.conf`) or the drop-in file; None: none."""


@dataclass(frozen=True)
class HookCheck:
    lineage: str
    config_dir: Path
    pre: HookFinding
    deploy: HookFinding

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(f.kind for f in (self.pre, self.deploy) if f.source is None)

    def warning(self) -> str | None:
        """One line when a renewal would not run dane-hook; None when both hooks are there."""
        if not self.missing:
            return None
        what = " and ".join(f"dane-hook {kind}" for kind in self.missing)
        stored = " or ".join("pre_hook" if kind == "pre" else "renew_hook" for kind in self.missing)
        dirs = " or ".join(f"{self.config_dir / HOOKS_DIR / kind}/" for kind in self.missing)
        consequence = (
            "a renewed chain would not reach the served view"
            if "deploy" in self.missing
            else "nothing warns before a renewal that brings a new key"
        )
        return (
            f"certbot's renewals of {self.lineage} will not run {what}: no {stored} in "
            f"renewal/{self.lineage}.conf and no dane-hook drop-in in {dirs}; "
            f"{consequence}"
        )


def _runs(command: str, kind: str) -> bool:
    return bool(_RUNS[kind].search(command))


def _drop_in(directory: Path, kind: str) -> Path | None:
    """The first executable file of renewal-hooks/KIND/ that runs dane-hook KIND."""
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return None
    for path in entries:
        # hooks.list_hooks: executable files only, names ending in "~" skipped.
        if path.name.endswith("~") or not path.is_file() or not os.access(path, os.X_OK):
            continue
        try:
            with path.open("rb") as handle:
                text = handle.read(READ_LIMIT).decode("utf-8", "replace")
        except OSError:
            continue
        # A comment naming dane-hook runs nothing.
        if any(
            _runs(line, kind) for line in text.splitlines() if not line.lstrip().startswith("#")
        ):
            return path
    return None


def _stored(lineage: Lineage, kind: str) -> str | None:
    keys = ("pre_hook",) if kind == "pre" else ("renew_hook", "deploy_hook")
    for key in keys:
        command = lineage.renewal.get(key)
        if command and _runs(command, kind):
            return f"{key} in renewal/{lineage.name}.conf"
    return None


def check_hooks(lineage: Lineage) -> HookCheck:
    """Where the lineage's renewals get `dane-hook pre` and `dane-hook deploy` from."""
    hooks = lineage.config_dir / HOOKS_DIR
    findings = []
    for kind in ("pre", "deploy"):
        source = _stored(lineage, kind)
        if source is None:
            found = _drop_in(hooks / kind, kind)
            source = str(found) if found is not None else None
        findings.append(HookFinding(kind, source))
    return HookCheck(lineage.name, lineage.config_dir, findings[0], findings[1])
