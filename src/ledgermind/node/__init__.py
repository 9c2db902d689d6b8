"""The ledgermind node: a REST API (FastAPI, OpenAPI at ``/openapi.json``) and web explorer over one home, started
by ``ledgermind up`` together with the embedded chain's JSON-RPC. ``app`` builds the API, ``auth`` checks signed
requests, ``signing`` makes them, ``ratelimit`` limits clients, ``serve`` runs it all on loopback."""
