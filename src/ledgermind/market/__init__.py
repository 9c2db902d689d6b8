"""Ownership and markets: access tokens, licences, the marketplace, payment channels, paid inference."""
