"""Small Ollama servers on loopback: enough of the HTTP API for OllamaPool to pick nodes and chat."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOllama:
    """One node. `failing=True` answers every model request with HTTP 500."""

    def __init__(self, *, failing: bool = False) -> None:
        self.failing = failing
        self.requests: list[tuple[str, dict[str, Any]]] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the pool polls these servers in the background."""

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/api/tags":
                    self._reply(200, {"models": [{"name": "llama3.2:3b", "size": 2_000_000_000}]})
                elif self.path == "/api/ps":
                    self._reply(200, {"models": []})
                elif self.path == "/api/version":
                    self._reply(200, {"version": "0.5.7"})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                node.requests.append((self.path, payload))
                if node.failing:
                    self._reply(500, {"error": "model runner crashed"})
                elif self.path == "/api/chat":
                    message = {"role": "assistant", "content": f"hello from {node.address}"}
                    self._reply(200, {"model": payload.get("model"), "message": message, "done": True})
                elif self.path == "/api/generate":
                    self._reply(200, {"model": payload.get("model"), "response": "hello", "done": True})
                elif self.path == "/api/embed":
                    self._reply(200, {"model": payload.get("model"), "embeddings": [[0.1, 0.2, 0.3]]})
                else:
                    self._reply(404, {"error": "not found"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"fake-ollama-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def node(self) -> dict[str, str]:
        """The node as OllamaPool takes it."""
        return {"host": "127.0.0.1", "port": str(self.port)}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
