"""``ledgermind node``: serve this home's embedded chain over JSON-RPC until SIGINT or SIGTERM.

While it runs, other ledgermind commands on the same home reach the chain through it (the node writes
``node.json`` into the chain folder) instead of opening the chain in-process, and a background loop
anchors the log on the policy's schedule (every LEDGERMIND_ANCHOR_INTERVAL seconds at most).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from collections.abc import Callable

from ledgermind.accounts import Keystore
from ledgermind.config import Settings
from ledgermind.errors import LedgermindError

ANCHOR_TICK_MAX = 10.0


def anchor_loop(settings: Settings, url: str | None, stop: threading.Event, report: Callable[[str], None]) -> None:
    """Until ``stop`` is set, anchor the home's log when the policy says so, through the chain at ``url`` (None:
    the home's configured chain); ``report`` gets one line per anchor sent or queued."""
    from ledgermind.client import Client

    tick = min(settings.anchor_every_seconds, ANCHOR_TICK_MAX)
    while not stop.wait(tick):
        # only a home that has a log and an account to sign with has anything to anchor
        if not settings.log_path.exists() or Keystore(settings.keystore_dir).default() is None:
            continue
        try:
            with Client(settings=dataclasses.replace(settings, rpc_url=url or settings.rpc_url)) as client:
                note = client.maybe_anchor()
        except LedgermindError as e:
            note = {"queued": True, "reason": str(e)}
        if note and note.get("anchored"):
            a = note["anchored"]
            report(f"anchored tree size {a['treeSize']} (tx {a['txHash']})")
        elif note:
            report(f"anchor queued: {note['reason']}")


def run_node(
    settings: Settings, host: str, port: int, announce: Callable[[str], None], report: Callable[[str], None]
) -> None:
    """Open the embedded chain, serve it, call ``announce(url)``, and block until a signal stops it.
    ``report`` receives one line per anchoring event."""
    from ledgermind.chain.embedded import EmbeddedChain
    from ledgermind.chain.rpc_server import NodeServer

    chain = EmbeddedChain(settings.chain_dir, settings.chain_id)
    stop = threading.Event()
    try:
        node = NodeServer(chain, host, port).start()

        def shutdown(*_: object) -> None:
            stop.set()
            threading.Thread(target=node.stop, daemon=True).start()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, shutdown)
        announce(node.url)
        if settings.auto_anchor:
            threading.Thread(target=anchor_loop, args=(settings, node.url, stop, report), daemon=True).start()
        try:
            node.wait()
        finally:
            stop.set()
            node.stop()
    finally:
        chain.close()
