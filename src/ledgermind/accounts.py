"""Local accounts: Ethereum V3 JSON keystores (eth-account) under LEDGERMIND_HOME/keystore.

An account's address is its actor identity: it signs statements now, transactions and API requests
later. Private keys exist only encrypted on disk and decrypted in memory; they are never printed or
logged. The first use creates a development account with an empty password (say so loudly; set
LEDGERMIND_PASSWORD for anything real).
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.statements.dsse import checksum_address

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

_ADDRESS = re.compile(r"(0x)?[0-9a-fA-F]{40}")


def to_checksum_address(address: str) -> str:
    if not _ADDRESS.fullmatch(address):
        raise InvalidInputError(f"{address!r} is not an Ethereum address")
    return checksum_address(bytes.fromhex(address.removeprefix("0x")))

# scrypt cost: 2**14 decrypts in ~0.1 s, so every CLI command stays quick (geth "light" uses 2**12)
SCRYPT_N = 2**14
DEV_PASSWORD = ""


class Keystore:
    """A folder of V3 keystore files, one per account, plus the choice of default account."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("UTC--*")):
            try:
                address = to_checksum_address("0x" + json.loads(path.read_text())["address"])
            except (ValueError, KeyError, json.JSONDecodeError, InvalidInputError):
                continue  # not a keystore we can read: ignore rather than fail every command
            found[address] = path
        return found

    def addresses(self) -> list[str]:
        """Checksummed addresses of every account, oldest first."""
        return list(self._files())

    def create(self, password: str = DEV_PASSWORD) -> str:
        """Create a new account encrypted with ``password``; return its address."""
        from eth_account import Account  # slow import (~1 s): only commands that sign pay for it

        acct = Account.create()
        blob = Account.encrypt(acct.key, password, kdf="scrypt", iterations=SCRYPT_N)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
        path = self.directory / f"UTC--{stamp}--{acct.address[2:].lower()}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(blob, f)
            f.flush()
            os.fsync(f.fileno())
        if self.default() is None:
            self.set_default(acct.address)
        return acct.address

    def default(self) -> str | None:
        marker = self.directory / "default"
        if marker.is_file():
            addr = marker.read_text().strip()
            if addr in self._files():
                return addr
        addresses = self.addresses()
        return addresses[0] if addresses else None

    def set_default(self, address: str) -> None:
        address = self.resolve(address)
        (self.directory / "default").write_text(address + "\n")

    def resolve(self, address: str) -> str:
        """Checksummed address of a known account. Raises InvalidInputError / NotFoundError."""
        address = to_checksum_address(address)
        if address not in self._files():
            raise NotFoundError(f"no account {address} in {self.directory}")
        return address

    def unlock(self, address: str, password: str) -> LocalAccount:
        """Decrypt an account's key. Raises InvalidInputError on a wrong password (key never shown)."""
        from eth_account import Account

        path = self._files()[self.resolve(address)]
        try:
            key = Account.decrypt(json.loads(path.read_text()), password)
        except ValueError as e:
            raise InvalidInputError(f"wrong password for account {address} (set LEDGERMIND_PASSWORD)") from e
        return Account.from_key(key)

    def ensure_default(self) -> tuple[str, bool]:
        """The default account, creating a dev account (empty password) if there is none. Returns (address, created)."""
        current = self.default()
        if current is not None:
            return current, False
        return self.create(DEV_PASSWORD), True
