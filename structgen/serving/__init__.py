"""The OpenAI-compatible server: ``structgen serve``, or :class:`BackgroundServer` in-process.
Needs the ``server`` extra (fastapi, uvicorn)."""

from .app import create_app
from .runner import BackgroundServer, serve

__all__ = ["BackgroundServer", "create_app", "serve"]
