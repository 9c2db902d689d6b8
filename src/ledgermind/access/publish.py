"""Offer a private dataset: encrypt it into the blob store and record that this provider serves it.

Registering the dataset in the log (its plaintext digest, licence, manifest) and listing it on the Marketplace
are separate steps (``Client.register_dataset`` without ``store``, which would keep plaintext blobs); this only
makes its bytes servable to holders.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ledgermind.access.crypto import EncryptedAsset, encrypt_asset
from ledgermind.access.store import AccessStore
from ledgermind.fingerprint import Fingerprint, FingerprintCache, fingerprint
from ledgermind.store import BlobStore


def offer_dataset(
    path: str | os.PathLike[str],
    *,
    blobs: BlobStore,
    keys_dir: str | os.PathLike[str],
    store: AccessStore,
    name: str | None = None,
    fp: Fingerprint | None = None,
    cache: FingerprintCache | None = None,
) -> EncryptedAsset:
    """Encrypt the file or folder at ``path`` and offer it under its plaintext digest; return the encrypted asset.

    ``fp`` (the fingerprint of ``path``) is computed when not given; ``name`` defaults to the file or folder
    name and is what access statements call the dataset. Offering the same bytes again re-encrypts them under
    the same key and replaces the offer. Raises what ``fingerprint`` and ``encrypt_asset`` raise.
    """
    source = Path(path).expanduser()
    fp = fp or fingerprint(source, cache=cache)
    enc = encrypt_asset(source, fp, blobs, keys_dir)
    store.offer(enc.asset, enc.manifest_digest, name or source.resolve().name, int(time.time()))
    return enc
