"""The import rule, checked on every module's source (lazy imports inside functions too).

Bottom to top: ``schemas`` <- ``core`` <- ``producers`` / ``streams`` / ``dashboards``
<- ``leadloom`` (the command). ``infra`` is a leaf: it imports nothing of the project and
only the command uses it. Side by side packages do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "core", "producers", "streams", "dashboards", "infra", "leadloom")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "schemas": frozenset(),
    "core": frozenset({"schemas"}),
    "producers": frozenset({"schemas", "core"}),
    "streams": frozenset({"schemas", "core"}),
    "dashboards": frozenset({"schemas", "core"}),
    "infra": frozenset(),
    "leadloom": frozenset({"schemas", "core", "producers", "streams", "dashboards", "infra"}),
}


def project_imports(path: Path) -> set[str]:
    """Top-level project packages that the module at ``path`` imports, anywhere in it."""
    return imports_in(path.read_text(encoding="utf-8"), path.relative_to(ROOT).parts[0])


def imports_in(source: str, package: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [package] if node.level else [node.module or ""]
        else:
            continue
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES}
    return found - {package}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def import_graph() -> dict[str, set[str]]:
    return {p: set().union(*(project_imports(m) for m in modules(p))) for p in PACKAGES}


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    assert modules(package), f"{package}/ has no modules: is the rule out of date?"
    wrong = {
        str(m.relative_to(ROOT)): sorted(project_imports(m) - MAY_IMPORT[package])
        for m in modules(package)
    }
    assert {m: w for m, w in wrong.items() if w} == {}


def test_the_rule_sees_lazy_and_relative_imports() -> None:
    source = "from . import x\ndef f():\n    from leadloom.cli import main\n    import core.store\n"
    assert imports_in(source, "streams") == {"leadloom", "core"}
    assert not imports_in(source, "streams") <= MAY_IMPORT["streams"]


def test_every_project_package_is_under_the_rule() -> None:
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk <= set(PACKAGES)
