"""A simulated SOLLOL instance for the demo: a hybrid router whose decisions flow through the
real pipeline (decorators → OpenTelemetry → bridge exporter → Redis).

Small models go to the Ollama pool, where the node with the best latency and enough free VRAM
wins; models too large for any node go to llama.cpp over RPC, starting a coordinator first.
Now and then a node runs out of memory and the request falls back to RPC; repeated requests
for a model hit the routing cache. Run one per instance: `python -m sollol_otel.demo.simulation`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import signal
from dataclasses import dataclass

import sollol_otel
from sollol_otel import EventType, RoutingLogger
from sollol_otel.instrumentation import record_decision, routing_span

#: Model → parameters in billions (what SOLLOL's model_sizes table knows for these).
MODELS = {"llama3.2:3b": 3, "llama3.1:8b": 8, "codellama:13b": 13, "qwen2.5:32b": 32, "llama3.1:70b": 70}
#: How often each is requested: small models dominate real traffic.
POPULARITY = {"llama3.2:3b": 8, "llama3.1:8b": 5, "codellama:13b": 3, "qwen2.5:32b": 1, "llama3.1:70b": 1}
RPC_BACKENDS = ("10.0.0.31:50052", "10.0.0.32:50052", "10.0.0.33:50052")


@dataclass
class Node:
    url: str
    latency_ms: float
    free_vram_mb: int


@dataclass(frozen=True)
class Route:
    backend: str
    reason: str
    cached: bool = False


class OutOfMemory(RuntimeError):
    """The node could not load the model."""


def vram_needed_mb(model: str) -> int:
    return int(MODELS[model] * 0.6 * 1024 + 512)  # ~0.6 GB per billion parameters at Q4, plus context


class SimulatedRouter:
    """A hybrid router in the image of SOLLOL's HybridRouter and OllamaPool."""

    def __init__(self, rng: random.Random, logger: RoutingLogger) -> None:
        self.rng = rng
        self.logger = logger
        self.nodes = [
            Node("10.0.0.21:11434", 15, 8192),
            Node("10.0.0.22:11434", 28, 12288),
            Node("10.0.0.23:11434", 45, 24576),
            Node("10.0.0.24:11434", 80, 6144),
        ]
        self.route_cache: dict[str, Route] = {}
        self.coordinator_model: str | None = None

    def drift(self) -> None:
        """Nodes' latency and free VRAM move as other clients use them."""
        for node in self.nodes:
            node.latency_ms = max(5.0, node.latency_ms * self.rng.uniform(0.8, 1.25))
            node.free_vram_mb = max(1024, min(24576, node.free_vram_mb + self.rng.randint(-1536, 1536)))

    @routing_span("handle_request")
    async def handle(self, task_id: str, model: str) -> None:
        """One request as SOLLOL's task layer sees it: queued, started, routed, completed, all
        in one trace, so the request's chain reads as one (tail --trace-id, the page's chain)."""
        worker = f"worker-{self.rng.randint(1, 2)}"
        self.logger.log_task_queued(task_id, model, worker)
        self.logger.log_task_start(task_id, model, worker)
        started = asyncio.get_running_loop().time()
        await self.route_request(model)
        duration = asyncio.get_running_loop().time() - started
        self.logger.log_task_complete(task_id, model, worker, round(duration, 3), success=True)

    def report_load(self) -> None:
        for index, node in enumerate(self.nodes, start=1):
            self.logger.log_worker_load(
                f"ollama-{index}", self.rng.randint(0, 4), cpu_percent=round(self.rng.uniform(5, 95), 1),
                memory_mb=float(24576 - node.free_vram_mb), node_url=node.url,
            )  # fmt: skip

    @routing_span("route_request")
    async def route_request(self, model: str) -> str:
        route = self.choose_backend(model)
        if route.backend == "ollama":
            node = self.select_node(model)
            try:
                return await self.generate(node, model)
            except OutOfMemory as error:
                self.logger.log_fallback(model, "ollama", "rpc", f"ollama_error: {error}", node_url=node.url)
                self.route_cache.pop(model, None)
        return await self.generate_distributed(model)

    @record_decision(EventType.ROUTE_DECISION, backend=lambda r: r.backend, reason=lambda r: r.reason,
                     cached=lambda r: r.cached)  # fmt: skip
    def choose_backend(self, model: str) -> Route:
        if model in self.route_cache and self.rng.random() < 0.5:
            return Route(self.route_cache[model].backend, "cached", cached=True)
        needed = vram_needed_mb(model)
        if any(node.free_vram_mb >= needed for node in self.nodes):
            route = Route("ollama", f"sufficient_resources (estimated {needed / 1024:.1f}GB)")
        else:
            route = Route("rpc", f"insufficient_ollama_resources (requires {needed / 1024:.1f}GB)")
        self.route_cache[model] = route
        return route

    @record_decision(
        EventType.OLLAMA_NODE_SELECTED,
        node=lambda n: n.url,
        reason=lambda n: f"lowest_latency ({n.latency_ms:.0f}ms) + high_vram ({n.free_vram_mb}MB free)",
        confidence=lambda n: round(min(0.99, 0.6 + n.free_vram_mb / 65536), 2),
    )
    def select_node(self, model: str) -> Node:
        needed = vram_needed_mb(model)
        fitting = [node for node in self.nodes if node.free_vram_mb >= needed] or self.nodes
        return min(fitting, key=lambda node: node.latency_ms / (1 + node.free_vram_mb / 8192))

    async def generate(self, node: Node, model: str) -> str:
        await asyncio.sleep(node.latency_ms / 1000)
        if self.rng.random() < 0.02 + 0.2 * vram_needed_mb(model) / node.free_vram_mb:  # tight fits fail
            raise OutOfMemory("Out of memory")
        return f"{model} answered on {node.url}"

    async def generate_distributed(self, model: str) -> str:
        if self.coordinator_model != model:
            if self.coordinator_model is not None:
                self.logger.log_model_switch(self.coordinator_model, model, "llamacpp")
                self.logger.log_coordinator_stop(self.coordinator_model)
            for address in RPC_BACKENDS:
                host, port = address.split(":")
                self.logger.log_rpc_backend_selected(host, int(port), "layer_split (healthy, 24GB free)")
            self.logger.log_coordinator_start(
                model, len(RPC_BACKENDS), coordinator_host="127.0.0.1", coordinator_port=18080
            )
            self.coordinator_model = model
        await asyncio.sleep(0.2)
        return f"{model} answered by llama.cpp over {len(RPC_BACKENDS)} RPC backends"


async def run(rate: float, seed: int | None) -> None:
    """Route requests at about `rate` per second until cancelled."""
    rng = random.Random(seed)
    router = SimulatedRouter(rng, sollol_otel.get_routing_logger())
    models, weights = list(POPULARITY), list(POPULARITY.values())
    for request in itertools.count(1):
        router.drift()
        if request % 10 == 1:
            router.report_load()
        await router.handle(f"task-{request}", rng.choices(models, weights)[0])
        await asyncio.sleep(rng.expovariate(rate))


def main() -> None:
    parser = argparse.ArgumentParser(description="One simulated SOLLOL instance.")
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second (default 2)")
    parser.add_argument("--seed", type=int, default=None)
    options = parser.parse_args()
    sollol_otel.configure(service_name="sollol-demo")
    loop = asyncio.new_event_loop()
    task = loop.create_task(run(options.rate, options.seed))
    for stop in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        sollol_otel.shutdown(timeout=2.0)
        loop.close()


if __name__ == "__main__":
    main()
