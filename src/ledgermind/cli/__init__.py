"""The ledgermind command line (Typer + Rich): a thin layer over ledgermind.Client."""
