"""The served view: the certificate files services read, owned by dane-hook, switched atomically.

certbot relinks live/ to the newest archive version on every run (ensure_deployed), and acme.sh
overwrites its install paths, so a hold-back cannot live in the ACME client's tree. Services
read /etc/dane-hook/served/NAME/ instead:

    served/NAME/versions/<id>/{privkey,cert,chain,fullchain,combined}.pem   complete versions
    served/NAME/current  -> versions/<id>                                  the version served
    served/NAME/previous -> versions/<id>                                  for instant rollback
    served/NAME/privkey.pem -> current/privkey.pem  (and the other four)   stable paths

Why a versioned directory and one symlink: a version is written completely (each file fsynced,
then the directory renamed into place) before `current` changes, and `current` changes by
rename(2) of a new symlink over the old one, which is atomic. Whatever instruction dane-hook is
killed at, `current` names either the old complete version or the new complete one, so a reader
never sees key N with certificate N-1 in one version. A service that reads two files (nginx,
Dovecot) could still open them across a switch; combined.pem (key, then the chain, as Postfix's
smtpd_tls_chain_files reads it) is one file and so is always consistent.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dane_hook.errors import BadInput

FILES = ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem", "combined.pem")
_PRIVATE = {"privkey.pem", "combined.pem"}


class ServedViewError(BadInput):
    """The served view cannot be read or written (exit 3): a file or permission problem, the
    administrator's to fix like any bad input; exit 4 stays "a lookup failed" (issue 15)."""


@dataclass(frozen=True)
class ChainFiles:
    """The bytes of one version. The key is copied, never parsed for output or logged."""

    privkey: bytes
    cert: bytes
    chain: bytes
    fullchain: bytes

    @property
    def combined(self) -> bytes:
        return self.privkey.rstrip(b"\n") + b"\n" + self.fullchain

    def content(self, name: str) -> bytes:
        return {
            "privkey.pem": self.privkey,
            "cert.pem": self.cert,
            "chain.pem": self.chain,
            "fullchain.pem": self.fullchain,
            "combined.pem": self.combined,
        }[name]

    @property
    def version_id(self) -> str:
        """Same files, same id: installing a version twice changes nothing."""
        digest = hashlib.sha256()
        for part in (self.privkey, self.fullchain, self.cert, self.chain):
            digest.update(hashlib.sha256(part).digest())
        return digest.hexdigest()[:16]

    @classmethod
    def read(cls, privkey: Path, cert: Path, chain: Path, fullchain: Path) -> ChainFiles:
        try:
            return cls(
                privkey.read_bytes(), cert.read_bytes(), chain.read_bytes(), fullchain.read_bytes()
            )
        except OSError as exc:
            raise ServedViewError(
                f"{exc.filename}: cannot be read ({exc.strerror})", "check the paths and rights"
            ) from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` by renaming a new symlink over it (atomic, rename(2))."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    os.symlink(target, temporary)
    os.replace(temporary, link)


class ServedView:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def exists(self) -> bool:
        return (self.root / "current").is_symlink()

    def _version_of(self, link: str) -> str | None:
        path = self.root / link
        if not path.is_symlink():
            return None
        return Path(os.readlink(path)).name

    @property
    def current(self) -> str | None:
        return self._version_of("current")

    @property
    def previous(self) -> str | None:
        return self._version_of("previous")

    def path(self, name: str) -> Path:
        """The stable path a service is configured with, e.g. served/NAME/fullchain.pem."""
        return self.root / name

    def version_path(self, version: str, name: str) -> Path:
        return self.versions_dir / version / name

    def read_current(self) -> ChainFiles:
        version = self.current
        if version is None:
            raise ServedViewError(f"{self.root}: no version is served", "run dane-hook enroll")
        return ChainFiles.read(
            *(
                self.version_path(version, n)
                for n in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem")
            )
        )

    def _write_version(self, files: ChainFiles) -> str:
        version = files.version_id
        contents = {n: (files.content(n), 0o600 if n in _PRIVATE else 0o644) for n in FILES}
        write_complete_dir(self.versions_dir / version, contents, mode=0o755)
        return version

    def install(self, files: ChainFiles) -> str:
        """Serve `files`: write the version, switch `current` to it, keep the old as previous."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            version = self._write_version(files)
            old = self.current
            if old == version:
                self._ensure_stable_links()
                return version
            if old is not None:
                _replace_symlink(self.root / "previous", f"versions/{old}")
            _replace_symlink(self.root / "current", f"versions/{version}")
            self._ensure_stable_links()
            _fsync_dir(self.root)
            self.prune()
        except OSError as exc:
            raise ServedViewError(
                f"{self.root}: cannot write the served view ({exc.strerror or exc})",
                "check that dane-hook runs as root and the directory is writable",
            ) from exc
        return version

    def rollback(self) -> str:
        """Serve the previous version again (the current one becomes previous)."""
        old, new = self.current, self.previous
        if old is None or new is None:
            raise ServedViewError(f"{self.root}: there is no previous version to roll back to")
        try:
            _replace_symlink(self.root / "previous", f"versions/{old}")
            _replace_symlink(self.root / "current", f"versions/{new}")
            _fsync_dir(self.root)
        except OSError as exc:
            raise ServedViewError(f"{self.root}: cannot roll back ({exc.strerror or exc})") from exc
        return new

    def _ensure_stable_links(self) -> None:
        for name in FILES:
            link = self.root / name
            if not link.is_symlink():
                _replace_symlink(link, f"current/{name}")

    def prune(self) -> None:
        """Remove versions that are neither current nor previous, and leftover staging dirs."""
        keep = {self.current, self.previous}
        if not self.versions_dir.is_dir():
            return
        for entry in self.versions_dir.iterdir():
            if entry.name not in keep:
                discard(entry)


def write_complete_dir(
    target: Path, contents: Mapping[str, tuple[bytes, int]], *, mode: int
) -> None:
    """Create `target` with these files (name -> (bytes, mode)), or leave it if it exists.

    The files are written and fsynced in a staging directory that is then renamed to
    `target`, and `discard()` renames before deleting: so a directory under its final name
    is always complete, whatever instruction a run is killed at.
    """
    if target.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".staging-{target.name}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=mode)
    for name, (data, file_mode) in contents.items():
        fd = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    _fsync_dir(staging)
    os.rename(staging, target)
    _fsync_dir(target.parent)


def discard(path: Path) -> None:
    """Delete a directory by renaming it out of the way first (see write_complete_dir)."""
    doomed = path
    if not path.name.startswith("."):
        doomed = path.with_name(f".trash-{path.name}-{os.getpid()}")
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return
    shutil.rmtree(doomed, ignore_errors=True)
