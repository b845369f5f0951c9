"""TLSA record text: what dane-hook writes is what dnspython writes and reads back."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dane_hook.errors import UsageError
from dane_hook.tlsa.record import TLSARecord, absolute_name, owner_name

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
