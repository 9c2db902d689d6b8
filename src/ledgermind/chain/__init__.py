"""EVM chains: connections, the embedded chain and its JSON-RPC node, deployments."""
