"""A small router whose routing decisions show up live, with three decorators and no logging calls.

Run it, then watch: `sollol-otel tail` in another terminal, or `sollol-otel dashboard`.

    python examples/decorated_router.py

Events go to SOLLOL_REDIS_URL (default redis://localhost:6379); spans and metrics go wherever
the OTEL_* environment sends them (`opentelemetry-instrument python examples/decorated_router.py`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import sollol_otel
from sollol_otel import EventType
from sollol_otel.instrumentation import record_decision, routing_span


@dataclass(frozen=True)
class Node:
    url: str
    latency_ms: float
    free_vram_mb: int
    models: frozenset[str]


@dataclass(frozen=True)
class Route:
    backend: str
    reason: str


class SmallRouter:
    """Small models go to an Ollama node, large ones to llama.cpp over RPC."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes

    @routing_span(fallback_to="rpc")
    async def chat(self, model: str, prompt: str) -> str:
        route = self.choose_backend(model)
        if route.backend == "ollama":
            node = self.choose_node(model)
            return await self.call_node(node, model, prompt)
        return f"[rpc] {prompt}"

    @record_decision(
        EventType.ROUTE_DECISION,
        backend=lambda route: route.backend,
        reason=lambda route: route.reason,
    )
    def choose_backend(self, model: str) -> Route:
        billions = float(model.rsplit(":", 1)[-1].rstrip("b"))
        if billions <= 13:
            return Route("ollama", f"sufficient_resources (estimated {billions * 0.8:.1f}GB)")
        return Route("rpc", f"insufficient_ollama_resources (requires {billions * 0.6:.1f}GB)")

    @record_decision(
        EventType.OLLAMA_NODE_SELECTED,
        node=lambda node: node.url,
        reason=lambda node: f"lowest_latency ({node.latency_ms:.0f}ms) + vram ({node.free_vram_mb}MB free)",
        confidence=lambda node: 0.92,
    )
    def choose_node(self, model: str) -> Node:
        return min(self.nodes, key=lambda node: node.latency_ms)

    async def call_node(self, node: Node, model: str, prompt: str) -> str:
        await asyncio.sleep(node.latency_ms / 1000)
        if model not in node.models:
            raise LookupError(f"{node.url} has not pulled {model}")
        return f"[{node.url}] {prompt}"


async def main() -> None:
    pulled = frozenset({"llama3.2:3b"})
    router = SmallRouter(
        [Node("192.168.1.21:11434", 15, 8192, pulled), Node("192.168.1.22:11434", 40, 4096, pulled)]
    )
    for model in ["llama3.2:3b", "qwen2.5:7b", "llama3.1:70b"]:
        try:
            print(await router.chat(model, "Why is the sky blue?"))  # noqa: T201 (the example's output)
        except LookupError as error:
            print(f"failed, recorded as a fallback event: {error}")  # noqa: T201
    sollol_otel.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
