"""Loading certificates and keys (dane_hook.sources.files): bad input is normal input here.

The CLI's table of bad files (exit 3, one line) is in test_cli.py; this is the library level:
every way a file can be wrong ends in a BadInput that names the file, never another exception.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import os
import random
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dane_hook.certs.chain import build_chain
from dane_hook.certs.keys import spki_der
from dane_hook.certs.names import dns_names
from dane_hook.cli.inputs import owners
from dane_hook.errors import BadInput, Error, UsageError
from dane_hook.sources.files import MAX_FILE_SIZE, load_certificates, load_public_key
from dane_hook.tlsa.generate import chain_records
from dane_hook.tlsa.record import TLSARecord, parse_records_text
from tests.pki import Cast, IssuedChain, KeyType, issued_chain

Loader = Callable[[Path], object]

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


@pytest.fixture(scope="module")
def chains() -> dict[KeyType, IssuedChain]:
    return {key_type: issued_chain(key_type) for key_type in KeyType}


@pytest.fixture(scope="module")
def p256(chains: dict[KeyType, IssuedChain]) -> IssuedChain:
    return chains[KeyType.ECDSA_P256]


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(DER)


def write(folder: Path, data: bytes, name: str = "input") -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def bad_input(loader: Loader, path: Path, *fragments: str) -> BadInput:
    """The BadInput the loader raises; its message names the file and says each fragment."""
    with pytest.raises(BadInput) as raised:
        loader(path)
    message = raised.value.diagnostics()
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return raised.value


# -- Bundles -----------------------------------------------------------------------------------

# Text a bundle may carry around its blocks: `openssl x509 -text` output, pkcs12 bag attributes,
# certbot's plain concatenation, CRLF from Windows editors, blanks left by a copy from a web page.
AROUND = {
    "bare": lambda blocks: b"".join(blocks),
    "text-around": lambda blocks: (
        b"subject=CN = a\nissuer=CN = b\n"
        + b"\nsome notes in between\n".join(blocks)
        + b"\n# trailing comment\n"
    ),
    "bag-attributes": lambda blocks: b"".join(
        b"Bag Attributes\n    friendlyName: x\nsubject=/CN=x\n\n" + block for block in blocks
    ),
    "crlf": lambda blocks: b"".join(blocks).replace(b"\n", b"\r\n"),
    "trailing-blanks": lambda blocks: b"".join(
        b"".join(line + b"  \n" for line in block.splitlines()) for block in blocks
    ),
    "no-final-newline": lambda blocks: b"".join(blocks).rstrip(b"\n"),
}


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=str)
@pytest.mark.parametrize("style", AROUND)
def test_bundle_in_any_order_with_text_around(
    tmp_path: Path, p256: IssuedChain, order: tuple[int, ...], style: str
) -> None:
    chain = (p256.leaf, p256.intermediate, p256.root)
    in_file = [chain[i] for i in order]
    path = write(tmp_path, AROUND[style]([c.pem() for c in in_file]))
    certificates = load_certificates(path)
    assert [der(c) for c in certificates] == [c.der() for c in in_file]
    served = build_chain(certificates)
    assert der(served.leaf) == p256.leaf.der()
    assert [der(c) for c in served.issuers] == [p256.intermediate.der(), p256.root.der()]
    assert served.stray == ()


def test_a_certificate_off_the_path_is_reported_as_stray(
    tmp_path: Path, chains: dict[KeyType, IssuedChain]
) -> None:
    ours, other = chains[KeyType.ECDSA_P256], chains[KeyType.ED25519]
    bundle = [other.intermediate, ours.leaf, ours.intermediate]
    path = write(tmp_path, b"".join(c.pem() for c in bundle))
    served = build_chain(load_certificates(path))
    assert der(served.leaf) == ours.leaf.der()
    assert [der(c) for c in served.issuers] == [ours.intermediate.der()]
    assert [der(c) for c in served.stray] == [other.intermediate.der()]


def test_single_der_certificate(tmp_path: Path, p256: IssuedChain) -> None:
    path = write(tmp_path, p256.leaf.der(), "cert.der")
    assert [der(c) for c in load_certificates(path)] == [p256.leaf.der()]


def test_certificate_and_key_in_one_file(tmp_path: Path, p256: IssuedChain) -> None:
    """HAProxy and some mail servers keep key and chain in one PEM file."""
    path = write(tmp_path, p256.leaf.pem() + p256.leaf.key_pem() + p256.intermediate.pem())
    assert [der(c) for c in load_certificates(path)] == [p256.leaf.der(), p256.intermediate.der()]
    assert spki_der(load_public_key(path)) == spki_der(p256.leaf.key.public_key())


# -- Keys --------------------------------------------------------------------------------------

PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
KEY_FORMS = ("pkcs8-pem", "traditional-pem", "pkcs8-der", "traditional-der", "public-pem")


def key_file(chain: IssuedChain, form: str, password: bytes | None = None) -> bytes:
    key = chain.leaf.key
    if form == "public-pem":
        return key.public_key().public_bytes(PEM, SPKI)
    encoding = PEM if form.endswith("pem") else DER
    layout = PKCS8 if form.startswith("pkcs8") else TRADITIONAL
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, layout, encryption)


@pytest.mark.parametrize("form", KEY_FORMS)
@pytest.mark.parametrize("key_type", KeyType, ids=lambda key_type: key_type.value)
def test_key_files_give_the_certificates_key(
    tmp_path: Path, chains: dict[KeyType, IssuedChain], key_type: KeyType, form: str
) -> None:
    chain = chains[key_type]
    if key_type is KeyType.ED25519 and form.startswith("traditional"):
        pytest.skip("Ed25519 keys exist only as PKCS#8: there is no traditional form (RFC 8410)")
    path = write(tmp_path, key_file(chain, form), f"key.{form}")
    key = load_public_key(path)
    assert spki_der(key) == chain.leaf.certificate.public_key().public_bytes(DER, SPKI)
    # the key picks its certificate out of a bundle, whatever the order
    bundle = [chain.root, chain.intermediate, chain.leaf]
    bundle_path = write(tmp_path, b"".join(c.pem() for c in bundle), "bundle.pem")
    assert der(build_chain(load_certificates(bundle_path), key).leaf) == chain.leaf.der()


def test_ec_key_after_ec_parameters(tmp_path: Path, p256: IssuedChain) -> None:
    """`openssl ecparam -genkey` writes an EC PARAMETERS block before the key."""
    parameters = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    path = write(tmp_path, parameters + key_file(p256, "traditional-pem"))
    assert spki_der(load_public_key(path)) == spki_der(p256.leaf.key.public_key())


def material_in(message: str, key_bytes: bytes) -> bool:
    """True when any 12 consecutive characters of the key file's base64 appear in message."""
    armour = key_bytes if key_bytes.startswith(b"-----") else base64.b64encode(key_bytes)
    body = b"".join(
        line for line in armour.splitlines() if not line.startswith(b"-----") and b":" not in line
    )
    text = body.decode()
    return any(text[i : i + 12] in message for i in range(0, max(1, len(text) - 12)))


@pytest.mark.parametrize("form", ["pkcs8-pem", "traditional-pem", "pkcs8-der"])
@pytest.mark.parametrize(
    "key_type",
    [KeyType.RSA_2048, KeyType.ECDSA_P256, KeyType.ED25519],
    ids=lambda key_type: key_type.value,
)
def test_encrypted_key_is_refused(
    tmp_path: Path, chains: dict[KeyType, IssuedChain], key_type: KeyType, form: str
) -> None:
    if key_type is KeyType.ED25519 and form.startswith("traditional"):
        pytest.skip("Ed25519 keys exist only as PKCS#8: there is no traditional form (RFC 8410)")
    data = key_file(chains[key_type], form, password=b"correct horse")
    path = write(tmp_path, data, f"key.{form}")
    error = bad_input(load_public_key, path, "encrypted")
    assert not material_in(error.diagnostics(), data)


def test_mismatched_key_is_refused(tmp_path: Path, chains: dict[KeyType, IssuedChain]) -> None:
    ours, other = chains[KeyType.ECDSA_P256], chains[KeyType.ECDSA_P384]
    path = write(tmp_path, ours.leaf.pem() + ours.intermediate.pem())
    key_path = write(tmp_path, key_file(other, "pkcs8-pem"), "other.key")
    with pytest.raises(BadInput, match="does not match"):
        build_chain(load_certificates(path), load_public_key(key_path), source=str(path))


@pytest.mark.parametrize("form", KEY_FORMS)
def test_a_key_where_certificates_are_expected(
    tmp_path: Path, p256: IssuedChain, form: str
) -> None:
    data = key_file(p256, form)
    error = bad_input(load_certificates, write(tmp_path, data), "no certificate")
    assert not material_in(error.diagnostics(), data)


def test_a_certificate_where_a_key_is_expected(tmp_path: Path, p256: IssuedChain) -> None:
    bad_input(load_public_key, write(tmp_path, p256.leaf.pem()), "no key")
    bad_input(load_public_key, write(tmp_path, p256.leaf.der()))


# -- Damaged and unreadable files --------------------------------------------------------------


def truncations(pem: bytes, der_bytes: bytes) -> dict[str, bytes]:
    end = pem.index(b"-----END")
    second = pem.index(b"-----BEGIN", 1)
    return {
        "last-block-cut": pem[: len(pem) - 40],
        "first-block-cut-before-end": pem[: second - 60] + pem[second:],
        "base64-cut-end-kept": pem[:200] + pem[end:],
        "only-begin-line": b"-----BEGIN CERTIFICATE-----\n",
        "der-cut": der_bytes[: len(der_bytes) // 2],
    }


@pytest.mark.parametrize(
    "case",
    [
        "last-block-cut",
        "first-block-cut-before-end",
        "base64-cut-end-kept",
        "only-begin-line",
        "der-cut",
    ],
)
def test_truncated_file(tmp_path: Path, p256: IssuedChain, case: str) -> None:
    pem = p256.leaf.pem() + p256.intermediate.pem()
    data = truncations(pem, p256.leaf.der())[case]
    bad_input(load_certificates, write(tmp_path, data))


def test_truncated_key(tmp_path: Path, p256: IssuedChain) -> None:
    data = key_file(p256, "pkcs8-pem")
    error = bad_input(load_public_key, write(tmp_path, data[: len(data) // 2]), "truncated")
    assert not material_in(error.diagnostics(), data)
    error = bad_input(load_public_key, write(tmp_path, data[:60] + data[data.index(b"-----END") :]))
    assert not material_in(error.diagnostics(), data)


def with_bytes_replaced(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


@pytest.mark.parametrize("name", ["subject", "issuer"])
def test_certificate_whose_name_does_not_parse(
    tmp_path: Path, p256: IssuedChain, name: str
) -> None:
    """cryptography loads it and raises ValueError only when the name is first read."""
    certificate = p256.leaf.certificate
    names = certificate.subject if name == "subject" else certificate.issuer
    [common_name] = names.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = str(common_name.value).encode()
    utf8_string = b"\x0c" + bytes([len(value)]) + value
    damaged = with_bytes_replaced(p256.leaf.der(), utf8_string, b"\x00" + utf8_string[1:])
    bad_input(load_certificates, write(tmp_path, damaged, "cert.der"))
    pem = p256.intermediate.pem() + armoured(b"CERTIFICATE", damaged)
    bad_input(load_certificates, write(tmp_path, pem, "bundle.pem"), "PEM block 2")


def test_unknown_signature_algorithm_is_not_a_crash(tmp_path: Path, p256: IssuedChain) -> None:
    ecdsa_with_sha256 = bytes.fromhex("06082a8648ce3d040302")
    unknown = bytes.fromhex("06082a8648ce3d040309")  # 1.2.840.10045.4.3.9: not assigned
    leaf = p256.leaf.der().replace(ecdsa_with_sha256, unknown)  # in TBS and outer: they agree
    bundle = armoured(b"CERTIFICATE", leaf) + p256.intermediate.pem()
    certificates = load_certificates(write(tmp_path, bundle))
    try:
        served = build_chain(certificates)
    except Error:
        return  # refusing it as bad input is fine too
    assert served.issuers == ()  # its signature cannot be verified: no issuer path


LOADERS: dict[str, Loader] = {"certificates": load_certificates, "key": load_public_key}


@pytest.mark.parametrize("loader", LOADERS)
def test_ten_megabyte_file(tmp_path: Path, p256: IssuedChain, loader: str) -> None:
    data = p256.leaf.pem() + b"A" * (10 * 1024 * 1024)
    assert len(data) > MAX_FILE_SIZE
    bad_input(LOADERS[loader], write(tmp_path, data), "larger than")


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("seed", range(5))
def test_binary_garbage(tmp_path: Path, loader: str, seed: int) -> None:
    data = random.Random(seed).randbytes(4096)
    bad_input(LOADERS[loader], write(tmp_path, data))


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("content", [b"", b"\n \t\r\n"], ids=["empty", "blank"])
def test_empty_file(tmp_path: Path, loader: str, content: bytes) -> None:
    bad_input(LOADERS[loader], write(tmp_path, content), "empty")


@pytest.mark.parametrize("loader", LOADERS)
def test_missing_path(tmp_path: Path, loader: str) -> None:
    bad_input(LOADERS[loader], tmp_path / "no-such.pem", "no such file")


def unreadable_paths(folder: Path) -> dict[str, Path]:
    """Paths that fail to read even for root, each for a different reason."""
    a_file = write(folder, b"x", "a-file")
    loop = folder / "loop"
    loop.symlink_to(loop)
    dangling = folder / "dangling"
    dangling.symlink_to(folder / "gone")
    return {
        # open(2) succeeds on a directory only to fail with EISDIR on read.
        "directory": folder,
        # ENOTDIR: a path that goes through a regular file.
        "under-a-file": a_file / "cert.pem",
        # ELOOP: a symlink to itself.
        "symlink-loop": loop,
        # ENOENT through a symlink whose target is gone (a certbot live/ link to a pruned archive).
        "dangling-symlink": dangling,
        # open() succeeds, read() fails with EIO: nothing is mapped at offset 0 of our own memory.
        "read-fails": Path("/proc/self/mem"),
    }


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    "case", ["directory", "under-a-file", "symlink-loop", "dangling-symlink", "read-fails"]
)
def test_unreadable_path(tmp_path: Path, loader: str, case: str) -> None:
    bad_input(LOADERS[loader], unreadable_paths(tmp_path)[case])


@pytest.fixture()
def mode_000_file(p256: IssuedChain) -> Iterator[Path]:
    """A certificate file with mode 000, in a folder anyone may pass through."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o711)
        path = write(Path(folder), p256.leaf.pem(), "cert.pem")
        path.chmod(0)
        yield path


@pytest.mark.parametrize("loader", LOADERS)
def test_file_without_read_permission(mode_000_file: Path, loader: str) -> None:
    """chmod 000 stops everyone but root: root reads anything (CAP_DAC_OVERRIDE).

    So when the tests run as root, the read is made with the effective uid of `nobody` (65534);
    the real and saved uids stay 0, which is what lets the test take root back afterwards.
    """
    if os.geteuid() != 0:
        bad_input(LOADERS[loader], mode_000_file, "permission denied")
        return
    assert load_certificates(mode_000_file)  # root itself can read it: the trick is needed
    os.seteuid(65534)
    try:
        with pytest.raises(BadInput) as raised:
            LOADERS[loader](mode_000_file)
    finally:
        os.seteuid(0)
    assert "permission denied" in raised.value.diagnostics()


# -- Properties --------------------------------------------------------------------------------

LABELS = [
    b"CERTIFICATE",
    b"PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"PUBLIC KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"X509 CRL",
]


def armoured(label: bytes, body: bytes) -> bytes:
    text = base64.encodebytes(body)
    return b"-----BEGIN " + label + b"-----\n" + text + b"-----END " + label + b"-----\n"


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A real DER certificate or key with a few bytes changed, cut or inserted."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        if not data:
            break
    return bytes(data)


def file_contents(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    raw = st.one_of(st.binary(max_size=2048), mutated(seeds))
    pem = st.builds(armoured, st.sampled_from(LABELS), raw)
    return st.one_of(raw, pem, st.lists(pem, min_size=2, max_size=3).map(b"".join))


def der_seeds(chain: IssuedChain) -> list[bytes]:
    key = chain.leaf.key
    return [
        chain.leaf.der(),
        chain.intermediate.der(),
        key.private_bytes(DER, PKCS8, serialization.NoEncryption()),
        key.public_key().public_bytes(DER, SPKI),
    ]


@pytest.fixture(scope="module")
def seeds(chains: dict[KeyType, IssuedChain]) -> list[bytes]:
    return [
        s
        for key_type in (KeyType.RSA_2048, KeyType.ECDSA_P384, KeyType.ED25519)
        for s in der_seeds(chains[key_type])
    ]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("arbitrary") / "input"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_bytes_raise_only_the_projects_error(
    scratch: Path, seeds: list[bytes], data: st.DataObject
) -> None:
    content = data.draw(file_contents(seeds))
    scratch.write_bytes(content)
    try:
        certificates = load_certificates(scratch)
        # What loads must also make records: a chain and its digests, still only Error.
        chain_records(build_chain(certificates))
    except Error:
        pass
    with contextlib.suppress(Error):
        load_public_key(scratch)


@given(
    usage=st.integers(0, 255),
    selector=st.integers(0, 255),
    mtype=st.integers(0, 255),
    # Presentation format has no way to write empty data: dnspython refuses "3 1 1 " and
    # dane-hook never makes such a record.
    association=st.binary(min_size=1, max_size=600),
)
def test_record_text_round_trips(usage: int, selector: int, mtype: int, association: bytes) -> None:
    record = TLSARecord(usage, selector, mtype, association)
    text = record.to_text()
    assert text == f"{usage} {selector} {mtype} {association.hex()}"
    assert TLSARecord.from_text(text) == record
    spaced = " ".join(re.findall(".{1,7}", association.hex().upper()))
    assert TLSARecord.from_text(f"{usage} {selector} {mtype} {spaced}") == record


records = st.builds(
    TLSARecord,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(min_size=1, max_size=80),
)


@st.composite
def zone_line(draw: st.DrawFn, record: TLSARecord) -> str:
    """One record as a zone file may hold it (RFC 1035 §5.1), in one of its many spellings."""
    port = draw(st.integers(1, 65535))
    labels = st.lists(
        st.sampled_from(["mail", "mx1", "smtp-out", "example", "test", "xn--bcher-kva"]),
        min_size=1,
        max_size=4,
    )
    host = ".".join(draw(labels))
    owner = draw(
        st.sampled_from([f"_{port}._tcp.{host}.", f"_{port}._tcp.{host}", "@", ""])
    )  # "" continues the previous owner: the line starts with a blank
    ttl = draw(st.sampled_from(["", "300 ", "3600 ", "1h "]))
    klass = draw(st.sampled_from(["", "IN ", "in "]))
    rtype = draw(st.sampled_from(["TLSA", "tlsa", "Tlsa"]))
    hexdata = record.data.hex()
    if draw(st.booleans()):
        hexdata = " ".join(re.findall(".{1,16}", hexdata.upper()))
    comment = draw(st.sampled_from(["", " ; a comment", "\t;"]))
    fields = f"{record.usage} {record.selector} {record.mtype}"
    start = f"{owner or ' '} {ttl}{klass}{rtype}"
    if draw(st.booleans()):
        return f"{start} {fields} {hexdata}{comment}"
    # spread over lines with parentheses, a comment inside
    return f"{start} ( {fields} ; usage selector type\n\t{hexdata}\n\t){comment}"


@given(data=st.data(), wanted=st.lists(records, max_size=6))
def test_zone_lines_parse_to_the_records(data: st.DataObject, wanted: list[TLSARecord]) -> None:
    lines = ["$ORIGIN example.test.", "$TTL 3600", "; dane-hook test zone", ""]
    for record in wanted:
        lines.append(data.draw(zone_line(record)))
        lines.append(data.draw(st.sampled_from(["", "# note", "; note", "   "])))
    assert parse_records_text("\n".join(lines)) == wanted


@given(wanted=st.lists(records, max_size=6))
def test_bare_rdata_lines_parse_to_the_records(wanted: list[TLSARecord]) -> None:
    text = "\n".join(record.to_text() for record in wanted)
    assert parse_records_text(text) == wanted


def test_owner_named_tlsa() -> None:
    record = TLSARecord(3, 1, 1, bytes(range(32)))
    assert parse_records_text(f"tlsa 300 IN TLSA {record.to_text()}") == [record]


@pytest.mark.parametrize("form", ["pkcs8-pem", "traditional-pem", "pkcs8-der"])
@pytest.mark.parametrize(
    "key_type", [KeyType.ECDSA_P256, KeyType.RSA_2048, KeyType.ED25519], ids=lambda k: k.name
)
def test_a_key_given_as_tlsa_text_is_never_quoted(
    chains: dict[KeyType, IssuedChain], form: str, key_type: KeyType
) -> None:
    """Issue 15 item 1: a private key (PEM, PEM without armour, DER decoded as text) read as
    TLSA text: the error names the line and what was expected, and quotes none of the key."""
    if key_type is KeyType.ED25519 and form == "traditional-pem":
        pytest.skip("Ed25519 keys exist only as PKCS#8 (RFC 8410)")
    data = key_file(chains[key_type], form)
    bodies = [data, b"".join(x + b"\n" for x in data.splitlines() if b"-----" not in x)]
    for body in bodies:
        text = body.decode("utf-8", "replace")
        with pytest.raises(BadInput) as raised:
            parse_records_text(text, "F")
        message = raised.value.diagnostics()
        assert message.startswith("F: line "), message
        # Random bytes hold "(" now and then: a record spread over lines that never ends.
        assert "expected 'USAGE SELECTOR MTYPE DATA'" in message or "unbalanced" in message
        assert not material_in(message, data), message


def test_a_record_like_line_is_quoted_as_a_short_prefix() -> None:
    with pytest.raises(BadInput) as raised:
        parse_records_text("3 1 1 " + "zz" * 32, "F")
    message = raised.value.diagnostics()
    assert "F: line 1" in message and "'3 1 1 zz" in message and "zz" * 32 not in message


def test_ca_certificates_have_no_host_names(p256: IssuedChain) -> None:
    """Issue 15 item 2: a TLSA owner comes from a leaf's subjectAltName dNSNames only, never
    from a CA certificate's CN ("ISRG Root X1" would become `_25._tcp.isrg root x1.`)."""
    assert dns_names(p256.intermediate.certificate) == []
    assert dns_names(p256.leaf.certificate) != []


def test_a_wildcard_only_leaf_asks_for_a_host(tmp_path: Path) -> None:
    cast = Cast()
    path = write(tmp_path, cast.wildcard_leaf.pem(), "wildcard.pem")
    chain = build_chain(load_certificates(path), None, source="wildcard.pem")
    args = argparse.Namespace(name=None, host=None, port=25, proto="tcp")
    assert owners(args, chain, required=False) == []
    with pytest.raises(UsageError, match=r"only names are wildcards.*host name"):
        owners(args, chain)
    args.host = "mx1.example.test"
    assert owners(args, chain) == ["_25._tcp.mx1.example.test."]


def test_a_file_name_that_is_not_utf8_is_shown_as_escaped_bytes(tmp_path: Path) -> None:
    """Issue 15 item 3: the name as the file system holds it, \\xNN for each byte that is not
    UTF-8, in every loader's message (PEP 383 hands such names over as surrogates)."""
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/m\xffissing.pem")
    for loader in (load_certificates, load_public_key):
        with pytest.raises(BadInput) as raised:
            loader(Path(missing))
        message = raised.value.diagnostics()
        assert "m\\xffissing.pem: no such file" in message and "\udcff" not in message, message
