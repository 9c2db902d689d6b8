"""Per-client rate limiting for the node's API: a token bucket per client address, as ASGI middleware.

Every answer carries ``X-RateLimit-Limit`` (requests per second), ``X-RateLimit-Burst`` and
``X-RateLimit-Remaining``; a client over its budget gets 429 with ``Retry-After`` (seconds) and a one-line reason.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import orjson

MAX_CLIENTS = 10_000  # beyond this many buckets, the full ones (same as new) are dropped


class TokenBuckets:
    """``rate`` requests per second per key, bursting to ``burst``. Thread-safe."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("the rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time of last update)
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> tuple[bool, float, float]:
        """Spend one token of ``key``: (allowed, tokens left, seconds until the next token if refused)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._forget_idle(now)
        return allowed, tokens, 0.0 if allowed else (1.0 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        for k in [k for k, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.burst]:
            del self._buckets[k]


class RateLimit:
    """ASGI middleware: refuse (429) HTTP requests of a client (by address) beyond its bucket."""

    def __init__(self, app: Any, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        allowed, left, wait = self.buckets.take(client[0] if client else "unknown")
        limits = [(b"x-ratelimit-limit", _num(self.buckets.rate)), (b"x-ratelimit-burst", str(self.buckets.burst).encode()),
                  (b"x-ratelimit-remaining", str(int(left)).encode())]
        if not allowed:
            retry = max(1, math.ceil(wait))
            body = orjson.dumps({"error": f"rate limit: {_num(self.buckets.rate).decode()} requests/s per client "
                                          f"(burst {self.buckets.burst}); retry in {retry} s"})
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry).encode()), *limits]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_limits(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *limits]}
            await send(message)

        await self.app(scope, receive, send_with_limits)


def _num(rate: float) -> bytes:
    return (str(int(rate)) if rate == int(rate) else f"{rate:g}").encode()
