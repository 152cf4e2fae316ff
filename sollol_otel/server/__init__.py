"""The routing dashboard server: Starlette app, live feeds, JSON API."""

from .app import create_app, serve
from .config import DashboardConfig

__all__ = ["DashboardConfig", "create_app", "serve"]
