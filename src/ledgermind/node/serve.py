"""Serving the API: uvicorn in a background thread on a socket bound up front (so port 0 picks a free port and the
URL is known before the first request)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from ledgermind.errors import InvalidInputError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ApiServer:
    """Serve ``app`` on ``host:port`` until ``stop()``. Binds loopback only unless ``allow_remote``. Raises
    InvalidInputError for a non-loopback host without it, OSError if the port is taken."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8700, *, allow_remote: bool = False) -> None:
        if not allow_remote and host not in LOOPBACK:
            raise InvalidInputError(f"the API serves loopback only; {host!r} is not")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as e:
            self._sock.close()
            raise InvalidInputError(f"cannot listen on {host}:{port}: {e.strerror}") from None
        self._sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
        self.host, self.port = host, self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", proxy_headers=False,
                                server_header=False, timeout_graceful_shutdown=30)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 60.0) -> ApiServer:
        """Serve in a background thread; return once the app has started. Raises RuntimeError if it did not."""
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="ledgermind-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the API did not start (see the log above)")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop accepting, finish the requests in flight, run the app's shutdown, release the port. Idempotent."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sock.close()
