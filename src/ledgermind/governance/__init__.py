"""Consortium governance of data and models: which datasets may train deployable models, which models are
promoted, decided by members' votes on the Governance contract and recorded as ``governance/v1`` statements."""
