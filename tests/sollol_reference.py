"""SOLLOL 0.9.66's own routing modules, loaded from the installed package's files.

`routing_logger.py` and `routing_viewer.py` need only redis; loading them by path keeps SOLLOL's
heavy package __init__ (and its dependencies) out of the way. Tests and benchmarks compare
against these.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

_spec = importlib.util.find_spec("sollol")
INSTALLED = _spec is not None and bool(_spec.submodule_search_locations)
MISSING_REASON = "sollol==0.9.66 is not installed (pip install --no-deps sollol==0.9.66)"


def load(name: str) -> ModuleType:
    """`load("routing_logger")` → SOLLOL 0.9.66's module of that name."""
    assert _spec is not None and _spec.submodule_search_locations, MISSING_REASON
    path = Path(next(iter(_spec.submodule_search_locations))) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"sollol_0966_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
