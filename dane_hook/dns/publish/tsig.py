"""TSIG key files (RFC 8945) as BIND's tsig-keygen and Knot's `keymgr -t` write them.

    key "tlsa-update" {                # tsig-keygen -a hmac-sha256 tlsa-update
        algorithm hmac-sha256;
        secret "base64...";
    };

    # hmac-sha256:tlsa-update:base64...   # keymgr -t tlsa-update hmac-sha256
    key:
      - id: tlsa-update
        algorithm: hmac-sha256
        secret: base64...

Error messages name the file and line and what was expected; they never quote the file's text,
which holds the secret.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.name
import dns.tsig

from dane_hook.dns.publish.base import read_private_file
from dane_hook.errors import BadInput

# RFC 8945 §6 lists the HMAC algorithms; names as BIND and Knot write them.
ALGORITHMS: dict[str, dns.name.Name] = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}


@dataclass(frozen=True)
class TsigKey:
    """One TSIG key: its name (as the server knows it), algorithm and secret."""

    name: dns.name.Name
    algorithm: dns.name.Name
    secret: bytes = field(repr=False)

    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, self.algorithm)


@dataclass(frozen=True)
class _Entry:
    line: int
    name: str
    algorithm: str | None
    secret: str | None


def load_tsig_key(path: Path, name: str | None = None) -> TsigKey:
    """The key in `path` (the one called `name` when the file holds several)."""
    text = read_private_file(path, "a TSIG key")
    entries = _knot_entries(text) if re.search(r"(?m)^key:\s*$", text) else _bind_entries(text)
    if not entries:
        raise BadInput(
            f"{path}: no TSIG key found",
            'expected tsig-keygen\'s `key "NAME" { algorithm ...; secret "..."; };` '
            "or keymgr -t's `key:` section",
        )
    if name is not None:
        wanted = _key_name(path, 0, name)
        entries = [e for e in entries if _key_name(path, e.line, e.name) == wanted]
        if not entries:
            raise BadInput(f"{path}: no key named {wanted}")
    elif len(entries) > 1:
        raise BadInput(f"{path}: {len(entries)} keys in the file", "say which one with key_name")
    entry = entries[0]
    if entry.algorithm is None:
        raise BadInput(f"{path}: line {entry.line}: key {entry.name}: expected an algorithm")
    algorithm = ALGORITHMS.get(entry.algorithm.lower())
    if algorithm is None:
        raise BadInput(
            f"{path}: line {entry.line}: key {entry.name}: unknown algorithm",
            f"expected one of {', '.join(ALGORITHMS)}",
        )
    if entry.secret is None:
        raise BadInput(f"{path}: line {entry.line}: key {entry.name}: expected a secret")
    try:
        secret = base64.b64decode(entry.secret, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(
            f"{path}: line {entry.line}: key {entry.name}: the secret is not base64"
        ) from None
    if not secret:
        raise BadInput(f"{path}: line {entry.line}: key {entry.name}: the secret is empty")
    return TsigKey(_key_name(path, entry.line, entry.name), algorithm, secret)


def _key_name(path: Path, line: int, text: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException:
        raise BadInput(f"{path}: line {line}: the key name is not a DNS name") from None


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


_BIND_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*|#[^\n]*", re.S)
_BIND_KEY = re.compile(r'\bkey\s+(?:"([^"]+)"|([^\s{"]+))\s*\{(.*?)\}\s*;', re.S)
_BIND_ALGORITHM = re.compile(r'\balgorithm\s+"?([A-Za-z0-9.-]+)"?\s*;')
_BIND_SECRET = re.compile(r'\bsecret\s+"([^"]*)"\s*;')


def _bind_entries(text: str) -> list[_Entry]:
    # Comments become spaces of the same length, so offsets (and line numbers) stay right.
    bare = _BIND_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    entries = []
    for match in _BIND_KEY.finditer(bare):
        body = match.group(3)
        algorithm = _BIND_ALGORITHM.search(body)
        secret = _BIND_SECRET.search(body)
        entries.append(
            _Entry(
                _line_of(bare, match.start()),
                match.group(1) or match.group(2),
                algorithm.group(1) if algorithm else None,
                re.sub(r"\s+", "", secret.group(1)) if secret else None,
            )
        )
    return entries


_KNOT_ITEM = re.compile(r"^\s*(-\s+)?(id|algorithm|secret)\s*:\s*(.*?)\s*$")


def _knot_entries(text: str) -> list[_Entry]:
    """Knot's YAML subset: top-level `key:`, then `- id:` items with algorithm and secret."""
    entries: list[_Entry] = []
    current: dict[str, str] = {}
    start = 0
    in_keys = False

    def close() -> None:
        if "id" in current:
            entries.append(
                _Entry(start, current["id"], current.get("algorithm"), current.get("secret"))
            )
        current.clear()

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()  # base64 has no "#": only comments are cut
        if not line.strip():
            continue
        if not line[0].isspace():  # a top-level section
            close()
            in_keys = line.strip() == "key:"
            continue
        if not in_keys:
            continue
        match = _KNOT_ITEM.match(line)
        if match is None:
            continue
        dash, key, value = match.groups()
        value = value.strip().strip("'\"")
        if dash:
            close()
            start = number
        current[key] = value
    close()
    return entries
