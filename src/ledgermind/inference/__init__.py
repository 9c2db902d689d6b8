"""Paid inference: serve registered models for payment, with a signed receipt in the log for every answer.

- ``adapters``: load a registered model (scikit-learn, ONNX, numpy callables, TorchScript as an extra) behind
  ``predict(inputs)``, refusing a file whose fingerprint is not the registered digest (``load_registered``).
- ``channels``: the PaymentChannels contract and the provider's acceptance rule for cumulative vouchers
  (``ProviderChannels``): no chain call per request, no channel lock, never under-paid.
- ``receipts``: signed ``inference-receipt/v1`` statements appended in batches; ``verify_receipt``.
- ``service`` / ``server``: the provider (``InferenceService``) and its FastAPI app (``create_app``, ``serve``,
  ``ServerThread``).
- ``client``: ``Payer`` (channels), ``PaidChannel`` (cumulative vouchers, thread-safe) and ``InferenceClient``
  (calls, receipt checks, failover); ``discovery``: providers from the ProviderRegistry contract.

Importing this package is cheap: modules load when their names are first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ModelAdapter": "adapters", "SklearnAdapter": "adapters", "OnnxAdapter": "adapters", "CallableAdapter": "adapters",
    "TorchAdapter": "adapters", "ServedModel": "adapters", "load_model": "adapters", "load_registered": "adapters",
    "PaymentChannels": "channels", "ProviderChannels": "channels", "ChannelInfo": "channels", "channel_id": "channels",
    "ReceiptFactory": "receipts", "ReceiptLog": "receipts", "VoucherRef": "receipts", "check_receipt": "receipts",
    "verify_receipt": "receipts", "provider_receipts": "receipts",
    "InferenceService": "service", "Offer": "service", "VOUCHER_HEADER": "service", "ACCESS_HEADER": "service",
    "create_app": "server", "serve": "server", "ServerThread": "server",
    "Payer": "client", "PaidChannel": "client", "InferenceClient": "client", "InferenceResult": "client",
    "ProviderInfo": "discovery", "discover_providers": "discovery", "announce": "discovery",
    "json_digest": "digests", "Signer": "signing",
    "RequestRefused": "errors", "PaymentRefused": "errors", "ModelMismatchError": "errors",
    "ProviderError": "errors", "AllProvidersFailed": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ledgermind.inference' has no attribute {name!r}")
    return getattr(import_module(f"ledgermind.inference.{module}"), name)
