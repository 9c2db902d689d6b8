"""Errors of paid inference that carry the HTTP status a provider answers with.

Each refusal is one line saying what was expected and what was found, so a client (or its operator) can act
on it without reading the provider's logs.
"""

from __future__ import annotations

from ledgermind.errors import LedgermindError


class RequestRefused(LedgermindError):
    """The provider refuses a request; ``status`` is the HTTP status it answers with (always 4xx or 503)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PaymentRefused(RequestRefused):
    """The payment (voucher or access request) does not pay for this request."""


class ModelMismatchError(LedgermindError):
    """A model file's fingerprint is not the registered digest: the provider refuses to serve it."""

    def __init__(self, expected: str, found: str, path: str) -> None:
        super().__init__(f"refusing to serve {path}: registered model sha256:{expected}, file fingerprint sha256:{found}")
        self.expected = expected
        self.found = found


class ProviderError(LedgermindError):
    """A provider could not be used: down, answering garbage, or with a receipt that does not check out."""


class AllProvidersFailed(ProviderError):
    """Every provider of a model failed; ``failures`` lists (endpoint, reason) for each attempt."""

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        detail = "; ".join(f"{where}: {why}" for where, why in failures) or "no provider to try"
        super().__init__(f"every provider failed: {detail}")
        self.failures = failures
