"""Every JSON document dane-hook prints, checked against the schema it names.

A document's `schema_version` and its kind name the schema shipped in the package:
dane_hook/render/schemas/KIND.schema.json, `$id` urn:dane-hook:schema:KIND:VERSION. Tests read
dane-hook's JSON output through `validated()`, so a field added without its schema fails.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema

# The top-level key that only one kind of document has.
_KIND_BY_KEY = {
    "owners": "records",
    "authenticated": "match",
    "chains": "check",
    "plans": "plan",
    "lineages": "status",
    "keys": "catalog",
    "addresses": "probe",
}
KINDS = tuple(_KIND_BY_KEY.values())


@cache
def schema(kind: str) -> dict[str, Any]:
    text = (files("dane_hook.render") / "schemas" / f"{kind}.schema.json").read_text()
    document: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def kind_of(document: dict[str, Any]) -> str:
    kinds = [kind for key, kind in _KIND_BY_KEY.items() if key in document]
    assert len(kinds) == 1, f"not one dane-hook document kind: {sorted(document)}"
    return kinds[0]


def validated(text: str, kind: str | None = None) -> dict[str, Any]:
    """The parsed document, after checking it against its schema (AssertionError if not)."""
    document: dict[str, Any] = json.loads(text)
    found = kind_of(document)
    assert kind is None or found == kind, f"expected a {kind} document, got {found}"
    mine = schema(found)
    assert mine["$id"].endswith(f":{document['schema_version']}")
    validator = jsonschema.Draft202012Validator(
        mine, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return document
