"""The package tree is the pipeline: every import points to the same or an earlier stage.

The stages, in the order a renewal's data flows (README, "Architecture"): shared modules, the
certificates, where chains come from, TLSA records, the CA catalog, DNS, the live probe, the
rollover, output formats, the command line. Lazy imports inside functions and imports only
for type checking count as well: a later stage reached sideways is a later stage all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dane_hook"

STAGES = [
    ("", "errors", "exitcodes", "storage", "dnsname", "config"),
    ("certs",),
    ("sources",),
    ("tlsa",),
    ("catalog",),
    ("dns",),
    ("probe",),
    ("rollover",),
    ("render",),
    ("cli",),
    ("__main__",),
]


def stage_of(module: str) -> int:
    """The stage of a dotted module name inside dane_hook ("" is the package itself)."""
    first = module.split(".")[0] if module else ""
    for rank, names in enumerate(STAGES):
        if first in names:
            return rank
    raise AssertionError(f"dane_hook.{module} belongs to no stage: add it to STAGES and README")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """Every dane_hook module a file imports, anywhere in it, without the 'dane_hook.' prefix."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "dane_hook":
                found.update(alias.name for alias in node.names if alias.name != "__version__")
                found.add("")
            elif node.module.startswith("dane_hook."):
                found.add(node.module.removeprefix("dane_hook."))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dane_hook."):
                    found.add(alias.name.removeprefix("dane_hook."))
    return found


def test_every_module_belongs_to_a_stage() -> None:
    modules = [module_name(path) for path in PACKAGE.rglob("*.py")]
    assert len(modules) > 40
    for module in modules:
        stage_of(module)


def test_imports_point_to_the_same_or_an_earlier_stage() -> None:
    backwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        for target in imported(path):
            if stage_of(target) > stage_of(here):
                backwards.append(f"dane_hook.{here} imports dane_hook.{target}")
    assert backwards == []


def test_the_check_sees_a_backward_import(tmp_path: Path) -> None:
    # The rule above must be able to fail: a rollover module reaching into the command line.
    sample = tmp_path / "sample.py"
    sample.write_text("def f() -> None:\n    from dane_hook.cli.check import execute\n")
    assert imported(sample) == {"cli.check"}
    assert stage_of("cli.check") > stage_of("rollover.plan")
