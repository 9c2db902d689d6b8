"""Registry of datasets, models and events: registration, lineage, verification and bundles."""

from ledgermind.registry.index import AssetRow, RegistryIndex
from ledgermind.registry.service import Registration, Registry
from ledgermind.registry.verify import BUNDLE_MEDIA_TYPE, Check, VerifyReport, verify_bundle

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "AssetRow",
    "Check",
    "Registration",
    "Registry",
    "RegistryIndex",
    "VerifyReport",
    "verify_bundle",
]
