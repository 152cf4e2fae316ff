"""`SollolInstrumentor`: SOLLOL's own routing logs and requests through sollol-otel, unchanged code.

    SollolInstrumentor().instrument()        # or run under `opentelemetry-instrument`

What it changes while instrumented (and `uninstrument()` puts back):
- `sollol.routing_logger.get_routing_logger` / `enable_console_routing_log` (and the copies other
  sollol modules imported) hand out sollol-otel's logger, so every `log_*` call in HybridRouter
  and OllamaPool becomes an OTel event and reaches Redis off the caller's thread.
- `RoutingEventLogger.log_*` forward to sollol-otel's logger, so pools and routers created
  before `instrument()` (holding SOLLOL's own logger) are rerouted too.
- Spans around OllamaPool's requests (`chat`, `generate`, `embed` and their async forms) and
  node selection (`_select_node`, timed as a decision), and around HybridRouter's
  `route_request`, its resource check and its Ollama and llama.cpp legs.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from sollol_otel.events import EventType
from sollol_otel.instrumentation.autostart import start_dashboard_if_wanted
from sollol_otel.instrumentation.engine import Instrumentation
from sollol_otel.instrumentation.extraction import Extractor, argument
from sollol_otel.recording import pipeline as configuration

_log = logging.getLogger(__name__)

_instruments = ("sollol >= 0.9",)

#: SOLLOL's logger methods; each forwards to ours under the same name and arguments.
LOG_METHODS = (
    "log_route_decision", "log_fallback", "log_coordinator_start", "log_coordinator_stop",
    "log_ollama_node_selected", "log_rpc_backend_selected", "log_model_switch", "log_task_queued",
    "log_task_start", "log_task_complete", "log_worker_load",
)  # fmt: skip


def _current_logger() -> Any:
    """sollol-otel's logger while instrumented; SOLLOL's own once uninstrumented."""
    if _PATCHED.active or _PATCHED.sollol_getter is None:
        return configuration.get_routing_logger()
    return _PATCHED.sollol_getter()


class SollolRoutingLogger:
    """What SOLLOL's `get_routing_logger()` returns while instrumented.

    Every attribute is looked up at use on the logger of the moment, so objects that keep it
    (OllamaPool, HybridRouter) follow a later `configure()`, and go back to SOLLOL's own logger
    after `uninstrument()`.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(_current_logger(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(_current_logger(), name, value)


_SOLLOL_LOGGER = SollolRoutingLogger()


def _get_routing_logger(redis_client: Any = None, console_output: bool | None = None) -> SollolRoutingLogger:
    """SOLLOL's signature; `redis_client` is ignored: delivery is sollol-otel's pipeline's job."""
    if console_output is not None:
        configuration.get_routing_logger(console_output=console_output)
    return _SOLLOL_LOGGER


def _enable_console_routing_log() -> None:
    configuration.enable_console_routing_log()


def _forward(name: str) -> Callable[..., Any]:
    """A wrapt wrapper sending a SOLLOL logger method's call to ours; it never reaches SOLLOL's Redis code."""

    def forward(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
        return getattr(configuration.get_routing_logger(), name)(*args, **kwargs)

    return forward


def _payload_model(payload: object) -> object:
    return payload.get("model") if isinstance(payload, Mapping) else None


def _node_url(selection: Any) -> str | None:
    node = selection[0] if isinstance(selection, tuple) else selection
    return f"{node['host']}:{node['port']}" if isinstance(node, Mapping) else None


def _decision(selection: Any) -> Mapping[str, Any]:
    found = selection[1] if isinstance(selection, tuple) and len(selection) > 1 else None
    return found if isinstance(found, Mapping) else {}


@dataclass(frozen=True)
class _Target:
    """One method to wrap: where it is, the span it gets, and what the span says."""

    module: str
    qualname: str
    span_name: str
    extractors: Mapping[str, Extractor | None] = field(default_factory=lambda: {"model": "model"})
    event_type: EventType | None = None
    #: Whether a failure here is a routing failure of its own; legs and checks whose failures
    #: HybridRouter handles (and logs as a fallback itself) only mark their spans.
    failure_events: bool = True


_REQUESTS = tuple(
    _Target("sollol.pool", f"OllamaPool.{method}", f"OllamaPool.{method}")
    for method in ("chat", "generate", "embed", "chat_async", "generate_async", "embed_async")
)
_TARGETS = (
    *_REQUESTS,
    _Target(
        "sollol.pool",
        "OllamaPool._select_node",
        "OllamaPool.select_node",
        extractors={
            "model": argument("payload", _payload_model),
            "node_url": _node_url,
            "reason": lambda selection: _decision(selection).get("reasoning"),
            "confidence": lambda selection: _decision(selection).get("confidence"),
        },
        event_type=EventType.OLLAMA_NODE_SELECTED,
    ),
    _Target("sollol.hybrid_router", "HybridRouter.route_request", "HybridRouter.route_request"),
    _Target(
        "sollol.hybrid_router",
        "HybridRouter._check_if_model_fits_ollama",
        "HybridRouter.check_model_fits_ollama",
        failure_events=False,
    ),
    _Target(
        "sollol.hybrid_router",
        "HybridRouter._route_to_ollama",
        "HybridRouter.route_to_ollama",
        failure_events=False,
    ),
    _Target(
        "sollol.hybrid_router",
        "HybridRouter._route_to_llamacpp",
        "HybridRouter.route_to_llamacpp",
        failure_events=False,
    ),
)


def _owner(module: ModuleType, qualname: str) -> tuple[Any, str]:
    *path, name = qualname.split(".")
    owner: Any = module
    for part in path:
        owner = getattr(owner, part)
    return owner, name


@dataclass
class _Patched:
    """What instrument() changed, so uninstrument() can put exactly that back."""

    attributes: list[tuple[Any, str, Any]] = field(default_factory=list)
    wrapped: list[tuple[Any, str]] = field(default_factory=list)
    active: bool = False
    #: SOLLOL's own `get_routing_logger`, for loggers handed out while instrumented.
    sollol_getter: Callable[[], Any] | None = None

    def set(self, owner: Any, name: str, value: Any) -> None:
        self.attributes.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def wrap(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        wrapt.wrap_function_wrapper(owner, name, wrapper)
        self.wrapped.append((owner, name))

    def restore(self) -> None:
        for owner, name in reversed(self.wrapped):
            unwrap(owner, name)
        for owner, name, original in reversed(self.attributes):
            setattr(owner, name, original)
        self.wrapped.clear()
        self.attributes.clear()
        self.active = False


#: The instrumentor is a singleton (BaseInstrumentor); so is the record of what it changed.
_PATCHED = _Patched()


def _sollol_modules() -> Iterator[ModuleType]:
    for name, module in list(sys.modules.items()):
        if (name == "sollol" or name.startswith("sollol.")) and isinstance(module, ModuleType):
            yield module


class SollolInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Routes SOLLOL's routing logs into sollol-otel and traces its requests and node selection."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        try:
            routing_logger = importlib.import_module("sollol.routing_logger")
            modules = {name: importlib.import_module(name) for name in {t.module for t in _TARGETS}}
        except Exception:
            _log.warning("sollol-otel: SOLLOL could not be imported; nothing instrumented", exc_info=True)
            return
        try:
            self._reroute_logger(routing_logger)
            self._wrap_methods(modules, kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
            _PATCHED.active = True
        except Exception:
            _log.exception("sollol-otel: instrumenting SOLLOL failed; SOLLOL is left as it was")
            _PATCHED.restore()
            return
        start_dashboard_if_wanted()

    def _uninstrument(self, **kwargs: Any) -> None:
        _PATCHED.restore()

    def _reroute_logger(self, routing_logger: ModuleType) -> None:
        _PATCHED.sollol_getter = routing_logger.get_routing_logger
        replacements = (
            (routing_logger.get_routing_logger, _get_routing_logger),
            (routing_logger.enable_console_routing_log, _enable_console_routing_log),
        )
        for module in _sollol_modules():
            for name, value in list(vars(module).items()):
                for original, replacement in replacements:
                    if value is original:
                        _PATCHED.set(module, name, replacement)
        _PATCHED.set(routing_logger, "_routing_logger", _SOLLOL_LOGGER)
        for method in LOG_METHODS:
            _PATCHED.wrap(routing_logger.RoutingEventLogger, method, _forward(method))

    def _wrap_methods(
        self, modules: Mapping[str, ModuleType], tracer_provider: Any, meter_provider: Any
    ) -> None:
        for target in _TARGETS:
            owner, name = _owner(modules[target.module], target.qualname)
            instrumentation = Instrumentation(
                vars(owner)[name],
                span_name=target.span_name,
                event_type=target.event_type,
                emit=False,
                extractors=target.extractors,
                failure_events=target.failure_events,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            )
            _PATCHED.wrap(owner, name, instrumentation)
