"""The routing dashboard server: Starlette app, live feeds, JSON API.

The server's names load on first use, so the commands that share its counting modules (`stats`,
`tail`) do not pay for importing Starlette and uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sollol_otel.web.app import create_app, serve
    from sollol_otel.web.config import DashboardConfig

__all__ = ["DashboardConfig", "create_app", "serve"]

_HOMES = {
    "create_app": "sollol_otel.web.app",
    "serve": "sollol_otel.web.app",
    "DashboardConfig": "sollol_otel.web.config",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
