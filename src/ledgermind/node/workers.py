"""Threads that each own a ``Client`` on the node's home, and run the API's calls on it.

A Client's SQLite connections belong to the thread that opened them, so each worker thread opens its own Client
and keeps it; the log itself is shared safely through SQLite (WAL). The node runs several readers and one writer:
writes are serialized (each is acknowledged once durable in the log), reads never wait behind a write.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ledgermind.client import Client
from ledgermind.config import Settings

T = TypeVar("T")


class Worker:
    """Per-thread state of a worker: its Client."""

    def __init__(self, settings: Settings) -> None:
        self.client = Client(settings=settings)

    def close(self) -> None:
        self.client.close()


class Workers:
    """``n`` threads sharing a queue of calls ``fn(worker)``; ``await run(fn)`` gets the result."""

    def __init__(self, settings: Settings, n: int, name: str) -> None:
        self._queue: queue.Queue[tuple[Callable[[Worker], Any], Future[Any]] | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._loop, args=(settings,), name=f"{name}-{i}", daemon=True)
                         for i in range(n)]
        for t in self._threads:
            t.start()

    def _loop(self, settings: Settings) -> None:
        worker: Worker | None = None
        try:
            while (item := self._queue.get()) is not None:
                fn, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if worker is None:
                        worker = Worker(settings)
                    future.set_result(fn(worker))
                except BaseException as e:  # noqa: BLE001 - handed to the awaiting request, which maps it
                    future.set_exception(e)
        finally:
            if worker is not None:
                worker.close()

    def submit(self, fn: Callable[[Worker], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((fn, future))
        return future

    async def run(self, fn: Callable[[Worker], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def close(self, timeout: float = 30.0) -> None:
        """Finish the queued calls, close every thread's Client, and stop."""
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout)
