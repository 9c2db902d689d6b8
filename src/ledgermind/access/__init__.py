"""Private data access: datasets stored encrypted, served only to holders the chain vouches for.

- ``crypto``: AES-256-GCM chunked encryption of an asset into the blob store (``encrypt_asset``,
  ``decrypt_stream``, ``decrypt_to``); the provider keeps each dataset's key in ``LEDGERMIND_HOME/keys``.
- ``policy``: deny by default; an EIP-712 ``AccessRequest`` that verifies, has not expired, carries a fresh
  nonce (recorded in SQLite before serving) and whose holder ``holder_has_access`` on the Marketplace.
- ``provider``: the FastAPI router (``GET /v1/datasets/{id}`` and ``/terms``); ``serve`` runs it alone.
- ``client``: ``download(provider_url, dataset_id, account, dest, chain)`` signs, fetches and verifies.
- ``statement``: the ``access/v1`` predicate, registered on import of this package, so every access
  (granted or refused) can be a signed statement in the log.

Importing this package is cheap (no web framework, no HTTP client): those load when their modules do.
"""

from ledgermind.access.crypto import EncryptedAsset, decrypt_stream, decrypt_to, encrypt_asset, load_key
from ledgermind.access.errors import AccessRefused, IntegrityError
from ledgermind.access.onchain import holder_has_access
from ledgermind.access.policy import ACCESS_HEADER, AccessPolicy, Decision
from ledgermind.access.publish import offer_dataset
from ledgermind.access.statement import ACCESS_PREDICATE, AccessV1
from ledgermind.access.store import AccessStore

__all__ = [
    "ACCESS_HEADER",
    "ACCESS_PREDICATE",
    "AccessPolicy",
    "AccessRefused",
    "AccessStore",
    "AccessV1",
    "Decision",
    "EncryptedAsset",
    "IntegrityError",
    "decrypt_stream",
    "decrypt_to",
    "encrypt_asset",
    "holder_has_access",
    "load_key",
    "offer_dataset",
]
