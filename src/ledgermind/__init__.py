"""ledgermind: verifiable, ownable and decentralized AI on Ethereum-compatible chains."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]


def __getattr__(name: str):  # lazy: importing ledgermind.log must not pull in the whole stack
    if name == "Client":
        from ledgermind.client import Client

        return Client
    raise AttributeError(name)
