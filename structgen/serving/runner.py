"""Running the server: in the foreground (``structgen serve``) or on a background thread of
the current process (tests, benchmarks, notebooks)."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import uvicorn

from .app import create_app


def serve(host: str = "127.0.0.1", port: int = 8000, *, model_path: str | None = None, **options: Any) -> None:
    """Serves the model at ``model_path`` (default SmolLM2-135M-Instruct) until interrupted."""
    from ..generation.models import load_model

    model = tokenizer = None
    model_id = None
    if model_path is not None:
        model, tokenizer = load_model(model_path)
        model_id = os.path.splitext(os.path.basename(model_path.rstrip("/")))[0]
    app = create_app(model, tokenizer, model_id=model_id, **options)
    uvicorn.run(app, host=host, port=port, log_level="info")


class BackgroundServer:
    """The server on a free loopback port, on a daemon thread::

        with BackgroundServer() as server:
            OpenAI(base_url=server.base_url, api_key="x")
    """

    def __init__(self, model: Any = None, tokenizer: Any = None, *, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.app = create_app(model, tokenizer, **options)
        self.host = host
        self.port = port or _free_port(host)
        config = uvicorn.Config(self.app, host=host, port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="structgen-server", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_id(self) -> str:
        return self.app.state.structgen.model_id

    def start(self, timeout_s: float = 30.0) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.host}:{self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
