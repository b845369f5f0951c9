"""dane-hook's TLSA records equal those of openssl, ldns-dane, hash-slinger and danetool.

Every tool runs in an offline "create" mode on local files (no verify modes, no network). The
certificates are made at test time: a P-256 root, then an intermediate and a leaf with the key
type under test, so that usage 2 (the intermediate) and usage 3 (the leaf) both cover each type.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from dane_hook.certs.chain import build_chain
from dane_hook.sources.files import load_certificates, load_public_key
from dane_hook.tlsa.generate import certificate_record, chain_records, key_record, key_records
from dane_hook.tlsa.record import TLSARecord
from tests.pki import HOST, ChainPaths, IssuedChain, KeyType, issued_chain

Params = tuple[int, int, int]

ALL_PARAMS: tuple[Params, ...] = tuple(
    (usage, selector, mtype) for usage in (3, 2) for selector in (0, 1) for mtype in (0, 1, 2)
)


@dataclass(frozen=True)
class Tool:
    """An oracle: the Debian package it comes in and the parameters it can compute."""

    name: str
    package: str
    params: tuple[Params, ...]


TOOLS = (
    Tool("openssl", "openssl", ALL_PARAMS),
    Tool("ldns-dane", "ldnsutils", ALL_PARAMS),
    Tool("tlsa", "hash-slinger", ALL_PARAMS),
    # danetool --hash takes sha256 or sha512 only: it has no Full(0) matching type.
    Tool("danetool", "gnutls-bin", tuple(p for p in ALL_PARAMS if p[2] != 0)),
)


@dataclass(frozen=True)
class Answer:
    """What one tool printed for one certificate and (usage, selector, matching type)."""

    command: str
    returncode: int
    stderr: str
    record: str | None
    """`U S M hex` as the tool computed it, or None when it printed no record."""


_RECORD_AFTER_TLSA = re.compile(
    r"\bTLSA\s+\(?\s*(\d+)\s+(\d+)\s+(\d+)\s+([0-9A-Fa-f\s]+?)\s*\)?\s*$"
)


def record_in(output: str) -> str | None:
    """The record in a tool's output: `... TLSA 3 1 1 hex` or `... TLSA ( 03 01 01 hex )`."""
    for line in output.splitlines():
        found = _RECORD_AFTER_TLSA.search(line)
        if found:
            usage, selector, mtype, data = found.groups()
            hexdata = "".join(data.split()).lower()
            return f"{int(usage)} {int(selector)} {int(mtype)} {hexdata}"
    return None


def run(argv: Sequence[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), input=stdin, capture_output=True, timeout=120, check=False)


def openssl_answer(certificate: Path, params: Params) -> Answer:
    """What `openssl x509` (and `openssl pkey`, for the SPKI) selects, hashed by `openssl dgst`."""
    usage, selector, mtype = params
    commands: list[list[str]]
    if selector == 0:
        commands = [["openssl", "x509", "-in", str(certificate), "-outform", "DER"]]
    else:
        commands = [
            ["openssl", "x509", "-in", str(certificate), "-noout", "-pubkey"],
            ["openssl", "pkey", "-pubin", "-outform", "DER"],
        ]
    if mtype in (1, 2):
        commands.append(["openssl", "dgst", "-sha256" if mtype == 1 else "-sha512", "-r"])
    data: bytes | None = None
    for argv in commands:
        done = run(argv, data)
        if done.returncode != 0:
            return Answer(
                " | ".join(map(" ".join, commands)), done.returncode, done.stderr.decode(), None
            )
        data = done.stdout
    assert data is not None
    # `dgst -r` prints "HEX *stdin"; Full(0) is the DER itself.
    hexdata = data.split()[0].decode() if mtype in (1, 2) else data.hex()
    return Answer(
        " | ".join(map(" ".join, commands)), 0, "", f"{usage} {selector} {mtype} {hexdata}"
    )


def tool_argv(tool: str, files: ChainPaths, params: Params) -> list[str]:
    usage, selector, mtype = params
    usm = [str(usage), str(selector), str(mtype)]
    # hash-slinger and danetool pin the first certificate of the file they are given.
    pinned = str(files.cert if usage == 3 else files.intermediate)
    if tool == "ldns-dane":
        if usage == 3:
            return ["ldns-dane", "-c", pinned, "create", HOST, "25", *usm]
        # ldns-dane builds the path itself and counts -o from its top; without the root in the
        # file, 0 is the intermediate (shared/infra/RECIPE.md §8).
        return ["ldns-dane", "-c", str(files.fullchain), "-o", "0", "create", HOST, "25", *usm]
    if tool == "tlsa":
        # Given several certificates, hash-slinger asks on the terminal which one to pin for
        # usage 2; given one, it takes it.
        argv = ["tlsa", "--create", "--certificate", pinned, "-p", "25"]
        return [*argv, "-u", usm[0], "-s", usm[1], "-m", usm[2], HOST]
    if tool == "danetool":
        argv = ["danetool", "--tlsa-rr", "--host", HOST, "--port", "25"]
        argv += ["--load-certificate", pinned, "--hash", "sha256" if mtype == 1 else "sha512"]
        argv += ["--ca"] if usage == 2 else []
        argv += ["--x509"] if selector == 0 else []
        return argv
    raise ValueError(tool)


def tool_answer(tool: str, files: ChainPaths, params: Params) -> Answer:
    if tool == "openssl":
        return openssl_answer(files.cert if params[0] == 3 else files.intermediate, params)
    argv = tool_argv(tool, files, params)
    done = run(argv)
    record = record_in(done.stdout.decode(errors="replace")) if done.returncode == 0 else None
    return Answer(" ".join(argv), done.returncode, done.stderr.decode(errors="replace"), record)


class Lab:
    """Chains per key type and the tools' answers, each made once per session.

    hash-slinger takes about half a second per run, so a tool's answers for one key type are
    computed together, in parallel, the first time a case asks for one of them.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._lock = threading.Lock()
        self._chains: dict[KeyType, tuple[IssuedChain, ChainPaths]] = {}
        self._answers: dict[tuple[str, KeyType], dict[Params, Answer]] = {}

    def chain(self, key_type: KeyType) -> tuple[IssuedChain, ChainPaths]:
        with self._lock:
            if key_type not in self._chains:
                chain = issued_chain(key_type)
                self._chains[key_type] = (chain, chain.write(self._folder / key_type.value))
            return self._chains[key_type]

    def answer(self, tool: Tool, key_type: KeyType, params: Params) -> Answer:
        _, files = self.chain(key_type)
        key = (tool.name, key_type)
        if key not in self._answers:
            if shutil.which(tool.name) is None:
                pytest.fail(f"{tool.name} is not installed: apt-get install {tool.package}")
            with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
                answers = pool.map(lambda p: tool_answer(tool.name, files, p), tool.params)
                self._answers[key] = dict(zip(tool.params, answers, strict=True))
        return self._answers[key][params]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab(tmp_path_factory.mktemp("oracles"))


def served_record(files: ChainPaths, params: Params) -> TLSARecord:
    """dane-hook's record for the chain in fullchain.pem: the leaf's or the intermediate's."""
    served = build_chain(load_certificates(files.fullchain))
    sources = chain_records(served, [params])
    assert len(sources) == 1, sources
    assert sources[0].role == ("leaf" if params[0] == 3 else "issuer")
    assert sources[0].depth == (0 if params[0] == 3 else 1)
    return sources[0].record


def certificate_of(path: Path) -> x509.Certificate:
    [certificate] = load_certificates(path)
    return certificate


def _case_id(tool: Tool, key_type: KeyType, params: Params) -> str:
    return f"{tool.name}-{key_type.value}-{''.join(map(str, params))}"


CASES = [
    pytest.param(tool, key_type, params, id=_case_id(tool, key_type, params))
    for tool in TOOLS
    for key_type in KeyType
    for params in tool.params
]


@pytest.mark.parametrize(("tool", "key_type", "params"), CASES)
def test_record_equals_the_tool(lab: Lab, tool: Tool, key_type: KeyType, params: Params) -> None:
    _, files = lab.chain(key_type)
    answer = lab.answer(tool, key_type, params)
    if answer.record is None:
        if key_type is KeyType.ED25519:
            pytest.skip(
                f"{tool.name} makes no record for an Ed25519 certificate: {answer.stderr.strip()}"
            )
        pytest.fail(
            f"`{answer.command}` gave no record (exit {answer.returncode}): {answer.stderr}"
        )
    pinned = files.cert if params[0] == 3 else files.intermediate
    direct = certificate_record(certificate_of(pinned), *params)
    assert served_record(files, params) == direct
    assert direct.to_text() == answer.record, answer.command


@pytest.mark.parametrize("key_type", KeyType, ids=lambda key_type: key_type.value)
def test_issuer_records_up_to_the_root_equal_ldns_dane(lab: Lab, key_type: KeyType) -> None:
    """With the root in the bundle each issuer has its 2 x x; ldns-dane's -o counts from the top."""
    _, files = lab.chain(key_type)
    wanted = [(2, 1, 1), (2, 0, 2)]
    sources = chain_records(build_chain(load_certificates(files.fullchain_with_root)), wanted)
    assert [(s.role, s.depth) for s in sources] == [("issuer", 1)] * 2 + [("issuer", 2)] * 2
    for source in sources:
        usage, selector, mtype = source.record.params
        offset = 2 - source.depth  # root at 0, intermediate at 1, leaf at 2
        argv = ["ldns-dane", "-c", str(files.fullchain_with_root), "-o", str(offset), "create"]
        argv += [HOST, "25", str(usage), str(selector), str(mtype)]
        done = run(argv)
        assert done.returncode == 0, done.stderr.decode()
        assert source.record.to_text() == record_in(done.stdout.decode()), " ".join(argv)


KEY_FILES = [
    pytest.param(key_type, form, mtype, id=f"{key_type.value}-{form}-31{mtype}")
    for key_type in KeyType
    for form in ("pkcs8", "traditional")
    for mtype in (0, 1, 2)
]


@pytest.mark.parametrize(("key_type", "form", "mtype"), KEY_FILES)
def test_record_of_the_private_key_equals_the_certificates(
    lab: Lab, key_type: KeyType, form: str, mtype: int
) -> None:
    chain, files = lab.chain(key_type)
    path = files.key_pkcs8 if form == "pkcs8" else files.key_traditional
    if path is None:
        pytest.skip(
            "Ed25519 keys exist only as PKCS#8: there is no traditional PEM form (RFC 8410)"
        )
    key = load_public_key(path)
    from_certificate = certificate_record(chain.leaf.certificate, 3, 1, mtype)
    assert key_record(key, 3, mtype) == from_certificate
    [source] = key_records(key, [(3, 1, mtype)])
    assert (source.record, source.role) == (from_certificate, "key")
    # and the leaf a key picks out of a bundle is the certificate the key belongs to
    assert (
        build_chain(load_certificates(files.fullchain_with_root), key).leaf
        == chain.leaf.certificate
    )
