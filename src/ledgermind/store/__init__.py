"""Optional local content-addressed store: keeps the bytes of fingerprinted assets so they can be rebuilt.

Example::

    store = BlobStore(ledgermind_home / "blobs")
    fp = fingerprint("model/")
    store.put_asset("model/", fp)
    store.materialize(fp.digest, "restored/")   # fingerprint("restored/").digest == fp.digest
"""

from __future__ import annotations

from ledgermind.store.blobs import BlobStore

__all__ = ["BlobStore"]
