"""The JSON Schemas shipped in the package: well-formed, one per kind, and able to fail.

Every other test that reads dane-hook's JSON reads it through tests.schemas.validated(); the
cases here cover the kinds that need no DNS (records, match, catalog) on real certificates.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dane_hook.cli import main
from dane_hook.render.records import SCHEMA_VERSION
from dane_hook.tlsa.generate import certificate_record
from tests import pki
from tests.schemas import KINDS, schema, validated

ROOT = pki.root("schema root")
CA = pki.intermediate("schema CA", ROOT)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_valid_schema_for_the_current_version(kind: str) -> None:
    document = schema(kind)
    assert document["$id"] == f"urn:dane-hook:schema:{kind}:{SCHEMA_VERSION}"
    assert document["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


def test_schema_files_are_exactly_the_kinds() -> None:
    folder = Path(__file__).resolve().parents[1] / "dane_hook" / "render" / "schemas"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{k}.schema.json" for k in KINDS)


def _records_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    leaf = pki.leaf(CA, ["mail.schema.test"], label="schema leaf")
    chain = pki.write_bundle(tmp_path / "chain.pem", [leaf, CA])
    assert (
        main(
            [
                "records",
                "--chain",
                str(chain),
                "--params",
                "311,301,312,211,200",
                "--format",
                "json",
            ]
        )
        == 0
    )
    return capsys.readouterr().out


def test_records_json_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = validated(_records_json(tmp_path, capsys), "records")
    assert len(document["records"]) > 2


def test_match_json_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leaf = pki.leaf(CA, ["mail.schema.test"], label="schema leaf")
    chain = pki.write_bundle(tmp_path / "chain.pem", [leaf, CA])
    tlsa = tmp_path / "tlsa.txt"
    tlsa.write_text(certificate_record(leaf.certificate, 3, 1, 1).to_text() + "\n3 0 1 00ff\n")
    assert main(["match", "--chain", str(chain), "--tlsa", str(tlsa), "--format", "json"]) == 0
    document = validated(capsys.readouterr().out, "match")
    assert document["authenticated"] is True


def test_catalog_json_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalog", "show", "--format", "json", "--state-dir", str(tmp_path)])
    assert code == 0
    document = validated(capsys.readouterr().out, "catalog")
    assert len(document["keys"]) > 40


def test_a_document_that_strays_from_its_schema_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.loads(_records_json(tmp_path, capsys))
    missing = copy.deepcopy(good)
    del missing["records"][0]["rdata"]
    extra = copy.deepcopy(good)
    extra["surprise"] = 1
    wrong = copy.deepcopy(good)
    wrong["records"][0]["rdata"] = "3 1 1 NOT-HEX"
    later = copy.deepcopy(good)
    later["schema_version"] = SCHEMA_VERSION + 1
    for document in (missing, extra, wrong, later):
        with pytest.raises(AssertionError):
            validated(json.dumps(document), "records")
