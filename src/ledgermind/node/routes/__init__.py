"""The API's routes by area: ``log`` (node, assets, log, proofs, statements, channels), ``chain`` (market,
federations, governance) and ``writes`` (signed state changes)."""
