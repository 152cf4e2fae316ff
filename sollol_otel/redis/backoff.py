"""Exponential backoff with jitter, shared by everything that reconnects to Redis."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays that double from `initial` up to `maximum`, each jittered by ±`jitter`."""

    initial: float = 0.1
    maximum: float = 5.0
    jitter: float = 0.2
    _attempt: int = field(default=0, init=False)

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * (2**self._attempt))
        self._attempt += 1
        return float(base * random.uniform(1 - self.jitter, 1 + self.jitter))

    def reset(self) -> None:
        self._attempt = 0
