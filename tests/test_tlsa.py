"""TLSA record text: what dane-hook writes is what dnspython writes and reads back."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dane_hook.errors import BadInput, UsageError, shown, shown_path
from dane_hook.tlsa.record import (
    TLSARecord,
    absolute_name,
    owner_name,
    parse_records_text,
    u_label_form,
)

digests = st.one_of(
    st.tuples(st.just(1), st.binary(min_size=32, max_size=32)),
    st.tuples(st.just(2), st.binary(min_size=64, max_size=64)),
    st.tuples(st.just(0), st.binary(min_size=1, max_size=300)),
)


@given(st.integers(0, 255), st.integers(0, 255), digests)
def test_text_equals_dnspythons(usage: int, selector: int, digest: tuple[int, bytes]) -> None:
    mtype, data = digest
    record = TLSARecord(usage, selector, mtype, data)
    assert record.to_text() == record.to_rdata().to_text(chunksize=0)
    assert TLSARecord.from_text(record.to_text()) == record


@pytest.mark.parametrize(
    ("host", "port", "proto", "owner"),
    [
        ("Mail.Example.COM", 25, "tcp", "_25._tcp.mail.example.com."),
        ("mail.example.com.", 465, "tcp", "_465._tcp.mail.example.com."),
        ("xn--bcher-kva.example", 443, "udp", "_443._udp.xn--bcher-kva.example."),
    ],
)
def test_owner_names(host: str, port: int, proto: str, owner: str) -> None:
    assert owner_name(host, port, proto) == owner


@pytest.mark.parametrize(
    "bad", ["", ".", "a..b", "a b.example", "x" * 64 + ".example", ("a" * 60 + ".") * 5]
)
def test_bad_names(bad: str) -> None:
    with pytest.raises(UsageError, match="not a DNS name"):
        absolute_name(bad)


def test_records_command_does_not_import_dnspython() -> None:
    # The hooks must start fast: printing records needs no DNS library (see tlsa.py).
    code = (
        "import sys\n"
        "from dane_hook.cli import main\n"
        "main(['records', '--key', sys.argv[1], '--host', 'mail.example.test'])\n"
        "assert not [m for m in sys.modules if m == 'dns' or m.startswith('dns.')], 'dns'\n"
        "assert 'dane_hook.tlsa.matching' not in sys.modules\n"
    )
    import tempfile
    from pathlib import Path

    from tests import pki

    with tempfile.TemporaryDirectory() as folder:
        key = Path(folder) / "key.pem"
        key.write_bytes(pki.root("tlsa import").key_pem())
        done = subprocess.run(
            [sys.executable, "-c", code, str(key)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("_25._tcp.mail.example.test. 3600 IN TLSA 3 1 1 ")


@pytest.mark.parametrize(
    ("host", "owner"),
    [
        # RFC 5891 §4.4: the A-label is "xn--" and the Punycode of the NFC U-label.
        ("mäil.example.test", "_25._tcp.xn--mil-qla.example.test."),
        ("MÄIL.example.test", "_25._tcp.xn--mil-qla.example.test."),
        ("ma\u0308il.example.test", "_25._tcp.xn--mil-qla.example.test."),  # NFD input
        ("bücher.example", "_25._tcp.xn--bcher-kva.example."),
        # IDNA 2008 keeps ß (PVALID); IDNA 2003 (Python's codec) would map it to "ss".
        ("straße.de", "_25._tcp.xn--strae-oqa.de."),
        ("mail\u3002example\u3002test", "_25._tcp.mail.example.test."),
    ],
)
def test_u_labels_become_a_labels(host: str, owner: str) -> None:
    assert owner_name(host) == owner
    if "\u3002" not in host:  # people are shown the U-labels back (RFC 5890 §2.3.2.1)
        assert u_label_form(owner) == f"_25._tcp.{unicodedata.normalize('NFC', host.lower())}."


@pytest.mark.parametrize(
    "bad",
    [
        "not a name!!",
        "m\udcffail.example.test",  # a non-UTF-8 argument, as Python hands it over (PEP 383)
        "-mäil.example.test",
        "mä\u200dil.example.test",  # ZWJ: CONTEXTJ, refused
        "☃.example.test",  # a symbol: DISALLOWED in IDNA 2008
        "\u0308mail.example.test",  # a combining mark first
        "mail.exa mple.test",
    ],
)
def test_names_that_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="not a DNS name") as raised:
        owner_name(bad)
    assert "\udcff" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "source", "expected"),
    [
        ("3 1 1 00ff\n3 1 x 00\n", "f.txt", "f.txt: line 2: not a TLSA record"),
        ("; c\n\nmx IN TLSA ( 3 1 1\n 00ff )\nfoo\n", "f", "f: line 5: not a TLSA record"),
        ("3 1 1 (\n00ff\n", "f", "f: line 1: unbalanced parentheses"),
    ],
)
def test_record_text_errors_name_the_line(text: str, source: str, expected: str) -> None:
    with pytest.raises(BadInput, match=re.escape(expected)):
        parse_records_text(text, source)


KEY_LINE = "MHcCAQEEIBHgAa0GhV6JOiFlLLyfI6ntEmWRiTvE+VyR+kJL22q4oAoGCCqGSM49"


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("mail.example.test", "'mail.example.test'"),
        ("3 1 1 " + "ab" * 32, "'3 1 1 " + "ab" * 21 + "...'"),
        ("3 1 1 " + "AB" * 32, "'3 1 1 " + "AB" * 21 + "...'"),
        (KEY_LINE, None),
        ("3 1 1 " + KEY_LINE, None),
        (b"0\x81\x87\x02\x01\x000\x13", None),
        ("0\x81\x87\x02\x01\x000\x13", None),
        ("m\udcffail", None),
    ],
)
def test_shown_quotes_only_short_printable_text(value: str | bytes, quoted: str | None) -> None:
    """errors.shown: never binary, never base64 runs, never more than a short prefix."""
    text = shown(value)
    if quoted is None:
        assert "not shown" in text and KEY_LINE[:8] not in text and "\\x" not in text
    else:
        assert text == quoted


def test_shown_path_shows_undecodable_bytes_one_way() -> None:
    raw = b"/tmp/m\xffissing.pem"
    assert shown_path(raw) == shown_path(os.fsdecode(raw)) == "/tmp/m\\xffissing.pem"
    assert "not shown" in shown_path(f"/tmp/{KEY_LINE}.key")
