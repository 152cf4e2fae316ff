"""The package tree draws the architecture: each part imports only what lies below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sollol_otel"
#: Entry points: they assemble everything, so they may import anything.
ENTRY_POINTS = {"__init__", "__main__", "routing_viewer"}
SHARED = "shared"
#: What each part may import besides itself; data flows router → OTel → Redis → readers → screens.
ALLOWED: dict[str, set[str]] = {
    SHARED: set(),
    "redis": {SHARED},
    "recording": {SHARED, "redis"},
    "instrumentation": {SHARED, "redis", "recording"},
    "history": {SHARED, "redis"},
    "web": {SHARED, "redis", "history"},
    "receiver": {SHARED, "redis"},
    "demo": {SHARED, "redis", "recording", "instrumentation", "web", "history"},
    "cli": {SHARED, "redis", "recording", "instrumentation", "web", "receiver", "demo", "history"},
}
MAX_SHARED_MODULES = 12


def part_of(module: str) -> str:
    """The part a dotted module name under sollol_otel belongs to."""
    head = module.split(".")[1] if module.count(".") else ""
    return head if (PACKAGE / head).is_dir() and head else SHARED


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sollol_otel"):
            names = (
                [node.module]
                if node.module != "sollol_otel"
                else [f"sollol_otel.{a.name}" for a in node.names]
            )
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sollol_otel."))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.stem not in ENTRY_POINTS or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_a_module_imports_only_its_own_part_and_the_parts_below(path: Path) -> None:
    module = "sollol_otel." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    part = part_of(module)
    wrong = {name for name in imports(path) if part_of(name) not in ALLOWED[part] | {part}}
    assert not wrong, f"{module} ({part}) reaches up or across to {sorted(wrong)}"


def test_at_most_a_dozen_modules_sit_loose_at_the_top() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= MAX_SHARED_MODULES
