"""The routing dashboard server: Starlette app, live feeds, JSON API."""

from sollol_otel.web.app import create_app, serve
from sollol_otel.web.config import DashboardConfig

__all__ = ["DashboardConfig", "create_app", "serve"]
